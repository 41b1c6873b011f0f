import Foundation
import NetdProtocol
import NetdTestSupport
import Testing

#if canImport(Glibc)
import Glibc
import NetdLocks
#endif

/// netd under numbers: a thousand RPC clients at once, ten thousand sockets at once, and a
/// SIGTERM with a thousand sockets open, each against a netd process and real loopback peers.
/// One at a time: together they would load a two-core machine for every other suite beside them.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct ScaleTests {
    /// The test holds as many descriptors as netd does: its soft limit goes up to the hard one.
    private static func raiseOwnFileLimit() {
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// A TCP listener on 127.0.0.1 that accepts on a thread of its own and keeps every connection
    /// (sending `greeting` on each) until closed.
    final class HoldingPeer: Sendable {
        private final class Held: Sendable {
            let descriptors = Locked<[CInt]>([])
        }

        let listener: Sockets.Listener
        private let held = Held()
        private let thread: Task<Void, Never>

        init(greeting: [UInt8] = []) throws {
            let listener = try Sockets.listenTCP()
            self.listener = listener
            let held = self.held
            // Accepting blocks: on a thread of its own, never on the test's task pool.
            thread = Task {
                _ = try? await Sockets.onThread {
                    while true {
                        let accepted = accept(listener.descriptor, nil, nil)
                        guard accepted >= 0 else { return }  // shut down: done
                        if !greeting.isEmpty { _ = try? Sockets.send(accepted, greeting) }
                        held.descriptors.withLock { $0.append(accepted) }
                    }
                }
            }
        }

        var count: Int { held.descriptors.withLock { $0.count } }

        func close() async {
            shutdown(listener.descriptor, CInt(SHUT_RDWR))
            listener.close()
            await thread.value
            for descriptor in held.descriptors.withLock({ $0 }) { Glibc.close(descriptor) }
        }
    }

    /// Opens `count` sockets to `port` over one RPC connection, pipelined `window` at a time; their ids.
    private static func connect(_ count: Int, to port: Int, on raw: RawConnection, window: Int = 500) async throws -> [Int64] {
        var ids: [Int64] = []
        var sent = 0
        while sent < count {
            let batch = min(window, count - sent)
            let lines = (0..<batch).map { #"{"jsonrpc":"2.0","id":\#(sent + $0),"method":"socket.connect","params":{"host":"127.0.0.1","port":\#(port)}}"# }
            try await raw.send(lines.joined(separator: "\n"))
            for _ in 0..<batch {
                let answer = try await raw.json()
                let id = try #require(answer["result"]?["id"]?.integerValue, "\(answer)")
                ids.append(id)
            }
            sent += batch
        }
        return ids
    }

    /// Resident memory of a process, in bytes.
    private static func residentBytes(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
        let kilobytes = try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
        return kilobytes * 1024
    }

    @Test func aThousandRPCClientsAtOnceAreEachServed() async throws {
        Self.raiseOwnFileLimit()
        try await withNetdProcess(["--max-clients", "1100", "--max-clients-per-user", "1100"]) { socket, _ in
            let count = 1000
            let answers = try await Sockets.onThread { () -> [String] in
                var clients: [CInt] = []
                defer { for client in clients { close(client) } }
                for _ in 0..<count {
                    let client = try Sockets.connectUnix(socket)
                    Sockets.setReceiveTimeout(client, seconds: 30)
                    clients.append(client)
                }
                // Every client has a request in flight before any answer is read.
                for (index, client) in clients.enumerated() {
                    try Sockets.send(client, Array(#"{"jsonrpc":"2.0","id":\#(index),"method":"netd.status"}"#.utf8) + [10])
                }
                return try clients.map { try Sockets.readLine($0) }
            }
            var clientsSeen = 0
            for (index, line) in answers.enumerated() {
                let answer = try JSONDecoder().decode(JSONValue.self, from: Data(line.utf8))
                #expect(answer["id"] == .integer(Int64(index)), "\(answer)")
                clientsSeen = max(clientsSeen, Int(answer["result"]?["clients"]?.integerValue ?? 0))
            }
            // The last ones answered saw (nearly) all thousand connected.
            #expect(clientsSeen >= count, "at most \(clientsSeen) clients seen at once")
            let status = try await withRawConnection(socket) { try await $0.exchange(#"{"jsonrpc":"2.0","id":1,"method":"netd.status"}"#) }
            #expect(status["result"]?["clients"] != nil)
        }
    }

    @Test func tenThousandSocketsOpenAtOnce() async throws {
        Self.raiseOwnFileLimit()
        let peer = try HoldingPeer()
        try await withNetdProcess { socket, netd in
            try await withRawConnection(socket) { raw in
                // Warm: the first sockets bring in what every socket shares.
                let warm = try await Self.connect(100, to: peer.listener.port, on: raw)
                let before = try Self.residentBytes(netd.pid)
                let count = 10_000
                let ids = try await Self.connect(count, to: peer.listener.port, on: raw)
                #expect(Set(ids).count == count)
                #expect(await eventually { peer.count == count + warm.count })
                let status = try await raw.exchange(#"{"jsonrpc":"2.0","id":"s","method":"netd.status"}"#)
                #expect(status["result"]?["sockets"] == .integer(Int64(count + warm.count)), "\(status)")
                let after = try Self.residentBytes(netd.pid)
                let perSocket = (after - before) / count
                print("netd: \(count) more sockets took \(after - before) bytes resident: \(perSocket) bytes per socket")
                // A bound far above what it is, so that a leak per socket (a buffer of its own) shows.
                #expect(perSocket < 64 << 10, "\(perSocket) bytes per socket")
                // Every one still answers.
                let last = try await raw.exchange(#"{"jsonrpc":"2.0","id":"w","method":"socket.write","params":{"id":\#(ids.last ?? 0),"data":"x"}}"#)
                #expect(last["result"]?["bytes"] == .integer(1), "\(last)")
            }
        }
        await peer.close()
    }

    @Test func sigtermWithAThousandSocketsClosesEveryRecordCleanly() async throws {
        Self.raiseOwnFileLimit()
        let peer = try HoldingPeer(greeting: Array("unread bytes".utf8))
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let socket = folder.path + "/netd.sock"
        let database = folder.path + "/h.sqlite3"
        let netd = try await startNetdProcess(socket: socket, database: database, folder: folder.path)
        let count = 1000
        try await withRawConnection(socket) { raw in
            let ids = try await Self.connect(count, to: peer.listener.port, on: raw)
            #expect(Set(ids).count == count)
            #expect(await eventually { peer.count == count })
            // Every socket has its peer's greeting buffered, unread.
            #expect(try await eventually {
                let listed = try await raw.exchange(#"{"jsonrpc":"2.0","id":"l","method":"socket.list"}"#)
                return listed["result"]?["sockets"]?.arrayValue?.filter({ $0["buffered"] == .integer(12) }).count == count
            })
            // A request is waiting when netd is told to stop.
            let server = try await raw.exchange(#"{"jsonrpc":"2.0","id":"s","method":"server.listen","params":{"host":"127.0.0.1","port":0}}"#)
            let serverID = try #require(server["result"]?["id"]?.integerValue)
            try await raw.send(#"{"jsonrpc":"2.0","id":"a","method":"server.accept","params":{"id":\#(serverID),"waitMs":20000}}"#)
        }
        let start = ContinuousClock.now
        netd.signal(SIGTERM)
        let output = try await netd.wait(limit: .seconds(30))
        let took = ContinuousClock.now - start
        #expect(output.status == 0, "\(output.stderr)")
        #expect(took < .seconds(5), "netd took \(took) to stop with \(count) sockets open")
        let rows = try await run(
            "/usr/bin/sqlite3",
            [database, "SELECT count(*), sum(closed_at IS NULL), sum(error_code IS NOT NULL), sum(bytes_read) FROM connections WHERE role = 'client'"],
            folder: folder.path)
        #expect(rows.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(count)|0|0|\(count * 12)", "count|open|with an error|bytes read: \(rows.stdout) \(rows.stderr)")
        await peer.close()
    }
}
