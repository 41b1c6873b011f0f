import Foundation
import NetdClient
import NetdProtocol
import NetdTestSupport

#if canImport(Glibc)
import Glibc
import NetdLocks
#endif

/// workers: many short HTTP connections served by 4 Python worker processes that each loop on
/// `server.accept` with `handoff: true` (docs/examples/worker.py), beside one Python process
/// accepting alone (the same serving code, no netd) and Node's `cluster` module with 4 workers
/// (round-robin by the primary); the total rate, and how evenly the workers shared the connections.
enum WorkersScenario {
    static let workers = 4

    static func run(smoke: Bool) async throws -> [Measurement] {
        signal(SIGPIPE, SIG_IGN)
        let seconds = smoke ? 0.5 : 5.0
        let clients = 8
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let python = try installed("python3")

        let (netd, socket) = try await startNetd(in: folder)
        defer { netd.stop() }
        let client = try await NetdClient.connect(socketPath: socket)
        let server = try await client.call(method: "server.listen", params: .object(["host": .string("127.0.0.1"), "port": .integer(0)]))
        await client.close()
        guard let serverID = server["id"]?.integerValue, let netdPort = server["local"]?["port"]?.integerValue else {
            throw BenchError("server.listen failed: \(server)")
        }
        let script = try repositoryFile("docs/examples/worker.py")
        let pool = try (0..<workers).map { try Program(python, [script, socket, "\(serverID)", "w\($0)"], logTo: folder.path + "/worker-\($0).log") }
        try await Task.sleep(for: .milliseconds(smoke ? 500 : 1500))
        let viaNetd = try await load(port: Int(netdPort), clients: clients, seconds: seconds)
        for worker in pool { worker.stop() }

        let alonePort = try RelayScenario.freePort()
        let alone = try Program(python, ["-c", Self.alone, "\(alonePort)"], logTo: folder.path + "/alone.log")
        defer { alone.stop() }
        _ = try await alone.waitForLine(startingWith: "ready")
        let single = try await load(port: alonePort, clients: clients, seconds: seconds)
        alone.stop()

        let clusterPort = try RelayScenario.freePort()
        let cluster = try startNode(["cluster", "\(clusterPort)", "\(workers)"], in: folder, log: "cluster.log")
        defer { cluster.stop() }
        _ = try await cluster.waitForLine(startingWith: "ready")
        let node = try await load(port: clusterPort, clients: clients, seconds: seconds)
        cluster.stop()

        func spread(_ counts: [String: Int]) -> (maxOverMin: Double, minShare: Double, maxShare: Double) {
            let values = (0..<workers).map { index in counts.first { $0.key.hasSuffix("\(index)") }?.value ?? 0 }
            let total = Double(max(values.reduce(0, +), 1))
            let (low, high) = (Double(values.min() ?? 0), Double(values.max() ?? 0))
            return (high / max(low, 1), low / total, high / total)
        }
        let (netdSpread, nodeSpread) = (spread(viaNetd.counts), spread(node.counts))
        var figures: [String: Double] = [
            "netdWorkersRps": viaNetd.rate, "aloneRps": single.rate, "nodeClusterRps": node.rate,
            "netdVsAlone": viaNetd.rate / max(single.rate, 1e-9), "netdVsNodeCluster": viaNetd.rate / max(node.rate, 1e-9),
            "netdMaxOverMin": netdSpread.maxOverMin, "netdMinShare": netdSpread.minShare, "netdMaxShare": netdSpread.maxShare,
            "nodeMaxOverMin": nodeSpread.maxOverMin, "nodeMinShare": nodeSpread.minShare, "nodeMaxShare": nodeSpread.maxShare,
        ]
        for (name, count) in viaNetd.counts { figures["netd-\(name)"] = Double(count) }
        for (name, count) in node.counts { figures[name] = Double(count) }
        return [Measurement(
            scenario: "workers", name: "\(workers) workers, HTTP/1.0",
            figures: figures, note: "\(clients) clients making one request per connection for \(seconds) s; shares are of all connections served")]
    }

    /// Clients that each open a connection, send one HTTP/1.0 request, read the answer to its end,
    /// and start again, until `seconds` pass: the rate, and how many each worker (named in the body) served.
    static func load(port: Int, clients: Int, seconds: Double) async throws -> (rate: Double, counts: [String: Int]) {
        let tally = Tally()
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<clients {
                group.addTask {
                    try await Sockets.onThread {
                        let request = Array("GET / HTTP/1.0\r\nHost: bench\r\n\r\n".utf8)
                        while ContinuousClock.now < deadline {
                            let fd = try Sockets.connectTCP(port)
                            defer { close(fd) }
                            try Sockets.send(fd, request)
                            let answer = String(decoding: try Sockets.readAll(fd), as: UTF8.self)
                            let name = answer.range(of: "served by ").map { answer[$0.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines) } ?? "?"
                            tally.counts.withLock { $0[name, default: 0] += 1 }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - started
        let all = tally.counts.withLock { $0 }
        let total = Double(all.values.reduce(0, +))
        return (total / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18), all)
    }

    /// Responses counted by the worker that served them, from the clients' threads.
    final class Tally: Sendable {
        let counts = Locked<[String: Int]>([:])
    }

    /// One Python process accepting alone, serving as docs/examples/worker.py does.
    static let alone = #"""
        import socket, sys
        listener = socket.socket(); listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", int(sys.argv[1]))); listener.listen(511)
        print("ready", flush=True)
        body = b"served by alone0\n"
        while True:
            connection, _ = listener.accept()
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = connection.recv(65536)
                if not chunk: break
                received += chunk
            connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            connection.close()
        """#
}
