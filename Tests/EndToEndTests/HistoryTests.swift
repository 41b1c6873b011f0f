import Foundation
import NetdClient
import NetdProtocol
import NetdTestSupport
import Testing

/// history.query, history.get, history.stats and history.prune against a real netd, with real
/// peers, and what another user may see of them.
@Suite(.timeLimit(.minutes(2)))
struct HistoryTests {
    @Test func queryGetAndStatsDescribeWhatHappened() async throws {
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        let refusingPort = try Sockets.refusingTCP()
        defer { refusingPort.close() }
        let refusing = refusingPort.port
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                let started = Timestamp.format(Date().addingTimeInterval(-1))
                // Three sockets to the echo peer (one still open), a refused connect, a Unix server.
                var closed: [Int64] = []
                for index in 0..<2 {
                    let socket = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1", label: "echo"))
                    _ = try await client.call(SocketWriteMethod.self, .init(id: socket.id, data: String(repeating: "x", count: 10 * (index + 1))))
                    #expect(try await eventually { try await client.call(SocketGetMethod.self, .init(id: socket.id)).bytesRead == Int64(10 * (index + 1)) })
                    _ = try await client.call(SocketCloseMethod.self, .init(id: socket.id))
                    closed.append(socket.id)
                }
                let open = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1", label: "echo"))
                var refusedID: Int64 = 0
                do {
                    _ = try await client.call(SocketConnectMethod.self, .init(port: refusing, host: "127.0.0.1"))
                } catch let error as ResponseError {
                    refusedID = try #require(error.data?["id"]?.integerValue)
                }
                let server = try await client.call(ServerListenMethod.self, .init(path: netd.folder.path + "/app.sock", label: "app"))

                // Everything, newest first.
                let all = try await client.call(HistoryQueryMethod.self, .init())
                #expect(all.items.map(\.id) == [server.id, refusedID, open.id] + closed.reversed())
                #expect(all.next == nil)
                // The open socket is reported as it is now; the closed ones as recorded.
                guard case .socket(let live) = all.items[2] else { Issue.record("not a socket: \(all.items[2])"); return }
                #expect(live.state == .open && live.closedAt == nil)
                guard case .socket(let first) = all.items[4] else { Issue.record("not a socket: \(all.items[4])"); return }
                #expect(first.bytesRead == 10 && first.bytesWritten == 10 && first.state == .closed)
                guard case .server(let recordedServer) = all.items[0] else { Issue.record("not a server"); return }
                #expect(recordedServer.local?.path == netd.folder.path + "/app.sock")

                // Filters, each through netd.
                func ids(_ params: HistoryQueryMethod.Params) async throws -> [Int64] {
                    try await client.call(HistoryQueryMethod.self, params).items.map(\.id)
                }
                #expect(try await ids(.init(label: "echo")) == [open.id] + closed.reversed())
                #expect(try await ids(.init(state: .open)) == [server.id, open.id])
                #expect(try await ids(.init(state: .closed)) == [refusedID] + closed.reversed())
                #expect(try await ids(.init(role: .server)) == [server.id])
                #expect(try await ids(.init(kind: .unix)) == [server.id])
                #expect(try await ids(.init(port: refusing)) == [refusedID])
                #expect(try await ids(.init(host: "127.0.0.1", port: peer.port)) == [open.id] + closed.reversed())
                #expect(try await ids(.init(path: netd.folder.path + "/app.sock")) == [server.id])
                #expect(try await ids(.init(since: started, label: "echo", limit: 1)) == [open.id])
                #expect(try await ids(.init(until: started)) == [])
                #expect(try await ids(.init(label: "echo", before: open.id)) == closed.reversed())
                let page = try await client.call(HistoryQueryMethod.self, .init(label: "echo", limit: 2))
                #expect(page.items.map(\.id) == [open.id, closed[1]])
                #expect(page.next == closed[1])

                // One record with its events, in order.
                let got = try await client.call(HistoryGetMethod.self, .init(id: closed[0]))
                #expect(got.record.id == closed[0])
                #expect(got.events.map(\.type) == ["connect", "close"])
                #expect(got.events.last?.detail?["hadError"] == .bool(false))
                let refused = try await client.call(HistoryGetMethod.self, .init(id: refusedID))
                #expect(refused.record.error?.code == "ECONNREFUSED")
                #expect(refused.events.map(\.type) == ["error", "close"])

                // What did this machine talk to, and what failed?
                let stats = try await client.call(HistoryStatsMethod.self, .init(role: .client))
                let echo = try #require(stats.groups.first { $0.key == .string("127.0.0.1:\(peer.port)") })
                #expect(echo.summary.connections == 3)
                #expect(echo.summary.open == 1)
                #expect(echo.summary.failed == 0)
                #expect(echo.summary.bytesRead == 30)
                #expect(echo.summary.durationMs.p50 != nil)
                let failed = try #require(stats.groups.first { $0.key == .string("127.0.0.1:\(refusing)") })
                #expect(failed.summary.errors == ["ECONNREFUSED": 1])
                #expect(stats.total.connections == 4)
                #expect(stats.total.failed == 1)
                let byLabel = try await client.call(HistoryStatsMethod.self, .init(groupBy: .label))
                #expect(Set(byLabel.groups.map(\.key)) == [.string("echo"), .string("app"), .null])

                // Bad input changes nothing and says what is wrong.
                await expectInvalid(client, HistoryQueryMethod.self, .init(since: "yesterday"), mentioning: "since")
                await expectInvalid(client, HistoryQueryMethod.self, .init(limit: 10_001), mentioning: "limit")
                await expectInvalid(client, HistoryQueryMethod.self, .init(port: 70_000), mentioning: "port")
                await expectInvalid(client, HistoryPruneMethod.self, .init(before: "2026-13-45"), mentioning: "before")
                do {
                    _ = try await client.call(HistoryGetMethod.self, .init(id: 999_999))
                    Issue.record("history.get found a record that never existed")
                } catch let error as ResponseError {
                    #expect(error.code == .notFound)
                }

                // Prune what closed before now: the closed records go, the open ones stay.
                let pruned = try await client.call(HistoryPruneMethod.self, .init(before: Timestamp.format(Date().addingTimeInterval(1))))
                #expect(pruned.deleted == 3)
                #expect(try await ids(.init()) == [server.id, open.id])
                // ids are never reused.
                let after = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1"))
                #expect(after.id > server.id)
            }
        }
    }

    @Test func anotherUsersHistoryIsNotYours() async throws {
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        try await withRunningDaemon(configure: { $0.socketMode = 0o666; $0.access.allowedUIDs = [65534] }) { netd in
            chmod(netd.folder.path, 0o755)
            let mine = try await netd.withClient { client in
                let socket = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1"))
                _ = try await client.call(SocketCloseMethod.self, .init(id: socket.id))
                return socket.id
            }
            let netctl = try Binaries.path("netctl")
            func asNobody(_ arguments: [String]) async throws -> ProcessOutput {
                try await run(
                    "/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", netctl, "--socket", netd.socketPath] + arguments,
                    folder: netd.folder.path)
            }
            let theirs = try await asNobody(["--json", "connect", "127.0.0.1:\(peer.port)"])
            let their = try JSONDecoder().decode(SocketInfo.self, from: Data(theirs.stdout.utf8))
            let listed = try await asNobody(["--json", "call", "history.query"])
            let page = try JSONDecoder().decode(HistoryQueryMethod.Result.self, from: Data(listed.stdout.utf8))
            #expect(page.items.map(\.id) == [their.id])
            let denied = try await asNobody(["call", "history.get", #"{"id":\#(mine)}"#])
            #expect(denied.status == 1)
            #expect(denied.stderr.contains("-32001"))
            // Their prune deletes nothing of root's.
            let pruned = try await asNobody(["--json", "call", "history.prune", #"{"before":"2100-01-01T00:00:00Z"}"#])
            #expect(pruned.stdout == #"{"deleted":0}"# + "\n", "\(pruned.stderr)")
            try await netd.withClient { admin in
                let everything = try await admin.call(HistoryQueryMethod.self, .init())
                #expect(everything.items.map(\.id) == [their.id, mine])
            }
        }
    }

    @Test func retentionPrunesOldRecordsByItself() async throws {
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        try await withRunningDaemon(configure: { $0.retain = .seconds(1) }) { netd in
            try await netd.withClient { client in
                let gone = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1"))
                _ = try await client.call(SocketCloseMethod.self, .init(id: gone.id))
                let kept = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1"))
                #expect(try await eventually(seconds: 15) {
                    try await client.call(HistoryQueryMethod.self, .init()).items.map(\.id) == [kept.id]
                })
                let rows = try await run("/usr/bin/sqlite3", [netd.databasePath, "SELECT COUNT(*) FROM events WHERE connection_id = \(gone.id)"], folder: netd.folder.path)
                #expect(rows.stdout == "0\n")
            }
        }
    }
}

/// Calls `M` with `params` and expects -32602 naming `param`.
func expectInvalid<M: RPCMethod>(_ client: NetdClient, _ method: M.Type, _ params: M.Params, mentioning param: String) async {
    do {
        _ = try await client.call(method, params)
        Issue.record("\(M.name) accepted bad \(param)")
    } catch let error as ResponseError {
        #expect(error.code == .invalidParams)
        #expect(error.message.contains(param), "\(error.message)")
    } catch {
        Issue.record("\(error)")
    }
}
