import Foundation
import NetdProtocol
import NetdTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Forwards and pipes (contract section 10) between real sockets the test holds on both sides.
@Suite struct ForwardTests {
    /// A forwarding server to `target` (params of `forward`), from TCP unless `from` is a path.
    private static func forward(_ rpc: BlockingRPC, to target: String, from path: String? = nil, extra: String = "") async throws -> (id: Int64, port: Int) {
        let listen = path.map { #""path":"\#($0)""# } ?? #""host":"127.0.0.1","port":0"#
        let answer = try await rpc.call("server.listen", #"{\#(listen),"forward":\#(target)\#(extra)}"#)
        let id = try #require(answer.resultID, "\(answer)")
        #expect(answer["result"]?["forward"] != nil, "\(answer)")
        return (id, Int(answer["result"]?["local"]?["port"]?.integerValue ?? 0))
    }

    /// One connection through a forward: the client's end, and the target's end as accepted by the test.
    private static func through(_ connect: @escaping @Sendable () throws -> CInt, target: Sockets.Listener) async throws -> (client: CInt, target: CInt) {
        async let accepted = target.accept()
        let client = try await blocking(connect)
        return (client, try await accepted)
    }

    @Test(arguments: ["tcp-tcp", "tcp-unix", "unix-tcp", "unix-unix"])
    func severalMegabytesEachWayWithTwoLinkedRecords(_ route: String) async throws {
        try await withRunningDaemon { netd in
            let parts = route.split(separator: "-")
            let targetPath = netd.folder.path + "/target.sock"
            let target = parts[1] == "tcp" ? try Sockets.listenTCP() : try Sockets.listenUnix(targetPath)
            defer { target.close() }
            let rpc = try BlockingRPC(netd.socketPath)
            defer { rpc.close() }
            let listenPath = parts[0] == "unix" ? netd.folder.path + "/front.sock" : nil
            let targetJSON = parts[1] == "tcp" ? #"{"host":"127.0.0.1","port":\#(target.port)}"# : #"{"path":"\#(targetPath)"}"#
            let (serverID, port) = try await Self.forward(rpc, to: targetJSON, from: listenPath)
            let (client, far) = try await Self.through({ try listenPath.map(Sockets.connectUnix) ?? Sockets.connectTCP(port) }, target: target)
            let up = Sockets.pattern(4 << 20 + 1, seed: 21)
            let down = Sockets.pattern(3 << 20 + 7, seed: 22)
            async let atFar = Sockets.sendThenReadAll(far, down)
            async let atClient = Sockets.sendThenReadAll(client, up)
            let (gotFar, gotClient) = try await (atFar, atClient)
            #expect(Sockets.same(gotFar, up))
            #expect(Sockets.same(gotClient, down))
            close(client)
            close(far)

            let sockets = try await rpc.call("socket.list", #"{"server":\#(serverID)}"#)["result"]?["sockets"]?.arrayValue ?? []
            #expect(sockets.count == 2, "\(sockets)")
            let accepted = try #require(sockets.first { $0["role"] == .string("accepted") })
            let outgoing = try #require(sockets.first { $0["role"] == .string("client") })
            #expect(accepted["peer"] == outgoing["id"] && outgoing["peer"] == accepted["id"])
            #expect(outgoing["server"] == .integer(serverID))
            let closed = await eventually {
                let records = await [rpc.peek("socket.get", #"{"id":\#(accepted["id"]?.integerValue ?? 0)}"#), rpc.peek("socket.get", #"{"id":\#(outgoing["id"]?.integerValue ?? 0)}"#)]
                return records.allSatisfy { $0["result"]?["state"] == .string("closed") }
            }
            #expect(closed)
            let finalAccepted = await rpc.peek("socket.get", #"{"id":\#(accepted["id"]?.integerValue ?? 0)}"#)["result"]
            #expect(finalAccepted?["bytesRead"] == .integer(Int64(up.count)) && finalAccepted?["bytesWritten"] == .integer(Int64(down.count)), "\(String(describing: finalAccepted))")
            #expect(finalAccepted?["error"] == .null)
            // The pair is in the database too, linked by peer_id.
            let record = try await rpc.call("history.get", #"{"id":\#(outgoing["id"]?.integerValue ?? 0)}"#)
            #expect(record["result"]?["record"]?["peer"] == accepted["id"], "\(record)")
            #expect(record["result"]?["record"]?["bytesRead"] == .integer(Int64(down.count)))
            let server = try await rpc.call("server.get", #"{"id":\#(serverID)}"#)
            #expect(server["result"]?["accepted"] == .integer(1) && server["result"]?["connections"] == .integer(0), "\(server)")
        }
    }

    @Test func halfClosePassesThroughInEachDirection() async throws {
        try await withRunningDaemon { netd in
            let target = try Sockets.listenTCP()
            defer { target.close() }
            let rpc = try BlockingRPC(netd.socketPath)
            defer { rpc.close() }
            let (_, port) = try await Self.forward(rpc, to: #"{"host":"127.0.0.1","port":\#(target.port)}"#)

            // The client ends first; the target reads EOF and may still answer for as long as it likes.
            let (client, far) = try await Self.through({ try Sockets.connectTCP(port) }, target: target)
            try await blocking { try Sockets.send(client, Array("question".utf8)); shutdown(client, CInt(SHUT_WR)) }
            #expect(try await blocking { try Sockets.readAll(far) } == Array("question".utf8))
            try await blocking { try Sockets.send(far, Array("a long answer".utf8)) }
            #expect(try await blocking { try Sockets.read(client, count: 13) } == Array("a long answer".utf8))
            let rest = try await blocking { shutdown(far, CInt(SHUT_WR)); return try Sockets.readAll(client) }
            #expect(rest.isEmpty)
            close(client)
            close(far)

            // The target ends first; the client reads EOF and may still send.
            let (client2, far2) = try await Self.through({ try Sockets.connectTCP(port) }, target: target)
            try await blocking { try Sockets.send(far2, Array("banner".utf8)); shutdown(far2, CInt(SHUT_WR)) }
            #expect(try await blocking { try Sockets.readAll(client2) } == Array("banner".utf8))
            try await blocking { try Sockets.send(client2, Array("still talking".utf8)); shutdown(client2, CInt(SHUT_WR)) }
            #expect(try await blocking { try Sockets.readAll(far2) } == Array("still talking".utf8))
            close(client2)
            close(far2)
        }
    }

    @Test func aResetOnEitherSideResetsTheOther() async throws {
        try await withRunningDaemon { netd in
            let target = try Sockets.listenTCP()
            defer { target.close() }
            let rpc = try BlockingRPC(netd.socketPath)
            defer { rpc.close() }
            let (serverID, port) = try await Self.forward(rpc, to: #"{"host":"127.0.0.1","port":\#(target.port)}"#)

            let (client, far) = try await Self.through({ try Sockets.connectTCP(port) }, target: target)
            try await blocking { try Sockets.send(client, Array("x".utf8)) }
            #expect(try await blocking { try Sockets.read(far, count: 1) } == Array("x".utf8))
            Sockets.reset(client)
            #expect(try await blocking { Sockets.readError(far) } == ECONNRESET)
            close(far)

            let (client2, far2) = try await Self.through({ try Sockets.connectTCP(port) }, target: target)
            try await blocking { try Sockets.send(client2, Array("y".utf8)) }
            #expect(try await blocking { try Sockets.read(far2, count: 1) } == Array("y".utf8))
            Sockets.reset(far2)
            #expect(try await blocking { Sockets.readError(client2) } == ECONNRESET)
            close(client2)

            let failed = await eventually {
                let sockets = await rpc.peek("socket.list", #"{"server":\#(serverID)}"#)["result"]?["sockets"]?.arrayValue ?? []
                return sockets.filter { $0["error"]?["code"] == .string("ECONNRESET") }.count == 2
            }
            #expect(failed, "each reset side records ECONNRESET")
        }
    }

    @Test func anUnreachableTargetResetsTheClientAndRecordsTheFailedConnect() async throws {
        try await withRunningDaemon { netd in
            let refusing = try Sockets.refusingTCP()
            defer { refusing.close() }
            let port = refusing.port
            let rpc = try BlockingRPC(netd.socketPath)
            defer { rpc.close() }
            let (serverID, front) = try await Self.forward(rpc, to: #"{"host":"127.0.0.1","port":\#(port)}"#)
            let client = try await blocking { try Sockets.connectTCP(front) }
            defer { close(client) }
            #expect(try await blocking { Sockets.readError(client) } == ECONNRESET)
            let recorded = await eventually {
                let sockets = await rpc.peek("socket.list", #"{"server":\#(serverID)}"#)["result"]?["sockets"]?.arrayValue ?? []
                return sockets.contains { $0["state"] == .string("closed") && $0["role"] == .string("accepted") }
            }
            #expect(recorded)
            let history = try await rpc.call("history.query", #"{"server":\#(serverID),"role":"client"}"#)
            let failedConnect = history["result"]?["items"]?.arrayValue?.first
            #expect(failedConnect?["error"]?["code"] == .string("ECONNREFUSED"), "\(history)")
        }
    }

    @Test func twoHundredRelayedPairsAtOnce() async throws {
        try await withRunningDaemon { netd in
            let target = try Sockets.listenUnix(netd.folder.path + "/t.sock")
            defer { target.close() }
            let rpc = try BlockingRPC(netd.socketPath)
            defer { rpc.close() }
            let (serverID, port) = try await Self.forward(rpc, to: #"{"path":"\#(netd.folder.path)/t.sock"}"#)
            var pairs: [(CInt, CInt)] = []
            for _ in 0..<200 { pairs.append(try await Self.through({ try Sockets.connectTCP(port) }, target: target)) }
            let live = await eventually {
                await rpc.peek("socket.list", #"{"server":\#(serverID),"state":"open"}"#)["result"]?["sockets"]?.arrayValue?.count == 400
            }
            #expect(live, "200 pairs, 400 open sockets")
            for (index, (client, _)) in pairs.enumerated() {
                try await blocking { try Sockets.send(client, Array("pair \(index)".utf8)); shutdown(client, CInt(SHUT_WR)) }
            }
            for (index, (client, far)) in pairs.enumerated() {
                #expect(try await blocking { try Sockets.readAll(far) } == Array("pair \(index)".utf8))
                try await blocking { try Sockets.send(far, Array("back \(index)".utf8)); shutdown(far, CInt(SHUT_WR)) }
                #expect(try await blocking { try Sockets.readAll(client) } == Array("back \(index)".utf8))
                close(client)
                close(far)
            }
        }
    }

    @Test func pipeJoinsTwoSocketsBufferedBytesFirst() async throws {
        try await withRunningDaemon { netd in
            let left = try Sockets.listenTCP()
            let right = try Sockets.listenTCP()
            defer { left.close(); right.close() }
            let rpc = try BlockingRPC(netd.socketPath)
            defer { rpc.close() }
            async let acceptedLeft = left.accept()
            let first = try #require(try await rpc.call("socket.connect", #"{"host":"127.0.0.1","port":\#(left.port)}"#).resultID)
            async let acceptedRight = right.accept()
            let second = try #require(try await rpc.call("socket.connect", #"{"host":"127.0.0.1","port":\#(right.port)}"#).resultID)
            let (a, b) = try await (acceptedLeft, acceptedRight)
            defer { close(a); close(b) }
            try await blocking { try Sockets.send(a, Array("early ".utf8)) }
            #expect(await eventually { await rpc.peek("socket.get", #"{"id":\#(first)}"#)["result"]?["buffered"] == .integer(6) })

            let piped = try await rpc.call("socket.pipe", #"{"id":\#(first),"to":\#(second)}"#)
            #expect(piped["result"]?["socket"]?["peer"] == .integer(second) && piped["result"]?["to"]?["peer"] == .integer(first), "\(piped)")
            try await blocking { try Sockets.send(a, Array("late".utf8)) }
            #expect(try await blocking { try Sockets.read(b, count: 10) } == Array("early late".utf8))
            try await blocking { try Sockets.send(b, Array("reply".utf8)) }
            #expect(try await blocking { try Sockets.read(a, count: 5) } == Array("reply".utf8))

            for (method, params) in [("socket.read", #"{"id":\#(first)}"#), ("socket.write", #"{"id":\#(second),"data":"x"}"#), ("socket.end", #"{"id":\#(first)}"#)] {
                let refused = try await rpc.call(method, params)
                #expect(refused.errorCode == -32003 && refused.errorName == "ERR_SOCKET_PIPED", "\(method): \(refused)")
            }
            let again = try await rpc.call("socket.pipe", #"{"id":\#(second),"to":\#(first)}"#)
            #expect(again.errorCode == -32003 && again.errorName == "ERR_SOCKET_PIPED", "\(again)")
            let attach = try await rpc.call("socket.attach", #"{"id":\#(first)}"#)
            #expect(attach.errorCode == -32003 && attach.errorName == "ERR_SOCKET_PIPED", "\(attach)")

            // Closing one side closes the pair.
            let closed = try await rpc.call("socket.close", #"{"id":\#(first)}"#)
            #expect(closed["result"]?["state"] == .string("closed"))
            #expect(try await blocking { try Sockets.readAll(b) }.isEmpty)
            #expect(await eventually { await rpc.peek("socket.get", #"{"id":\#(second)}"#)["result"]?["state"] == .string("closed") })
        }
    }

    @Test func everyErrorOfSectionTenAtItsBoundary() async throws {
        try await withRunningDaemon { netd in
            let rpc = try BlockingRPC(netd.socketPath)
            defer { rpc.close() }
            let longPath = "/tmp/" + String(repeating: "p", count: 103)  // 108 bytes
            let okPath = "/tmp/" + String(repeating: "p", count: 102)  // 107 bytes
            for (forward, code) in [
                (#"{"host":"127.0.0.1","port":0}"#, -32602), (#"{"host":"127.0.0.1","port":65536}"#, -32602),
                (#"{"host":"127.0.0.1"}"#, -32602), (#"{"path":"\#(longPath)"}"#, -32602),
                (#"{"path":"/tmp/x.sock","port":80}"#, -32602), (#"{"port":80,"family":5}"#, -32602),
                (#""127.0.0.1:80""#, -32602), (#"{"host":"","port":80}"#, -32602),
            ] {
                let answer = try await rpc.call("server.listen", #"{"host":"127.0.0.1","port":0,"forward":\#(forward)}"#)
                #expect(answer.errorCode == Int64(code), "forward \(forward): \(answer)")
            }
            // The last ones allowed: port 65535 and a 107-byte path (nothing listens there: each
            // connection is refused and recorded, but the forward itself is fine).
            for forward in [#"{"host":"127.0.0.1","port":65535}"#, #"{"path":"\#(okPath)"}"#] {
                let answer = try await rpc.call("server.listen", #"{"host":"127.0.0.1","port":0,"forward":\#(forward)}"#)
                #expect(answer.resultID != nil, "forward \(forward): \(answer)")
                if let id = answer.resultID {
                    let accept = try await rpc.call("server.accept", #"{"id":\#(id)}"#)
                    #expect(accept.errorCode == -32003 && accept.errorName == "ERR_SERVER_FORWARDS", "\(accept)")
                }
            }
            #expect(try await rpc.call("socket.pipe", #"{"id":5,"to":5}"#).errorCode == -32602)
            #expect(try await rpc.call("socket.pipe", #"{"id":999999,"to":999998}"#).errorCode == -32001)
            #expect(try await rpc.call("socket.pipe", #"{"id":1}"#).errorCode == -32602)
            #expect(try await rpc.call("socket.pipe", #"{"id":"1","to":2}"#).errorCode == -32602)
            #expect(try await rpc.call("server.listen", #"{"host":"127.0.0.1","port":0,"persist":"yes"}"#).errorCode == -32602)
        }
    }
}
