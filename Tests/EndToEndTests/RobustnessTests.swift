import Foundation
import NetdClient
import NetdProtocol
import NetdTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Bad input gets a clear error, changes nothing, and never stops netd serving.
@Suite(.timeLimit(.minutes(1)))
struct RobustnessTests {
    private let ping = #"{"jsonrpc":"2.0","id":"ping","method":"netd.ping"}"#

    @Test func oversizedLineIsRefusedAndTheConnectionStaysUsable() async throws {
        try await withRunningDaemon(configure: { $0.maxMessageBytes = 4096 }) { netd in
            try await withRawConnection(netd.socketPath) { connection in
                let padding = String(repeating: "x", count: 100_000)
                let response = try await connection.exchange(#"{"jsonrpc":"2.0","id":1,"method":"netd.ping","params":{"pad":""# + padding + #""}}"#)
                #expect(response.id == .null)
                #expect(response.errorCode == -32600)
                #expect(response["error"]?["data"]?["code"] == .string("EMSGSIZE"))
                #expect(response["error"]?["data"]?["limit"] == .string("max-message-bytes"))
                #expect(response["error"]?["data"]?["max"] == .integer(4096))
                #expect(try await connection.exchange(ping)["result"]?["pong"] == .bool(true))
            }
        }
    }

    @Test func oversizedLineSentInPiecesIsRefusedOnce() async throws {
        try await withRunningDaemon(configure: { $0.maxMessageBytes = 4096 }) { netd in
            try await withRawConnection(netd.socketPath) { connection in
                for _ in 0..<64 { try await connection.send(bytes: Array(repeating: UInt8(ascii: "y"), count: 1024)) }
                try await connection.send(bytes: Array("\n".utf8))
                let response = try await connection.json()
                #expect(response.errorCode == -32600)
                #expect(try await connection.exchange(ping).id == .string("ping"))
            }
        }
    }

    @Test func invalidUTF8IsAParseError() async throws {
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { connection in
                try await connection.send(bytes: Array(#"{"jsonrpc":"2.0","id":1,"method":"netd.p"#.utf8) + [0xC3, 0x28, 0xFF] + Array("\"}\n".utf8))
                let response = try await connection.json()
                #expect(response.errorCode == -32700)
                #expect(response.id == .null)
                #expect(try await connection.exchange(ping).id == .string("ping"))
            }
        }
    }

    @Test func binaryGarbageGetsOneErrorPerLine() async throws {
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { connection in
                // Every byte value but newline, in 8 lines; each line must get exactly one error.
                var generator = SystemRandomNumberGenerator()
                var lines = 0
                for _ in 0..<8 {
                    var bytes = (0...255).map(UInt8.init).filter { $0 != UInt8(ascii: "\n") }
                    bytes.shuffle(using: &generator)
                    bytes.insert(0x00, at: 0)  // never a blank line
                    try await connection.send(bytes: bytes + [UInt8(ascii: "\n")])
                    lines += 1
                }
                for _ in 0..<lines {
                    let response = try await connection.json()
                    #expect(response.errorCode == -32700)
                }
                #expect(try await connection.exchange(ping)["result"]?["pong"] == .bool(true))
            }
        }
    }

    @Test func deeplyNestedJSONIsAnErrorNotACrash() async throws {
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { connection in
                let depth = 400_000
                let response = try await connection.exchange(String(repeating: "[", count: depth) + String(repeating: "]", count: depth))
                #expect(response.errorCode == -32700)
                let nestedParams = String(repeating: #"{"a":"#, count: 5000) + "1" + String(repeating: "}", count: 5000)
                let second = try await connection.exchange(#"{"jsonrpc":"2.0","id":2,"method":"netd.ping","params":"# + nestedParams + "}")
                #expect(second.errorCode != nil)
                #expect(try await connection.exchange(ping).id == .string("ping"))
            }
        }
    }

    @Test func lastLineWithoutNewlineIsAnsweredAfterHalfClose() async throws {
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { connection in
                try await connection.send(bytes: Array(#"{"jsonrpc":"2.0","id":"last","method":"netd.ping"}"#.utf8))
                connection.finishSending()
                let response = try await connection.json()
                #expect(response.id == .string("last"))
                #expect(try await connection.line() == nil)
            }
        }
    }

    @Test func aClientThatVanishesMidRequestHarmsNoOne() async throws {
        try await withRunningDaemon { netd in
            try await netd.withClient { steady in
                for _ in 0..<20 {
                    try await withRawConnection(netd.socketPath) { vanishing in
                        try await vanishing.send(bytes: Array(#"{"jsonrpc":"2.0","id":1,"meth"#.utf8))
                    }
                    #expect(try await steady.call(PingMethod.self).pong)
                }
                // The vanished clients are gone from the count; only `steady` remains.
                var clients = Int.max
                for _ in 0..<100 {
                    clients = try await steady.call(StatusMethod.self).clients
                    if clients == 1 { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(clients == 1)
            }
        }
    }

    /// A peer that resets while bytes flow, either way, ends its socket alone: netd keeps what it
    /// had received, answers every write it was given (each with its count or the error), and
    /// serves on.
    @Test func aPeerThatResetsMidTransferEndsOnlyItsSocket() async throws {
        let listener = try Sockets.listenTCP()
        defer { listener.close() }
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { raw in
                func open() async throws -> (id: Int64, peer: CInt) {
                    async let accepted = listener.accept()
                    let opened = try await PartOneFixesTests.call(raw, "socket.connect", #"{"host":"127.0.0.1","port":\#(listener.port)}"#)
                    return (try #require(opened["result"]?["id"]?.integerValue, "\(opened)"), try await accepted)
                }
                func ended(_ id: Int64) async throws -> JSONValue? {
                    var info: JSONValue?
                    _ = try await eventually {
                        info = try await PartOneFixesTests.call(raw, "socket.get", #"{"id":\#(id)}"#)["result"]
                        return info?["state"] == .string("closed")
                    }
                    return info
                }

                // Toward netd: the peer sends 256 KiB unread by anyone, then resets.
                let down = try await open()
                let stream = Sockets.pattern(256 << 10, seed: 3)
                try await Sockets.onThread { try Sockets.send(down.peer, stream) }
                #expect(try await eventually { try await PartOneFixesTests.call(raw, "socket.get", #"{"id":\#(down.id)}"#)["result"]?["bytesRead"] == .integer(Int64(stream.count)) })
                Sockets.reset(down.peer)
                let downInfo = try await ended(down.id)
                #expect(downInfo?["error"]?["code"] == .string("ECONNRESET"), "\(String(describing: downInfo))")
                // What netd had received is still there to read, exactly.
                var received: [UInt8] = []
                for _ in 0..<200 {
                    let read = try await PartOneFixesTests.call(raw, "socket.read", #"{"id":\#(down.id),"encoding":"base64","maxBytes":65536}"#)
                    guard let data = read["result"]?["data"]?.stringValue, let bytes = Data(base64Encoded: data), !bytes.isEmpty else { break }
                    received += bytes
                }
                #expect(received.count == stream.count && Sockets.same(received, stream))

                // From netd: 16 writes of 512 KiB to a peer that reads nothing, then resets.
                let up = try await open()
                let chunk = Data(Sockets.pattern(512 << 10, seed: 4)).base64EncodedString()
                let writes = 16
                for index in 0..<writes {
                    try await raw.send(#"{"jsonrpc":"2.0","id":"w\#(index)","method":"socket.write","params":{"id":\#(up.id),"data":"\#(chunk)","encoding":"base64"}}"#)
                }
                try await Task.sleep(for: .milliseconds(200))
                Sockets.reset(up.peer)
                var answered: Set<String> = []
                var failures: Set<String> = []
                for _ in 0..<writes {
                    let answer = try await raw.json()
                    answered.insert(answer["id"]?.stringValue ?? "")
                    if let code = answer["error"]?["data"]?["code"]?.stringValue { failures.insert(code) }
                }
                #expect(answered.count == writes, "every write answered once")
                #expect(!failures.isEmpty && failures.isSubset(of: ["ECONNRESET", "EPIPE", "ERR_SOCKET_CLOSED"]), "\(failures)")
                let upInfo = try await ended(up.id)
                #expect(upInfo?["error"]?["code"] != nil && upInfo?["error"] != .null, "\(String(describing: upInfo))")

                // Everyone else is served as before.
                let other = try await open()
                defer { close(other.peer) }
                #expect(try await PartOneFixesTests.call(raw, "socket.write", #"{"id":\#(other.id),"data":"still here"}"#)["result"]?["bytes"] == .integer(10))
                #expect(try await Sockets.onThread { try Sockets.read(other.peer, count: 10) } == Array("still here".utf8))
            }
        }
    }

    @Test func pipelinedRequestsAreEachAnsweredOnce() async throws {
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { connection in
                let count = 2000
                let lines = (0..<count).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"netd.ping"}"# }.joined(separator: "\n")
                try await connection.send(lines)
                var seen = Set<Int64>()
                for _ in 0..<count {
                    let response = try await connection.json()
                    let id = try #require(response.id?.integerValue)
                    #expect(seen.insert(id).inserted, "id \(id) answered twice")
                }
                #expect(seen == Set((0..<Int64(count))))
            }
        }
    }

    @Test func manyClientsAtOnce() async throws {
        try await withRunningDaemon { netd in
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        try await netd.withClient { client in
                            try await withThrowingTaskGroup(of: Bool.self) { calls in
                                for _ in 0..<50 { calls.addTask { try await client.call(PingMethod.self).pong } }
                                var answered = 0
                                for try await pong in calls where pong { answered += 1 }
                                return answered
                            }
                        }
                    }
                }
                var total = 0
                for try await answered in group { total += answered }
                #expect(total == 1000)
            }
        }
    }

    @Test func clientsOverTheLimitAreToldAndClosed() async throws {
        try await withRunningDaemon(configure: { $0.maxClients = 2 }) { netd in
            try await netd.withClient { first in
                // An answered call means netd has admitted this client; only then count.
                #expect(try await first.call(PingMethod.self).pong)
                try await netd.withClient { second in
                    #expect(try await second.call(StatusMethod.self).clients == 2)
                    try await withRawConnection(netd.socketPath) { third in
                        let refusal = try await third.json()
                        #expect(refusal.errorCode == -32007)
                        #expect(refusal["error"]?["data"]?["limit"] == .string("max-clients"))
                        #expect(refusal.id == .null)
                        #expect(try await third.line() == nil)
                    }
                }
                // A place is free again once a client leaves.
                var admitted = false
                for _ in 0..<100 where !admitted {
                    admitted = (try? await netd.withClient { try await $0.call(PingMethod.self).pong }) == true
                    if !admitted { try await Task.sleep(for: .milliseconds(20)) }
                }
                #expect(admitted)
                #expect(try await first.call(PingMethod.self).pong)
            }
        }
    }
}
