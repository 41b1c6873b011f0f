import Foundation
import NetdProtocol
import NetdTestSupport
import Synchronization
import Testing

/// A socket lives on the event loop of the RPC connection that opened it; other connections
/// (a later netctl, a second program) may be on another loop. They read its buffered bytes and
/// its figures without hopping (``SocketShared``) and their writes reach it in one task per read.
///
/// netd runs as a process with two loops: its accepted connections take the loops in turn, so of
/// two connections accepted one after the other, one shares the opener's loop and one does not.
@Suite struct CrossLoopTests {
    private static let nextID = Atomic<Int>(0)

    @discardableResult
    private static func call(_ raw: RawConnection, _ method: String, _ params: String) async throws -> JSONValue {
        let id = nextID.add(1, ordering: .relaxed).newValue
        let answer = try await raw.exchange(#"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"#)
        #expect(answer["id"] == .integer(Int64(id)), "\(answer)")
        return answer
    }

    private static func withNetd(_ extra: [String], _ body: (String) async throws -> Void) async throws {
        try await withNetdProcess(["--event-loops", "2"] + extra) { socket, _ in try await body(socket) }
    }


    /// A megabyte through a 64 KiB buffer, read in turns by two other connections: every byte
    /// arrives once and in order, the buffer never holds more than its limit and one read, and
    /// reading from the kernel resumes each time a reader drains it. (The peer keeps its side open:
    /// a peer that ends while the buffer is full has netd take what the kernel still holds, see
    /// docs/EXTENSIONS.md.)
    @Test func readersOnEitherLoopDrainAFullBufferInOrder() async throws {
        let payload = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 % 251) }
        let peer = try await Peer.start(.sendAndStay(payload))
        defer { Task { await peer.close() } }
        let limit = 65536
        try await Self.withNetd(["--max-buffer-bytes", "\(limit)"]) { socketPath in
            try await withRawConnection(socketPath) { opener in
                let opened = try await Self.call(opener, "socket.connect", #"{"host":"127.0.0.1","port":\#(peer.port)}"#)
                let id = try #require(opened["result"]?["id"]?.integerValue)
                try await withRawConnection(socketPath) { first in
                    try await Self.call(first, "netd.ping", "{}")
                    try await withRawConnection(socketPath) { second in
                        try await Self.call(second, "netd.ping", "{}")
                        var received: [UInt8] = []
                        var highest: Int64 = 0
                        var turn = 0
                        // At most 2,000 reads of up to 4 KiB: far more than a megabyte needs.
                        while received.count < payload.count, turn < 2000 {
                            let reader = turn % 2 == 0 ? first : second
                            turn += 1
                            let read = try await Self.call(reader, "socket.read", #"{"id":\#(id),"maxBytes":4096,"encoding":"base64","waitMs":2000}"#)
                            let data = try #require(read["result"]?["data"]?.stringValue, "\(read)")
                            received += try #require(Data(base64Encoded: data).map(Array.init))
                            let buffered = try #require(try await Self.call(reader, "socket.get", #"{"id":\#(id)}"#)["result"]?["buffered"]?.integerValue)
                            highest = max(highest, buffered)
                        }
                        #expect(received.count == payload.count)
                        #expect(Sockets.same(received, payload))
                        #expect(highest <= Int64(limit) + 65536, "buffered reached \(highest)")
                        // Both readers see the same figures, whichever loop they are on.
                        for reader in [first, second, opener] {
                            let socket = try await Self.call(reader, "socket.get", #"{"id":\#(id)}"#)["result"]
                            #expect(socket?["bytesRead"] == .integer(Int64(payload.count)))
                            #expect(socket?["buffered"] == .integer(0))
                        }
                    }
                }
            }
        }
    }

    /// Pipelined writes from connections on both loops, each connection's 200 writes sent in one
    /// piece: each connection's bytes reach the peer in its order, every write is answered with
    /// its count, and `bytesWritten` adds up.
    @Test func pipelinedWritesFromEitherLoopArriveInOrder() async throws {
        let peer = try await Peer.start(.sink)
        defer { Task { await peer.close() } }
        try await Self.withNetd([]) { socketPath in
            try await withRawConnection(socketPath) { opener in
                let opened = try await Self.call(opener, "socket.connect", #"{"host":"127.0.0.1","port":\#(peer.port)}"#)
                let id = try #require(opened["result"]?["id"]?.integerValue)
                var total = 0
                for (index, tag) in ["a", "b"].enumerated() {
                    try await withRawConnection(socketPath) { writer in
                        try await Self.call(writer, "netd.ping", "{}")
                        let lines = (0..<200).map { number in
                            #"{"jsonrpc":"2.0","id":\#(number),"method":"socket.write","params":{"id":\#(id),"data":"\#(tag)\#(number);"}}"#
                        }
                        try await writer.send(bytes: Array((lines.joined(separator: "\n") + "\n").utf8))
                        var answered = Set<Int64>()
                        for _ in 0..<200 {
                            let answer = try await writer.json()
                            let number = try #require(answer["id"]?.integerValue, "\(answer)")
                            #expect(answer["result"]?["bytes"] == .integer(Int64("\(tag)\(number);".utf8.count)), "\(answer)")
                            answered.insert(number)
                        }
                        #expect(answered.count == 200)
                        total += (0..<200).map { "\(tag)\($0);".utf8.count }.reduce(0, +)
                        let expected = (0...index).flatMap { round in
                            (0..<200).map { "\(["a", "b"][round])\($0);" }
                        }.joined()
                        #expect(await eventually { peer.received.withLock { $0.count } == total })
                        #expect(String(decoding: peer.received.withLock { $0 }, as: UTF8.self) == expected)
                    }
                }
                let socket = try await Self.call(opener, "socket.get", #"{"id":\#(id)}"#)["result"]
                #expect(socket?["bytesWritten"] == .integer(Int64(total)))
            }
        }
    }
}
