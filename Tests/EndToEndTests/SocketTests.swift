import Foundation
import NetdClient
import NetdProtocol
import NetdTestSupport
import Testing

/// Sockets through netd against real peers started by the tests (loopback and Unix sockets only).
@Suite(.timeLimit(.minutes(1)))
struct SocketTests {
    /// A host name glibc refuses without asking any DNS server (a label over 63 bytes).
    static let unresolvable = String(repeating: "x", count: 70) + ".invalid"

    private func code(_ body: () async throws -> Void) async -> (Int, String?)? {
        do {
            try await body()
            return nil
        } catch let error as ResponseError {
            return (error.code.rawValue, error.systemCode)
        } catch {
            return (0, "\(error)")
        }
    }

    @Test func everyByteValueRoundTripsThroughATCPEcho() async throws {
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                let socket = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1", label: "echo"))
                #expect(socket.state == .open)
                #expect(socket.remote?.port == peer.port)
                #expect(socket.remote?.family == "IPv4")
                #expect(socket.label == "echo")
                let bytes = Data((0...255).map(UInt8.init) + (0...255).reversed().map(UInt8.init))
                let written = try await client.call(SocketWriteMethod.self, .init(id: socket.id, data: bytes.base64EncodedString(), encoding: .base64))
                #expect(written.bytes == 512)
                var received = Data()
                for _ in 0..<50 where received.count < 512 {
                    let read = try await client.call(SocketReadMethod.self, .init(id: socket.id, encoding: .base64, waitMs: 2000))
                    received.append(Data(base64Encoded: read.data)!)
                }
                #expect(received == bytes)
                // Hex in and out as well.
                _ = try await client.call(SocketWriteMethod.self, .init(id: socket.id, data: "00ff7f80", encoding: .hex))
                let hex = try await client.call(SocketReadMethod.self, .init(id: socket.id, encoding: .hex, waitMs: 2000))
                #expect(hex.data == "00ff7f80")
                let info = try await client.call(SocketGetMethod.self, .init(id: socket.id))
                #expect(info.bytesWritten == 516)
                #expect(info.bytesRead == 516)
            }
        }
    }

    @Test func utf8ReadsNeverSplitACharacterAndRefuseBytesThatAreNotUTF8() async throws {
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                let socket = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1"))
                // "é" is C3 A9: send the first byte alone.
                _ = try await client.call(SocketWriteMethod.self, .init(id: socket.id, data: "41c3", encoding: .hex))
                #expect(try await eventually { try await client.call(SocketGetMethod.self, .init(id: socket.id)).buffered == 2 })
                let first = try await client.call(SocketReadMethod.self, .init(id: socket.id))
                #expect(first.data == "A")
                #expect(first.bytes == 1)
                _ = try await client.call(SocketWriteMethod.self, .init(id: socket.id, data: "a9", encoding: .hex))
                let second = try await client.call(SocketReadMethod.self, .init(id: socket.id, waitMs: 2000))
                #expect(second.data == "é")
                #expect(second.bytes == 2)

                _ = try await client.call(SocketWriteMethod.self, .init(id: socket.id, data: "ff41", encoding: .hex))
                #expect(try await eventually { try await client.call(SocketGetMethod.self, .init(id: socket.id)).buffered == 2 })
                let refused = await code { _ = try await client.call(SocketReadMethod.self, .init(id: socket.id)) }
                #expect(refused?.0 == -32003)
                // Nothing was lost: the bytes are still there for another encoding.
                let raw = try await client.call(SocketReadMethod.self, .init(id: socket.id, encoding: .hex))
                #expect(raw.data == "ff41")
            }
        }
    }

    @Test func readWaitsUpToWaitMsForData() async throws {
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                let socket = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1"))
                let empty = try await client.call(SocketReadMethod.self, .init(id: socket.id, waitMs: 50))
                #expect(empty.bytes == 0)
                #expect(!empty.eof)
                // The read waits while another request on the same connection writes: served concurrently.
                async let waited = client.call(SocketReadMethod.self, .init(id: socket.id, waitMs: 10_000))
                try await Task.sleep(for: .milliseconds(100))
                _ = try await client.call(SocketWriteMethod.self, .init(id: socket.id, data: "late"))
                #expect(try await waited.data == "late")
            }
        }
    }

    @Test func halfCloseWithAllowHalfOpen() async throws {
        let sink = try await Peer.start(.sink)
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close(); await sink.close() } }
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                // A peer that never ends: after socket.end netd can still read, not write.
                let quiet = try await client.call(SocketConnectMethod.self, .init(port: sink.port, host: "127.0.0.1", allowHalfOpen: true))
                let half = try await client.call(SocketEndMethod.self, .init(id: quiet.id, data: "bye"))
                #expect(half.state == .readOnly)
                #expect(await eventually { sink.halfClosed.withLock { $0 } == 1 })
                #expect(sink.received.withLock { $0 } == Array("bye".utf8))

                let socket = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1", allowHalfOpen: true))
                _ = try await client.call(SocketEndMethod.self, .init(id: socket.id, data: "bye"))
                // The echo peer answers, then ends too: the bytes arrive, then eof.
                var text = ""
                var eof = false
                for _ in 0..<50 where !eof {
                    let read = try await client.call(SocketReadMethod.self, .init(id: socket.id, waitMs: 2000))
                    text += read.data
                    eof = read.eof
                }
                #expect(text == "bye")
                #expect(eof)
                let writeAfterEnd = await code { _ = try await client.call(SocketWriteMethod.self, .init(id: socket.id, data: "x")) }
                #expect(writeAfterEnd?.0 == -32003)
                #expect(try await eventually { try await client.call(SocketGetMethod.self, .init(id: socket.id)).state == .closed })
                #expect(peer.halfClosed.withLock { $0 } == 1)
            }
        }
    }

    @Test func peerEndsFirst() async throws {
        let payload = Array("hello from the peer".utf8)
        let peer = try await Peer.start(.send(payload))
        defer { Task { await peer.close() } }
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                // allowHalfOpen: the peer's end leaves netd's side writable.
                let open = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1", allowHalfOpen: true))
                #expect(try await eventually { try await client.call(SocketGetMethod.self, .init(id: open.id)).state == .writeOnly })
                let read = try await client.call(SocketReadMethod.self, .init(id: open.id))
                #expect(read.data == "hello from the peer")
                #expect(read.eof)
                #expect(try await client.call(SocketWriteMethod.self, .init(id: open.id, data: "still here")).bytes == 10)
                #expect(try await client.call(SocketEndMethod.self, .init(id: open.id)).state == .closed)

                // Node's default: the peer's end closes netd's side as well, and the bytes stay readable.
                let auto = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1"))
                #expect(try await eventually { try await client.call(SocketGetMethod.self, .init(id: auto.id)).state == .closed })
                let kept = try await client.call(SocketReadMethod.self, .init(id: auto.id))
                #expect(kept.data == "hello from the peer")
                #expect(kept.eof)
                let drained = await code { _ = try await client.call(SocketReadMethod.self, .init(id: auto.id)) }
                #expect(drained?.0 == -32003)
            }
        }
    }

    @Test func eightMiBNobodyReadsStaysBoundedAndReadsBackIntact() async throws {
        let payload = Sockets.pattern(8 << 20, seed: 8)
        let peer = try await Peer.start(.send(payload))
        defer { Task { await peer.close() } }
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                let socket = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1"))
                // netd reads until its buffer is full, then stops: the rest waits in the peer. (Bounded
                // at 10 s: a loaded machine may take a while before the peer's first bytes arrive.)
                var buffered = 0
                var stable = 0
                for _ in 0..<500 where stable < 5 {
                    try await Task.sleep(for: .milliseconds(20))
                    let now = try await client.call(SocketGetMethod.self, .init(id: socket.id)).buffered
                    stable = now == buffered && now > 0 ? stable + 1 : 0
                    buffered = now
                }
                #expect(buffered >= 1 << 20)
                #expect(buffered < (1 << 20) + (256 << 10), "netd buffered \(buffered) bytes")
                var received: [UInt8] = []
                received.reserveCapacity(payload.count)
                var eof = false
                for _ in 0..<2000 where !eof {
                    let read = try await client.call(SocketReadMethod.self, .init(id: socket.id, maxBytes: 1 << 20, encoding: .base64, waitMs: 2000))
                    received.append(contentsOf: Data(base64Encoded: read.data)!)
                    eof = read.eof
                }
                #expect(received.count == payload.count)
                #expect(Sockets.same(received, payload))
            }
        }
    }

    @Test func errorsCarryNodeCodes() async throws {
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                // A port nobody listens on, held so that no other test takes it meanwhile.
                let refusing = try Sockets.refusingTCP()
                defer { refusing.close() }
                let closedPort = refusing.port
                #expect(await code { _ = try await client.call(SocketConnectMethod.self, .init(port: closedPort, host: "127.0.0.1")) }! == (-32004, "ECONNREFUSED"))
                #expect(await code { _ = try await client.call(SocketConnectMethod.self, .init(port: 80, host: Self.unresolvable)) }! == (-32005, "ENOTFOUND"))
                #expect(await code { _ = try await client.call(SocketConnectMethod.self, .init(path: netd.folder.path + "/absent.sock")) }! == (-32004, "ENOENT"))
                #expect(await code { _ = try await client.call(ServerListenMethod.self, .init(port: peer.port, host: "127.0.0.1")) }! == (-32004, "EADDRINUSE"))
                #expect(await code { _ = try await client.call(SocketConnectMethod.self, .init(port: 0)) }?.0 == -32602)
                #expect(await code { _ = try await client.call(SocketConnectMethod.self, .init(port: 70000)) }?.0 == -32602)
                #expect(await code { _ = try await client.call(SocketConnectMethod.self, .init()) }?.0 == -32602)
                let long = "/tmp/" + String(repeating: "p", count: 103)
                #expect(await code { _ = try await client.call(SocketConnectMethod.self, .init(path: long)) }?.0 == -32602)
                #expect(await code { _ = try await client.call(ServerListenMethod.self, .init(path: long)) }?.0 == -32602)
                #expect(await code { _ = try await client.call(SocketConnectMethod.self, .init(port: 1, path: "/tmp/x")) }?.0 == -32602)
                #expect(await code { _ = try await client.call(SocketGetMethod.self, .init(id: 999_999)) }?.0 == -32001)
                #expect(await code { _ = try await client.call(SocketReadMethod.self, .init(id: 999_999)) }?.0 == -32001)
                #expect(await code { _ = try await client.call(ServerAcceptMethod.self, .init(id: 999_999)) }?.0 == -32001)

                let socket = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1"))
                #expect(await code { _ = try await client.call(SocketWriteMethod.self, .init(id: socket.id, data: "zz", encoding: .hex)) }?.0 == -32602)
                #expect(await code { _ = try await client.call(SocketWriteMethod.self, .init(id: socket.id, data: "!!", encoding: .base64)) }?.0 == -32602)
                let closedSocket = try await client.call(SocketCloseMethod.self, .init(id: socket.id))
                #expect(closedSocket.state == .closed)
                #expect(await code { _ = try await client.call(SocketWriteMethod.self, .init(id: socket.id, data: "x")) }?.0 == -32003)
                #expect(await code { _ = try await client.call(SocketReadMethod.self, .init(id: socket.id)) }?.0 == -32003)
                #expect(await code { _ = try await client.call(SocketEndMethod.self, .init(id: socket.id)) }?.0 == -32003)
                #expect(try await client.call(SocketGetMethod.self, .init(id: socket.id)).state == .closed)
            }
        }
    }

    @Test func aPeerThatResetsIsReportedAndItsBytesAreKept() async throws {
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                // netd plays both ends: one socket resets, the other sees ECONNRESET.
                let server = try await client.call(ServerListenMethod.self, .init(port: 0, host: "127.0.0.1"))
                let port = try #require(server.local?.port)
                let near = try await client.call(SocketConnectMethod.self, .init(port: port, host: "127.0.0.1"))
                let far = try #require(try await client.call(ServerAcceptMethod.self, .init(id: server.id, waitMs: 5000)).socket)
                _ = try await client.call(SocketWriteMethod.self, .init(id: far.id, data: "last words"))
                #expect(try await eventually { try await client.call(SocketGetMethod.self, .init(id: near.id)).buffered == 10 })
                _ = try await client.call(SocketCloseMethod.self, .init(id: far.id, reset: true))
                let reset = try await client.call(SocketGetMethod.self, .init(id: near.id))
                var info = reset
                _ = try await eventually {
                    info = try await client.call(SocketGetMethod.self, .init(id: near.id))
                    return info.state == .closed
                }
                #expect(info.error?.code == "ECONNRESET")
                let read = try await client.call(SocketReadMethod.self, .init(id: near.id))
                #expect(read.data == "last words")
            }
        }
    }

    @Test func unixSocketServerAndClientThroughNetd() async throws {
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                let path = netd.folder.path + "/app.sock"
                let server = try await client.call(ServerListenMethod.self, .init(path: path, mode: "0660", label: "app"))
                #expect(server.kind == .unix)
                #expect(server.local?.path == path)
                var info = stat()
                #expect(lstat(path, &info) == 0 && info.st_mode & 0o777 == 0o660)
                // A file that is not a socket is never touched.
                let notes = netd.folder.path + "/notes"
                try Data("keep".utf8).write(to: URL(fileURLWithPath: notes))
                #expect(await code { _ = try await client.call(ServerListenMethod.self, .init(path: notes)) }?.1 == "EADDRINUSE")
                #expect(try String(contentsOfFile: notes, encoding: .utf8) == "keep")

                let near = try await client.call(SocketConnectMethod.self, .init(path: path))
                #expect(near.kind == .unix)
                #expect(near.remote?.path == path)
                let far = try #require(try await client.call(ServerAcceptMethod.self, .init(id: server.id, waitMs: 5000)).socket)
                #expect(far.role == .accepted)
                #expect(far.server == server.id)
                #expect(far.label == "app")
                _ = try await client.call(SocketWriteMethod.self, .init(id: near.id, data: "over unix"))
                #expect(try await client.call(SocketReadMethod.self, .init(id: far.id, waitMs: 2000)).data == "over unix")

                // A live socket is never replaced. (Finding out connects to it, and the server accepts that probe.)
                #expect(await code { _ = try await client.call(ServerListenMethod.self, .init(path: path)) }! == (-32004, "EADDRINUSE"))

                // Closing the server leaves its accepted socket open, and removes its file.
                let closed = try await client.call(ServerCloseMethod.self, .init(id: server.id))
                #expect(closed.state == .closed)
                #expect(!FileManager.default.fileExists(atPath: path))
                _ = try await client.call(SocketWriteMethod.self, .init(id: far.id, data: "still open"))
                #expect(try await client.call(SocketReadMethod.self, .init(id: near.id, waitMs: 2000)).data == "still open")
            }
        }
    }

    @Test func ipv6Loopback() async throws {
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                let server = try await client.call(ServerListenMethod.self, .init(port: 0, host: "::1"))
                #expect(server.local?.family == "IPv6")
                let port = try #require(server.local?.port)
                let socket = try await client.call(SocketConnectMethod.self, .init(port: port, host: "::1", family: 6))
                #expect(socket.remote?.address == "::1")
                #expect(socket.remote?.family == "IPv6")
                let accepted = try #require(try await client.call(ServerAcceptMethod.self, .init(id: server.id, waitMs: 5000)).socket)
                #expect(accepted.remote?.port == socket.local?.port)
            }
        }
    }

    @Test func acceptWaitsAndServersHonourMaxConnections() async throws {
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                let server = try await client.call(ServerListenMethod.self, .init(port: 0, host: "127.0.0.1", maxConnections: 1))
                let port = try #require(server.local?.port)
                #expect(try await client.call(ServerAcceptMethod.self, .init(id: server.id)).socket == nil)
                #expect(try await client.call(ServerAcceptMethod.self, .init(id: server.id, waitMs: 100)).socket == nil)
                async let waiting = client.call(ServerAcceptMethod.self, .init(id: server.id, waitMs: 10_000))
                try await Task.sleep(for: .milliseconds(50))
                let first = try await client.call(SocketConnectMethod.self, .init(port: port, host: "127.0.0.1"))
                let accepted = try #require(try await waiting.socket)
                #expect(accepted.remote?.port == first.local?.port)
                // A second connection is over maxConnections: the server drops it.
                let second = try await client.call(SocketConnectMethod.self, .init(port: port, host: "127.0.0.1"))
                #expect(try await eventually { try await client.call(SocketGetMethod.self, .init(id: second.id)).state == .closed })
                let status = try await client.call(ServerGetMethod.self, .init(id: server.id))
                #expect(status.connections == 1)
                #expect(status.accepted == 1)
                #expect(status.pending == 0)
                // closeConnections closes what it accepted.
                _ = try await client.call(ServerCloseMethod.self, .init(id: server.id, closeConnections: true))
                #expect(try await client.call(SocketGetMethod.self, .init(id: accepted.id)).state == .closed)
                let list = try await client.call(ServerListMethod.self, .init(state: "closed"))
                #expect(list.servers.map(\.id).contains(server.id))
            }
        }
    }

    @Test func socketsBelongToTheUserNotTheConnection() async throws {
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        try await withRunningDaemon { netd in
            let id = try await netd.withClient { first in
                try await first.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1", label: "shared")).id
            }
            // The connection that opened it is gone; another one of the same user carries on.
            try await netd.withClient { second in
                _ = try await second.call(SocketWriteMethod.self, .init(id: id, data: "ping"))
                #expect(try await second.call(SocketReadMethod.self, .init(id: id, waitMs: 2000)).data == "ping")
                let listed = try await second.call(SocketListMethod.self, .init(label: "shared"))
                #expect(listed.sockets.map(\.id) == [id])
                #expect(listed.sockets.first?.owner.uid == getuid())
                #expect(try await second.call(SocketCloseMethod.self, .init(id: id)).state == .closed)
            }
        }
    }

    @Test func eventsArriveInOrderWithRisingSeq() async throws {
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                let subscription = try await client.call(EventsSubscribeMethod.self, .init(types: ["connect", "end", "close"]))
                let socket = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1"))
                _ = try await client.call(SocketEndMethod.self, .init(id: socket.id))
                var seen: [(Int64, String)] = []
                for await line in client.notifications {
                    let event = try JSONDecoder().decode(JSONValue.self, from: line)
                    let params = try #require(event["params"])
                    #expect(event["method"] == .string("event"))
                    #expect(params["subscription"]?.integerValue == subscription.subscription)
                    #expect(params["id"]?.integerValue == socket.id)
                    seen.append((params["seq"]!.integerValue!, params["type"]!.stringValue!))
                    if seen.count == 3 { break }
                }
                #expect(seen.map(\.1) == ["connect", "end", "close"])
                #expect(seen.map(\.0) == [1, 2, 3])
                #expect(try await client.call(EventsUnsubscribeMethod.self, .init(subscription: subscription.subscription)).ok)
                #expect(await code { _ = try await client.call(EventsUnsubscribeMethod.self, .init(subscription: subscription.subscription)) }?.0 == -32001)
                #expect(await code { _ = try await client.call(EventsSubscribeMethod.self, .init(types: ["bogus"])) }?.0 == -32602)
            }
        }
    }

    @Test func aUserOverTheSocketLimitGetsMinus32007() async throws {
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        try await withRunningDaemon(configure: { $0.limits.socketsPerUser = 1 }) { netd in
            try await netd.withClient { client in
                let first = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1"))
                #expect(await code { _ = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1")) }! == (-32007, "EMFILE"))
                _ = try await client.call(SocketCloseMethod.self, .init(id: first.id))
                // Closing gives the place back.
                let reopened = await eventually {
                    (try? await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1"))) != nil
                }
                #expect(reopened)
            }
        }
    }

    @Test func historyRecordsEverySocketWithExactCountsAtClose() async throws {
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        try await withRunningDaemon { netd in
            let id = try await netd.withClient { client in
                let socket = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "localhost", family: 4, label: "ledger"))
                _ = try await client.call(SocketWriteMethod.self, .init(id: socket.id, data: "12345"))
                _ = try await client.call(SocketReadMethod.self, .init(id: socket.id, waitMs: 2000))
                _ = try await client.call(SocketEndMethod.self, .init(id: socket.id))
                #expect(try await eventually { try await client.call(SocketGetMethod.self, .init(id: socket.id)).state == .closed })
                return socket.id
            }
            let query = "SELECT role, kind, state, host, remote_address, remote_port, label, owner_uid, bytes_read, bytes_written, closed_at IS NOT NULL FROM connections WHERE id = \(id); SELECT type FROM events WHERE connection_id = \(id) ORDER BY id;"
            var output = ""
            _ = try await eventually(seconds: 5) {
                output = try await run("/usr/bin/sqlite3", [netd.databasePath, query], folder: netd.folder.path).stdout
                return output.contains("close")
            }
            #expect(output == "client|tcp|closed|localhost|127.0.0.1|\(peer.port)|ledger|\(getuid())|5|5|1\nconnect\nend\nclose\n", "\(output)")
        }
    }
}
