import Foundation
import NetdClient
import NetdProtocol
import Testing

/// History through crashes and faults, with real netd processes: SIGKILL under traffic, and a
/// database that cannot be written for a while.
@Suite(.timeLimit(.minutes(2)))
struct RecoveryTests {
    @Test func killedUnderTrafficThenRestartedClosesWhatWasLostAndKeepsIDsRising() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let socket = folder.path + "/netd.sock"
        let database = folder.path + "/h.sqlite3"
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        let netd = try await startNetdProcess(socket: socket, database: database, folder: folder.path)

        let client = try await NetdClient.connect(socketPath: socket)
        var ids: [Int64] = []
        for _ in 0..<5 {
            ids.append(try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1", label: "traffic")).id)
        }
        // Traffic on every socket until netd dies under it; the task counts round trips.
        let sockets = ids
        let traffic = Task { () -> Int in
            var moved = 0
            for round in 0..<100_000 {
                for id in sockets {
                    guard (try? await client.call(SocketWriteMethod.self, .init(id: id, data: "round \(round)\n"))) != nil,
                        (try? await client.call(SocketReadMethod.self, .init(id: id, waitMs: 1000))) != nil
                    else { return moved }
                    moved += 1
                }
            }
            return moved
        }
        // Until every socket's byte counts have reached the database at least once, as a reader sees it.
        let recorded = try await eventually(seconds: 20) {
            let rows = try await run("/usr/bin/sqlite3", [database, "SELECT COUNT(*) FROM connections WHERE label = 'traffic' AND bytes_read > 0"], folder: folder.path)
            return rows.stdout == "5\n"
        }
        #expect(recorded)
        netd.signal(SIGKILL)
        _ = try await netd.wait()
        // Bytes came back on every socket, which the byte counts above show: the round trips of
        // the first four were answered, the fifth's answer may have been in flight at the kill.
        #expect(await traffic.value >= 4)
        await client.close()

        let restarted = try await startNetdProcess(socket: socket, database: database, folder: folder.path)
        let again = try await NetdClient.connect(socketPath: socket)
        let lost = try await again.call(HistoryQueryMethod.self, .init(label: "traffic"))
        #expect(lost.items.map(\.id) == ids.reversed())
        for item in lost.items {
            #expect(item.error?.code == "ELOST")
            #expect(item.closedAt != nil)
            guard case .socket(let socket) = item else { continue }
            #expect(socket.state == .closed)
            #expect(socket.bytesRead > 0, "\(socket)")
        }
        let history = try await again.call(HistoryGetMethod.self, .init(id: ids[0]))
        #expect(history.events.first?.type == "connect")
        #expect(history.events.last?.type == "close")
        #expect(history.events.last?.detail?["code"] == .string("ELOST"))
        // Closed no earlier than anything recorded of them.
        let early = try await run("/usr/bin/sqlite3", [database, """
            SELECT COUNT(*) FROM connections c WHERE error_code = 'ELOST' AND (
              closed_at < COALESCE(last_activity_at, opened_at)
              OR closed_at < (SELECT MAX(at) FROM events e WHERE e.connection_id = c.id AND e.type != 'close'))
            """], folder: folder.path)
        #expect(early.stdout == "0\n", "\(early.stderr)")
        let integrity = try await run("/usr/bin/sqlite3", [database, "PRAGMA integrity_check"], folder: folder.path)
        #expect(integrity.stdout == "ok\n")
        // ids keep rising across the restart.
        let next = try await again.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1"))
        #expect(next.id > ids.max() ?? 0)
        await again.close()
        restarted.signal(SIGTERM)
        #expect(try await restarted.wait().status == 0)
    }

    @Test func aDatabaseThatCannotBeWrittenIsReportedRetriedAndCaughtUp() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let socket = folder.path + "/netd.sock"
        let database = folder.path + "/h.sqlite3"
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        let netd = try await startNetdProcess(socket: socket, database: database, folder: folder.path, extra: ["--max-history-queue", "1000"])
        let client = try await NetdClient.connect(socketPath: socket)
        _ = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1"))
        #expect(try await eventually { try await client.call(StatusMethod.self).history.queued == 0 })

        // The disk is "full": netd may not make its files any larger than they are now.
        let wal = try FileManager.default.attributesOfItem(atPath: database + "-wal")[.size] as? Int ?? 0
        let main = try FileManager.default.attributesOfItem(atPath: database)[.size] as? Int ?? 0
        try await setFileSizeLimit(pid: netd.pid, bytes: String(max(wal, main)), folder: folder.path)

        // netd keeps serving: connections open, carry bytes and close while history cannot be written.
        var during: [Int64] = []
        for index in 0..<10 {
            let opened = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1", label: "during"))
            _ = try await client.call(SocketWriteMethod.self, .init(id: opened.id, data: "fault \(index)"))
            let echoed = try await client.call(SocketReadMethod.self, .init(id: opened.id, waitMs: 2000))
            #expect(echoed.data == "fault \(index)")
            _ = try await client.call(SocketCloseMethod.self, .init(id: opened.id))
            during.append(opened.id)
        }
        #expect(try await eventually { try await client.call(StatusMethod.self).history.failures > 0 })
        let failing = try await client.call(StatusMethod.self).history
        #expect(!failing.healthy)
        #expect(failing.queued > 0)
        #expect(failing.lastError != nil && failing.lastErrorAt != nil)
        #expect(failing.dropped == 0)

        // Room again: what was queued lands.
        try await setFileSizeLimit(pid: netd.pid, bytes: "unlimited", folder: folder.path)
        #expect(try await eventually(seconds: 15) {
            let health = try await client.call(StatusMethod.self).history
            return health.healthy && health.queued == 0
        })
        let landed = try await client.call(HistoryQueryMethod.self, .init(label: "during"))
        #expect(landed.items.map(\.id) == during.reversed())
        #expect(landed.items.allSatisfy { $0.closedAt != nil && $0.error == nil })

        // Full for longer than the queue can hold: the excess is given up and counted, not hidden.
        let walNow = try FileManager.default.attributesOfItem(atPath: database + "-wal")[.size] as? Int ?? 0
        try await setFileSizeLimit(pid: netd.pid, bytes: String(walNow), folder: folder.path)
        for _ in 0..<300 {
            let opened = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1", label: "overflow"))
            _ = try await client.call(SocketCloseMethod.self, .init(id: opened.id))
        }
        let overflowing = try await client.call(StatusMethod.self).history
        #expect(overflowing.dropped > 0)
        #expect(overflowing.queued <= 1000)
        try await setFileSizeLimit(pid: netd.pid, bytes: "unlimited", folder: folder.path)
        #expect(try await eventually(seconds: 15) { try await client.call(StatusMethod.self).history.healthy })

        await client.close()
        netd.signal(SIGTERM)
        let output = try await netd.wait()
        #expect(output.status == 0)
        #expect(output.stderr.contains("cannot write history"), "\(output.stderr)")
        #expect(output.stderr.contains("history is being written again"))
    }
}

/// Sets a running process's file size limit (RLIMIT_FSIZE) with util-linux's prlimit.
private func setFileSizeLimit(pid: Int32, bytes: String, folder: String) async throws {
    let result = try await run("/usr/bin/prlimit", ["--pid", String(pid), "--fsize=\(bytes):unlimited"], folder: folder)
    #expect(result.status == 0, "prlimit: \(result.stderr)")
}
