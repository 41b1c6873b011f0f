import Foundation
import NetdProtocol
import NetdTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `socket.attach` and `attach: true` (contract section 9) against real peers the test holds:
/// after the answer line the RPC connection is the socket's byte stream, both ways.
@Suite struct AttachTests {
    /// A socket netd connected to a listener the test holds, and the test's end of it.
    private static func connected(_ rpc: BlockingRPC, to listener: Sockets.Listener, extra: String = "") async throws -> (id: Int64, peer: CInt) {
        async let accepted = listener.accept()
        let answer = try await rpc.call("socket.connect", #"{"host":"127.0.0.1","port":\#(listener.port)\#(extra)}"#)
        let id = try #require(answer.resultID, "\(answer)")
        return (id, try await accepted)
    }

    /// A netd, a control connection, and a socket netd connected to a listener the test holds
    /// (its id, and the test's end of it), for `body`.
    private static func withConnectedSocket(_ body: (TestDaemon, BlockingRPC, Int64, CInt) async throws -> Void) async throws {
        try await withRunningDaemon { netd in
            let listener = try Sockets.listenTCP()
            defer { listener.close() }
            let control = try BlockingRPC(netd.socketPath)
            defer { control.close() }
            let (id, peer) = try await connected(control, to: listener)
            defer { close(peer) }
            try await body(netd, control, id, peer)
        }
    }

    @Test func severalMegabytesEachWayArriveIntactWithExactCountsAndEvents() async throws {
        try await withRunningDaemon { netd in
            let listener = try Sockets.listenTCP()
            defer { listener.close() }
            let control = try BlockingRPC(netd.socketPath)
            defer { control.close() }
            // Both sides send all they have before ending: the socket keeps its write side after
            // the peer ends (without allowHalfOpen it would end it, as Node does; tested below).
            let (id, peer) = try await Self.connected(control, to: listener, extra: #","allowHalfOpen":true"#)
            let stream = try BlockingRPC(netd.socketPath)
            let answer = try await stream.call("socket.attach", #"{"id":\#(id)}"#)
            #expect(answer["result"]?["socket"]?["attached"] == .bool(true), "\(answer)")
            #expect(answer["result"]?["socket"]?["id"] == .integer(id))

            let up = Sockets.pattern(6 << 20, seed: 11)
            let down = Sockets.pattern(5 << 20 + 3, seed: 12)
            async let atPeer = Sockets.sendThenReadAll(peer, down)
            async let atClient = Sockets.sendThenReadAll(stream.descriptor, up)
            let (gotAtPeer, gotAtClient) = try await (atPeer, atClient)
            #expect(Sockets.same(gotAtPeer, up))
            #expect(Sockets.same(gotAtClient, down))
            stream.close()
            close(peer)

            let closed = try await eventually { try await control.call("socket.get", #"{"id":\#(id)}"#)["result"]?["state"] == .string("closed") }
            #expect(closed)
            let socket = await control.peek("socket.get", #"{"id":\#(id)}"#)
            #expect(socket["result"]?["bytesRead"] == .integer(Int64(down.count)))
            #expect(socket["result"]?["bytesWritten"] == .integer(Int64(up.count)))
            #expect(socket["result"]?["attached"] == nil, "a closed socket is no longer attached")
            let history = await control.peek("history.get", #"{"id":\#(id)}"#)
            let types = history["result"]?["events"]?.arrayValue?.compactMap { $0["type"]?.stringValue } ?? []
            #expect(types.contains("attach") && types.contains("detach") && types.last == "close", "\(types)")
            let attach = history["result"]?["events"]?.arrayValue?.first { $0["type"] == .string("attach") }
            #expect(attach?["detail"]?["uid"] == .integer(Int64(getuid())))
            #expect(history["result"]?["record"]?["bytesRead"] == .integer(Int64(down.count)))
        }
    }

    @Test func unreadBytesGoFirstAndBytesAfterTheRequestLineAreData() async throws {
        try await Self.withConnectedSocket { netd, control, id, peer in
            try await blocking { try Sockets.send(peer, Array("buffered before ".utf8)) }
            let buffered = await eventually { await control.peek("socket.get", #"{"id":\#(id)}"#)["result"]?["buffered"] == .integer(16) }
            #expect(buffered)

            let stream = try BlockingRPC(netd.socketPath)
            defer { stream.close() }
            let answer = try await stream.call("socket.attach", #"{"id":\#(id)}"#, extra: Array("sent with the request".utf8))
            #expect(answer.resultID == id, "\(answer)")
            try await blocking { try Sockets.send(peer, Array("and after".utf8)) }
            #expect(String(decoding: try await blocking { try Sockets.read(stream.descriptor, count: 25) }, as: UTF8.self) == "buffered before and after")
            #expect(String(decoding: try await blocking { try Sockets.read(peer, count: 21) }, as: UTF8.self) == "sent with the request")
        }
    }

    @Test func whileAttachedReadWriteAndEndAreRefusedAndCloseEndsTheStream() async throws {
        try await Self.withConnectedSocket { netd, control, id, peer in
            let stream = try BlockingRPC(netd.socketPath)
            defer { stream.close() }
            try await stream.call("socket.attach", #"{"id":\#(id)}"#)
            for (method, params) in [
                ("socket.read", #"{"id":\#(id)}"#), ("socket.write", #"{"id":\#(id),"data":"x"}"#), ("socket.end", #"{"id":\#(id)}"#),
                ("socket.attach", #"{"id":\#(id)}"#), ("socket.pipe", #"{"id":\#(id),"to":\#(id + 1000)}"#),
            ] {
                let refused = try await control.call(method, params)
                if method == "socket.pipe" {
                    #expect(refused.errorCode == -32001, "\(refused)")
                } else {
                    #expect(refused.errorCode == -32003 && refused.errorName == "ERR_SOCKET_ATTACHED", "\(method): \(refused)")
                }
            }
            #expect(try await control.call("socket.get", #"{"id":\#(id)}"#)["result"]?["attached"] == .bool(true))
            let closed = try await control.call("socket.close", #"{"id":\#(id)}"#)
            #expect(closed["result"]?["state"] == .string("closed"), "\(closed)")
            // The client's stream ends, and so does the peer's connection.
            #expect(try await blocking { try Sockets.readAll(stream.descriptor) }.isEmpty)
            #expect(try await blocking { Sockets.readError(peer) } == 0)
        }
    }

    @Test func anErrorAnswerKeepsTheConnectionJSONRPCIncludingWhatFollowedTheRequest() async throws {
        try await withRunningDaemon { netd in
            let rpc = try BlockingRPC(netd.socketPath)
            defer { rpc.close() }
            let next = #"{"jsonrpc":"2.0","id":"after","method":"netd.ping"}"# + "\n"
            let missing = try await rpc.call("socket.attach", #"{"id":424242}"#, extra: Array(next.utf8))
            #expect(missing.errorCode == -32001, "\(missing)")
            let pong = try await rpc.answer()
            #expect(pong["id"] == .string("after") && pong["result"]?["pong"] == .bool(true), "\(pong)")
            // In a batch, attach cannot switch the connection: refused, the rest answered.
            let batch = #"[{"jsonrpc":"2.0","id":1,"method":"socket.attach","params":{"id":1}},{"jsonrpc":"2.0","id":2,"method":"netd.ping"}]"# + "\n"
            try await blocking { try Sockets.send(rpc.descriptor, Array(batch.utf8)) }
            let answers = try await rpc.answer()
            #expect(answers.arrayValue?.count == 2, "\(answers)")
            #expect(answers.arrayValue?.contains { $0.errorCode == -32001 || $0.errorName == "ERR_ATTACH_NOT_ALONE" } == true, "\(answers)")
            #expect(try await rpc.call("netd.ping", "{}")["result"]?["pong"] == .bool(true))
        }
    }

    @Test func attachOnConnectAndOnAcceptAndAPeerEndReachesTheClientAsEOF() async throws {
        try await withRunningDaemon { netd in
            let listener = try Sockets.listenTCP()
            defer { listener.close() }
            let control = try BlockingRPC(netd.socketPath)
            defer { control.close() }
            let server = try await control.call("server.listen", #"{"host":"127.0.0.1","port":0}"#)
            let serverID = try #require(server.resultID)
            let port = try #require(server["result"]?["local"]?["port"]?.integerValue)

            // server.accept with attach: null keeps JSON-RPC; a socket switches.
            let acceptor = try BlockingRPC(netd.socketPath)
            defer { acceptor.close() }
            #expect(try await acceptor.call("server.accept", #"{"id":\#(serverID),"attach":true}"#)["result"]?["socket"] == .null)
            let client = try await blocking { try Sockets.connectTCP(Int(port)) }
            defer { close(client) }
            let accepted = try await acceptor.call("server.accept", #"{"id":\#(serverID),"waitMs":5000,"attach":true}"#)
            #expect(accepted["result"]?["socket"]?["attached"] == .bool(true), "\(accepted)")

            // socket.connect with attach, to the server above: bytes cross two attached streams.
            let connector = try BlockingRPC(netd.socketPath)
            defer { connector.close() }
            async let peer = listener.accept()
            let connected = try await connector.call("socket.connect", #"{"host":"127.0.0.1","port":\#(listener.port),"attach":true}"#)
            #expect(connected["result"]?["attached"] == .bool(true), "\(connected)")
            let peerEnd = try await peer
            defer { close(peerEnd) }
            try await blocking { try Sockets.send(peerEnd, Array("from the peer".utf8)) }
            #expect(String(decoding: try await blocking { try Sockets.read(connector.descriptor, count: 13) }, as: UTF8.self) == "from the peer")
            try await blocking { try Sockets.send(client, Array("to the acceptor".utf8)) }
            #expect(String(decoding: try await blocking { try Sockets.read(acceptor.descriptor, count: 15) }, as: UTF8.self) == "to the acceptor")

            // The peer ends: the attached client reads EOF; without allowHalfOpen the socket ends too.
            shutdown(peerEnd, CInt(SHUT_WR))
            #expect(try await blocking { try Sockets.readAll(connector.descriptor) }.isEmpty)
            #expect(try await blocking { try Sockets.readAll(peerEnd) }.isEmpty)
            // The client half-closes its stream: the accepted socket's write side ends (socket.end).
            shutdown(acceptor.descriptor, CInt(SHUT_WR))
            #expect(try await blocking { try Sockets.readAll(client) }.isEmpty)
        }
    }

    @Test func aResetOnEitherSideClosesTheOther() async throws {
        try await withRunningDaemon { netd in
            let listener = try Sockets.listenTCP()
            defer { listener.close() }
            let control = try BlockingRPC(netd.socketPath)
            defer { control.close() }
            // The peer resets: the attached client's stream closes, and the socket records ECONNRESET.
            let (id, peer) = try await Self.connected(control, to: listener)
            let stream = try BlockingRPC(netd.socketPath)
            defer { stream.close() }
            try await stream.call("socket.attach", #"{"id":\#(id)}"#)
            Sockets.reset(peer)
            #expect(try await blocking { try Sockets.readAll(stream.descriptor) }.isEmpty)
            #expect(await eventually { await control.peek("socket.get", #"{"id":\#(id)}"#)["result"]?["error"]?["code"] == .string("ECONNRESET") })

            // The client goes away: its end reaches the peer (a Unix socket's close reads as EOF,
            // as a half-close would), and the first bytes the peer sends find no one to take them:
            // the socket closes.
            let (second, peer2) = try await Self.connected(control, to: listener)
            defer { close(peer2) }
            let client = try BlockingRPC(netd.socketPath)
            try await client.call("socket.attach", #"{"id":\#(second)}"#)
            client.close()
            #expect(try await blocking { try Sockets.readAll(peer2) }.isEmpty)
            try await blocking { try Sockets.send(peer2, Array("anyone?".utf8)) }
            #expect(await eventually { await control.peek("socket.get", #"{"id":\#(second)}"#)["result"]?["state"] == .string("closed") })
        }
    }

    /// socat as the docs show it, with `-t 30`: socat gives the other direction half a second
    /// after its input ends, and the peer here answers only once it has read everything.
    @Test func worksFromSocatWithCatAsTheDocsShow() async throws {
        try await Self.withConnectedSocket { netd, control, id, peer in
            let input = netd.folder.path + "/input.bin"
            let payload = Sockets.pattern(3 << 20, seed: 5)
            #expect(FileManager.default.createFile(atPath: input, contents: Data(payload)))
            let script = #"(printf '{"jsonrpc":"2.0","id":1,"method":"socket.attach","params":{"id":\#(id)}}\n'; cat \#(input)) | socat -t 30 - UNIX-CONNECT:\#(netd.socketPath) > \#(netd.folder.path)/out.txt"#
            async let socat = run("/bin/sh", ["-c", script], folder: netd.folder.path)
            let received = try await blocking { try Sockets.read(peer, count: payload.count) }
            #expect(Sockets.same(received, payload))
            try await blocking { try Sockets.send(peer, Array("bye\n".utf8)) }
            shutdown(peer, CInt(SHUT_WR))
            let output = try await socat
            #expect(output.status == 0, "\(output.stderr)")
            let lines = try String(contentsOfFile: netd.folder.path + "/out.txt", encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 2 && lines[0].contains(#""attached":true"#) && lines[1] == "bye", "\(lines)")
        }
    }
}
