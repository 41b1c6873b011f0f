import Foundation
import NetdClient
import NetdProtocol
import Testing

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
