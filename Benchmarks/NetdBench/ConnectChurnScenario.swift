import Foundation
import NIOCore
import NIOPosix

/// connect-churn: `socket.connect` then `socket.close` to a local server from 16 clients at once;
/// connections per second, then every one of them checked in the history database. Beside it,
/// the same 16 clients connecting and closing directly (no netd): what this machine's loopback
/// TCP does with the benchmark's server, the ceiling of the scenario.
enum ConnectChurnScenario {
    static func run(smoke: Bool) async throws -> [Measurement] {
        let clients = 16
        let seconds = smoke ? 0.3 : 3.0
        let server = try await TCPPeer.start(.hold)
        defer { server.close() }
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let database = folder.path + "/history.sqlite3"
        let directRate = try await direct(to: server.port, clients: clients, seconds: seconds)
        let (netd, socket) = try await startNetd(in: folder, database: database)
        defer { netd.stop() }

        let connect = #"{"jsonrpc":"2.0","id":1,"method":"socket.connect","params":{"host":"127.0.0.1","port":\#(server.port),"label":"churn"}}"#
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let (total, elapsed) = try await timed {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<clients {
                    group.addTask {
                        try await LineClient.with(socket) { client in
                            var done = 0
                            while ContinuousClock.now < deadline {
                                let opened = try await client.result(connect)
                                guard let id = opened["id"] as? Int else { throw BenchError("no id in \(opened)") }
                                _ = try await client.result(#"{"jsonrpc":"2.0","id":2,"method":"socket.close","params":{"id":\#(id)}}"#)
                                done += 1
                            }
                            return done
                        }
                    }
                }
                return try await group.reduce(0, +)
            }
        }
        // Every connection is in history, closed: read by another program while netd runs.
        var recorded = ""
        let expected = "\(total)|\(total)"
        for _ in 0..<50 where recorded != expected {
            try await Task.sleep(for: .milliseconds(100))
            recorded = try sqlite(database, "SELECT COUNT(*), SUM(closed_at IS NOT NULL) FROM connections WHERE label = 'churn'")
        }
        guard recorded == expected else {
            throw BenchError("connect-churn: \(total) connections made, history has (count|closed) \(recorded)")
        }
        return [Measurement(
            scenario: "connect-churn", name: "\(clients) clients connect+close",
            figures: [
                "connectionsPerSecond": (Double(total) / elapsed).rounded(), "connections": Double(total), "recorded": Double(total),
                "directPerSecond": directRate.rounded(), "ratioDirect": Double(total) / elapsed / directRate,
            ])]
    }

    /// Connections per second of `clients` NIO clients each connecting to 127.0.0.1:`port` and
    /// closing, one after another, for `seconds`.
    private static func direct(to port: Int, clients: Int, seconds: Double) async throws -> Double {
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let (total, elapsed) = try await timed {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<clients {
                    group.addTask {
                        var done = 0
                        while ContinuousClock.now < deadline {
                            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: address).get()
                            try await channel.close()
                            done += 1
                        }
                        return done
                    }
                }
                return try await group.reduce(0, +)
            }
        }
        return Double(total) / elapsed
    }
}

/// Runs one statement with the sqlite3 program, read-only; its output without the newline.
func sqlite(_ database: String, _ statement: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try installed("sqlite3"))
    process.arguments = ["-readonly", database, statement]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}
