import Foundation
import NIOCore
import NIOPosix
import NetdClient
import NetdProtocol
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Defects of part one found by using netd as a user would; each test failed before its fix.
@Suite(.timeLimit(.minutes(2)))
struct PartOneFixesTests {
    /// One JSON-RPC call on a raw connection; ids only need to be unique per connection.
    private static let nextID = Atomic<Int>(1)

    @discardableResult
    static func call(_ raw: RawConnection, _ method: String, _ params: String = "{}") async throws -> JSONValue {
        let id = nextID.add(1, ordering: .relaxed).newValue
        let answer = try await raw.exchange(#"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"#)
        #expect(answer["id"] == .integer(Int64(id)), "\(answer)")
        return answer
    }

    /// A server in netd with one client socket connected to it and the accepted socket claimed.
    static func pair(_ raw: RawConnection) async throws -> (client: Int64, accepted: Int64) {
        let server = try await call(raw, "server.listen", #"{"host":"127.0.0.1","port":0}"#)
        let serverID = try #require(server["result"]?["id"]?.integerValue)
        let port = try #require(server["result"]?["local"]?["port"]?.integerValue)
        let client = try await call(raw, "socket.connect", #"{"host":"127.0.0.1","port":\#(port)}"#)
        let clientID = try #require(client["result"]?["id"]?.integerValue)
        let accepted = try await call(raw, "server.accept", #"{"id":\#(serverID),"waitMs":5000}"#)
        let acceptedID = try #require(accepted["result"]?["socket"]?["id"]?.integerValue)
        return (clientID, acceptedID)
    }

    @Test func aWaitingReadWhoseClientDisconnectsTakesNothing() async throws {
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { raw in
                let (client, accepted) = try await Self.pair(raw)
                for batch in [false, true] {
                    // A client asks to wait for bytes, then goes away before they come: mid-request, or
                    // mid-batch (the batch's other answers are ready, its read waits) with half of
                    // another batch sent.
                    try await withRawConnection(netd.socketPath) { leaving in
                        let read = #"{"jsonrpc":"2.0","id":1,"method":"socket.read","params":{"id":\#(accepted),"waitMs":20000}}"#
                        let others = #"{"jsonrpc":"2.0","id":2,"method":"netd.ping"},{"jsonrpc":"2.0","id":3,"method":"socket.list"}"#
                        try await leaving.send(batch ? "[\(read),\(others)]" : read)
                        let status = try await Self.call(leaving, "netd.status")
                        #expect(status["result"]?["clients"] == .integer(2))
                        if batch { try await leaving.send(bytes: Array(#"[{"jsonrpc":"2.0","id":4,"method":"netd.ping"},{"jsonrpc":"#.utf8)) }
                    }
                    #expect(try await eventually { try await Self.call(raw, "netd.status")["result"]?["clients"] == .integer(1) })
                    // What arrives now stays buffered for the next reader.
                    let text = batch ? "second" : "first"
                    try await Self.call(raw, "socket.write", #"{"id":\#(client),"data":"\#(text)"}"#)
                    #expect(try await eventually { try await Self.call(raw, "socket.get", #"{"id":\#(accepted)}"#)["result"]?["buffered"] == .integer(Int64(text.utf8.count)) })
                    try await Task.sleep(for: .milliseconds(100))
                    let read = try await Self.call(raw, "socket.read", #"{"id":\#(accepted),"waitMs":2000}"#)
                    #expect(read["result"]?["data"] == .string(text), "\(read)")
                }
            }
        }
    }

    @Test func aWaitingAcceptWhoseClientDisconnectsClaimsNothing() async throws {
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { raw in
                let server = try await Self.call(raw, "server.listen", #"{"host":"127.0.0.1","port":0}"#)
                let serverID = try #require(server["result"]?["id"]?.integerValue)
                let port = try #require(server["result"]?["local"]?["port"]?.integerValue)
                try await withRawConnection(netd.socketPath) { leaving in
                    try await leaving.send(#"{"jsonrpc":"2.0","id":1,"method":"server.accept","params":{"id":\#(serverID),"waitMs":20000}}"#)
                    _ = try await Self.call(leaving, "netd.ping")
                }
                #expect(try await eventually { try await Self.call(raw, "netd.status")["result"]?["clients"] == .integer(1) })
                let client = try await Self.call(raw, "socket.connect", #"{"host":"127.0.0.1","port":\#(port)}"#)
                #expect(client["result"]?["state"] == .string("open"))
                #expect(try await eventually { try await Self.call(raw, "server.get", #"{"id":\#(serverID)}"#)["result"]?["pending"] == .integer(1) })
                let accepted = try await Self.call(raw, "server.accept", #"{"id":\#(serverID)}"#)
                #expect(accepted["result"]?["socket"]?["id"]?.integerValue != nil, "\(accepted)")
            }
        }
    }

    @Test func unixPathsOfExactly107BytesListenAndConnect() async throws {
        try await withRunningDaemon { netd in
            let prefix = netd.folder.path + "/"
            let path = prefix + String(repeating: "p", count: 107 - prefix.utf8.count)
            #expect(path.utf8.count == 107)
            try await withRawConnection(netd.socketPath) { raw in
                let listened = try await Self.call(raw, "server.listen", #"{"path":"\#(path)"}"#)
                #expect(listened["result"]?["local"]?["path"] == .string(path), "\(listened)")
                let serverID = try #require(listened["result"]?["id"]?.integerValue)
                let connected = try await Self.call(raw, "socket.connect", #"{"path":"\#(path)"}"#)
                #expect(connected["result"]?["state"] == .string("open"), "\(connected)")
                let accepted = try await Self.call(raw, "server.accept", #"{"id":\#(serverID),"waitMs":5000}"#)
                #expect(accepted["result"]?["socket"]?["kind"] == .string("unix"))
                // One byte more is refused before anything happens.
                let longer = try await Self.call(raw, "server.listen", #"{"path":"\#(path)q"}"#)
                #expect(longer.errorCode == -32602)
                let longerConnect = try await Self.call(raw, "socket.connect", #"{"path":"\#(path)q"}"#)
                #expect(longerConnect.errorCode == -32602)
            }
        }
    }

    @Test func labelsAndHostsWithNULAreRefusedAndRecordNothing() async throws {
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { raw in
                let before = try await Self.call(raw, "history.query")["result"]?["items"]?.arrayValue?.count
                for params in [
                    #"{"host":"127.0.0.1","port":\#(peer.port),"label":"a\u0000b"}"#,
                    #"{"host":"127.0.0.1\u0000x","port":\#(peer.port)}"#,
                ] {
                    let answer = try await Self.call(raw, "socket.connect", params)
                    #expect(answer.errorCode == -32602, "\(answer)")
                    #expect(answer["error"]?["message"]?.stringValue?.contains("NUL") == true)
                }
                let listen = try await Self.call(raw, "server.listen", #"{"port":0,"label":"x\u0000"}"#)
                #expect(listen.errorCode == -32602)
                #expect(try await Self.call(raw, "socket.list")["result"]?["sockets"]?.arrayValue?.count == 0)
                #expect(try await Self.call(raw, "history.query")["result"]?["items"]?.arrayValue?.count == before)
            }
        }
    }

    @Test func theUnreadBufferPassesItsLimitByOneReadAtMost() async throws {
        let megabyte = [UInt8](repeating: 0x61, count: 1 << 20)
        let peer = try await Peer.start(.send(megabyte))
        defer { Task { await peer.close() } }
        for limit in [100_000, 65536] {
            try await withRunningDaemon(configure: { $0.limits.socketBufferBytes = limit }) { netd in
                try await withRawConnection(netd.socketPath) { raw in
                    let socket = try #require(try await Self.call(raw, "socket.connect", #"{"host":"127.0.0.1","port":\#(peer.port)}"#)["result"]?["id"]?.integerValue)
                    func buffered() async throws -> Int64 {
                        try #require(try await Self.call(raw, "socket.get", #"{"id":\#(socket)}"#)["result"]?["buffered"]?.integerValue)
                    }
                    #expect(try await eventually { try await buffered() >= Int64(limit) })
                    var highest: Int64 = 0
                    var total: Int64 = 0
                    // Small reads, each followed by a look at the buffer once it settles.
                    for _ in 0..<20 {
                        let read = try await Self.call(raw, "socket.read", #"{"id":\#(socket),"maxBytes":500}"#)
                        total += read["result"]?["bytes"]?.integerValue ?? 0
                        try await Task.sleep(for: .milliseconds(20))
                        highest = max(highest, try await buffered())
                    }
                    #expect(total == 20 * 500)
                    #expect(highest >= Int64(limit) - 500)
                    #expect(highest < Int64(limit) + 65536, "limit \(limit): buffered reached \(highest)")
                }
            }
        }
    }

    @Test func aLockedDatabaseDelaysNeitherCallsNorBytes() async throws {
        let peer = try await Peer.start(.sink)
        defer { Task { await peer.close() } }
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { raw in
                // Another program takes the database and keeps it (sqlite3 waits on its stdin).
                let locker = Process()
                locker.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
                locker.arguments = [netd.databasePath]
                let input = Pipe()
                let output = Pipe()
                locker.standardInput = input
                locker.standardOutput = output
                try locker.run()
                defer {
                    try? input.fileHandleForWriting.close()
                    locker.waitUntilExit()
                }
                input.fileHandleForWriting.write(Data("BEGIN EXCLUSIVE;\nSELECT 'locked';\n".utf8))
                _ = output.fileHandleForReading.availableData

                // For five seconds of holding it, sockets open, carry bytes and close. The lock is
                // held until the test lets it go below: bytes that arrive at all did not wait for it.
                let started = ContinuousClock.now
                var sockets: [Int64] = []
                var expected = 0
                // At least five seconds and ten sockets, however busy the machine (at most 100).
                while ContinuousClock.now - started < .seconds(5) || sockets.count < 10, sockets.count < 100 {
                    let connected = try await Self.call(raw, "socket.connect", #"{"host":"127.0.0.1","port":\#(peer.port),"label":"locked"}"#)
                    let socket = try #require(connected["result"]?["id"]?.integerValue, "\(connected)")
                    let text = "while locked \(sockets.count)"
                    try await Self.call(raw, "socket.write", #"{"id":\#(socket),"data":"\#(text)"}"#)
                    expected += text.utf8.count
                    #expect(await eventually(seconds: 10) { peer.received.withLock { $0.count } == expected }, "round \(sockets.count)")
                    try await Self.call(raw, "socket.close", #"{"id":\#(socket)}"#)
                    sockets.append(socket)
                    try await Task.sleep(for: .milliseconds(200))
                }
                #expect(locker.isRunning, "the lock was held throughout")

                // Once the lock goes, history catches up: every record, closed, with its count.
                try input.fileHandleForWriting.close()
                locker.waitUntilExit()
                var records: [JSONValue] = []
                let caughtUp = try await eventually {
                    records = try await Self.call(raw, "history.query", #"{"label":"locked","state":"closed","limit":1000}"#)["result"]?["items"]?.arrayValue ?? []
                    return records.count == sockets.count
                }
                #expect(caughtUp, "\(records.count) of \(sockets.count) records")
                #expect(Set(records.compactMap { $0["id"]?.integerValue }) == Set(sockets))
                let written = records.compactMap { $0["bytesWritten"]?.integerValue }.reduce(0, +)
                #expect(written == Int64(expected), "bytes written on record: \(written) of \(expected)")
            }
        }
    }

    @Test func anIdleSocketTimesOutOncePerIdleSpell() async throws {
        // A sink never answers, so the only traffic is what the test writes.
        let peer = try await Peer.start(.sink)
        defer { Task { await peer.close() } }
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { watcher in
                try await withRawConnection(netd.socketPath) { raw in
                    let socket = try #require(try await Self.call(raw, "socket.connect", #"{"host":"127.0.0.1","port":\#(peer.port)}"#)["result"]?["id"]?.integerValue)
                    _ = try await Self.call(watcher, "events.subscribe", #"{"types":["timeout"],"ids":[\#(socket)]}"#)
                    try await Self.call(raw, "socket.configure", #"{"id":\#(socket),"idleTimeoutMs":1}"#)
                    try await Task.sleep(for: .milliseconds(300))
                    // Activity re-arms it: one more, once.
                    try await Self.call(raw, "socket.write", #"{"id":\#(socket),"data":"x"}"#)
                    try await Task.sleep(for: .milliseconds(300))
                    try await Self.call(raw, "socket.close", #"{"id":\#(socket)}"#)
                }
                // An answer after the events counted shows that nothing more is queued.
                try await watcher.send(#"{"jsonrpc":"2.0","id":"end","method":"netd.ping"}"#)
                var timeouts = 0
                for _ in 0..<100 {
                    let line = try await watcher.json()
                    if line["id"] == .string("end") { break }
                    if line["params"]?["type"] == .string("timeout") { timeouts += 1 }
                }
                #expect(timeouts == 2)
            }
        }
    }

    @Test func aPrunedRecordIsGoneFromMemoryToo() async throws {
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { raw in
                let socket = try #require(try await Self.call(raw, "socket.connect", #"{"host":"127.0.0.1","port":\#(peer.port)}"#)["result"]?["id"]?.integerValue)
                try await Self.call(raw, "socket.close", #"{"id":\#(socket)}"#)
                #expect(try await Self.call(raw, "history.get", #"{"id":\#(socket)}"#)["result"]?["record"]?["state"] == .string("closed"))
                try await Task.sleep(for: .milliseconds(20))
                let now = Timestamp.format(Date().addingTimeInterval(1))
                let pruned = try await Self.call(raw, "history.prune", #"{"before":"\#(now)"}"#)
                #expect(pruned["result"]?["deleted"] == .integer(1))
                #expect(try await Self.call(raw, "history.get", #"{"id":\#(socket)}"#).errorCode == -32001)
                #expect(try await Self.call(raw, "socket.get", #"{"id":\#(socket)}"#).errorCode == -32001)
            }
        }
    }

    @Test func fiftyConcurrentListensEachGetTheirOwnModeAndTheUmaskStays() async throws {
        let umaskBefore = umask(0o022)
        umask(umaskBefore)
        try await withRunningDaemon { netd in
            let modes: [UInt32] = (0..<50).map { [0o600, 0o660, 0o666, 0o640, 0o700][$0 % 5] }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, mode) in modes.enumerated() {
                    group.addTask {
                        try await withRawConnection(netd.socketPath) { raw in
                            let path = netd.folder.path + "/m\(index).sock"
                            let answer = try await Self.call(raw, "server.listen", #"{"path":"\#(path)","mode":"\#(String(mode, radix: 8))"}"#)
                            #expect(answer["result"]?["state"] == .string("listening"), "\(answer)")
                        }
                    }
                }
                try await group.waitForAll()
            }
            for (index, mode) in modes.enumerated() {
                var info = stat()
                #expect(lstat(netd.folder.path + "/m\(index).sock", &info) == 0)
                #expect(info.st_mode & 0o777 == mode, "socket \(index): \(String(info.st_mode & 0o777, radix: 8)) instead of \(String(mode, radix: 8))")
            }
        }
        let umaskAfter = umask(0o022)
        umask(umaskAfter)
        #expect(umaskAfter == umaskBefore)
    }

    @Test func requestsInFlightPerClientAreCappedAtTheLimit() async throws {
        try await withRunningDaemon(configure: { $0.maxRequestsPerClient = 3 }) { netd in
            try await withRawConnection(netd.socketPath) { setup in
                let (client, accepted) = try await Self.pair(setup)
                try await withRawConnection(netd.socketPath) { raw in
                    // Three reads wait (the limit), the fourth is refused at once.
                    for id in 1...3 {
                        try await raw.send(#"{"jsonrpc":"2.0","id":\#(id),"method":"socket.read","params":{"id":\#(accepted),"waitMs":20000,"maxBytes":1}}"#)
                    }
                    try await raw.send(#"{"jsonrpc":"2.0","id":4,"method":"socket.read","params":{"id":\#(accepted),"waitMs":20000}}"#)
                    let refused = try await raw.json()
                    #expect(refused["id"] == .integer(4))
                    #expect(refused.errorCode == -32007, "\(refused)")
                    #expect(refused["error"]?["data"]?["code"] == .string("EBUSY"))
                    #expect(refused["error"]?["data"]?["limit"] == .string("max-requests-per-client"))
                    #expect(refused["error"]?["data"]?["max"] == .integer(3))
                    // Requests that never wait are still answered.
                    #expect(try await raw.exchange(#"{"jsonrpc":"2.0","id":5,"method":"netd.ping"}"#)["result"]?["pong"] == .bool(true))
                    // One answered makes room for one more.
                    try await Self.call(setup, "socket.write", #"{"id":\#(client),"data":"a"}"#)
                    let first = try await raw.json()
                    #expect(first["result"]?["data"] == .string("a"), "\(first)")
                    try await raw.send(#"{"jsonrpc":"2.0","id":6,"method":"socket.read","params":{"id":\#(accepted),"waitMs":20000,"maxBytes":1}}"#)
                    try await Self.call(setup, "socket.write", #"{"id":\#(client),"data":"bcd"}"#)
                    var ids: Set<Int64> = [first["id"]?.integerValue ?? 0]
                    for _ in 0..<3 {
                        let answer = try await raw.json()
                        #expect(answer["result"]?["bytes"] == .integer(1), "\(answer)")
                        ids.insert(answer["id"]?.integerValue ?? 0)
                    }
                    #expect(ids == [1, 2, 3, 6])
                }
            }
        }
    }

    /// Pipelined writes leave together at the end of the read that brought them, in order, each
    /// answered once its bytes are with the kernel; an end right behind them comes after them.
    @Test func pipelinedWritesArriveInOrderAndBeforeTheEnd() async throws {
        let peer = try await Peer.start(.sink)
        defer { Task { await peer.close() } }
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { raw in
                let socket = try #require(try await Self.call(raw, "socket.connect", #"{"host":"127.0.0.1","port":\#(peer.port)}"#)["result"]?["id"]?.integerValue)
                var lines = ""
                var expected = ""
                for index in 0..<200 {
                    let chunk = "chunk \(index);"
                    expected += chunk
                    lines += #"{"jsonrpc":"2.0","id":\#(index),"method":"socket.write","params":{"id":\#(socket),"data":"\#(chunk)"}}"# + "\n"
                }
                lines += #"{"jsonrpc":"2.0","id":"end","method":"socket.end","params":{"id":\#(socket)}}"# + "\n"
                try await raw.send(bytes: Array(lines.utf8))
                var answered: Set<Int64> = []
                for _ in 0...200 {
                    let answer = try await raw.json()
                    if answer["id"] == .string("end") { continue }
                    #expect(answer["result"]?["bytes"]?.integerValue == Int64(("chunk \(answer["id"]?.integerValue ?? -1);").utf8.count), "\(answer)")
                    answered.insert(answer["id"]?.integerValue ?? -1)
                }
                #expect(answered == Set(0..<200))
                #expect(await eventually { peer.halfClosed.withLock { $0 } == 1 })
                #expect(String(decoding: peer.received.withLock { $0 }, as: UTF8.self) == expected)
            }
        }
    }
}
