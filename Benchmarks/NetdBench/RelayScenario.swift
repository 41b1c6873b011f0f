import Foundation
import NetdClient
import NetdProtocol
import NetdTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// relay: a forward from a loopback TCP port to a TCP server, and to a Unix-socket server, through
/// netd (`server.listen` with `forward`), socat with its default buffer and with `-b 262144`, a
/// Node.js `net` pipe (`a.pipe(b)`, Benchmarks/node/peer.js), and the direct connection; the same
/// load through each, in turns, in one run: MB/s with 1 and 16 connections writing at once, CPU
/// seconds per GB moved (the relay process, its children included), the latency a relay adds to a
/// 64-byte ping-pong, and the memory each idle relayed pair costs.
enum RelayScenario {
    /// One way to reach a target: through a relay process (or none, for the direct connection).
    struct Front {
        let name: String
        let connect: @Sendable () throws -> CInt
        /// The relay process, for its CPU and memory; nil for the direct connection.
        let pid: Int32?
    }

    static let relays = ["netd", "socat", "socat-b262144", "node-pipe"]

    static func run(smoke: Bool, netdFlags: [String] = []) async throws -> [Measurement] {
        signal(SIGPIPE, SIG_IGN)
        let seconds = smoke ? 0.3 : 3.0
        let rounds = smoke ? 1 : 3
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let (netd, netdSocket) = try await startNetd(in: folder, extra: netdFlags)
        defer { netd.stop() }
        var measurements: [Measurement] = []
        for unix in [false, true] {
            let route = unix ? "tcp-to-unix" : "tcp-to-tcp"
            let sink = try ThreadServer(.sink, unixPath: unix ? folder.path + "/sink.sock" : nil)
            defer { sink.close() }
            let (fronts, stop) = try await Self.fronts(to: sink, unixPath: unix ? folder.path + "/sink.sock" : nil, netd: (netd, netdSocket), in: folder)
            defer { stop() }
            for connections in [1, 16] {
                var samples: [String: [(mbps: Double, cpuPerGB: Double?)]] = [:]
                for _ in 0..<rounds {
                    for front in fronts {
                        samples[front.name, default: []].append(try await throughput(through: front, connections: connections, sink: sink, seconds: seconds))
                    }
                }
                var figures: [String: Double] = [:]
                for (name, runs) in samples {
                    let median = runs.sorted { $0.mbps < $1.mbps }[runs.count / 2]
                    figures["\(name)MBps"] = median.mbps
                    if let cpu = median.cpuPerGB { figures["\(name)CPUsPerGB"] = cpu }
                }
                let direct = figures["directMBps"] ?? 1
                let bestSocat = max(figures["socatMBps"] ?? 0, figures["socat-b262144MBps"] ?? 0)
                for relay in relays { figures["\(relay)VsDirect"] = (figures["\(relay)MBps"] ?? 0) / direct }
                figures["netdVsBestSocat"] = (figures["netdMBps"] ?? 0) / max(bestSocat, 1e-9)
                figures["netdVsNode"] = (figures["netdMBps"] ?? 0) / max(figures["node-pipeMBps"] ?? 0, 1e-9)
                measurements.append(Measurement(
                    scenario: "relay", name: "\(route) \(connections) conn MB/s",
                    figures: figures, note: "median of \(rounds) rounds taken in turns; CPU s/GB of the relay process with its children"))
            }
        }
        measurements.append(try await latency(in: folder, netd: (netd, netdSocket), smoke: smoke))
        measurements.append(try await idleMemory(in: folder, netd: (netd, netdSocket), smoke: smoke))
        return measurements
    }

    /// The direct connection and every relay, each reaching `target`; `stop` ends the relays.
    static func fronts(
        to target: ThreadServer, unixPath: String?, netd: (Program, String), in folder: ScratchFolder
    ) async throws -> ([Front], @Sendable () -> Void) {
        let targetPort = target.port
        let direct = Front(name: "direct", connect: { try unixPath.map(Sockets.connectUnix) ?? Sockets.connectTCP(targetPort) }, pid: nil)

        let forward: JSONValue = unixPath.map { .object(["path": .string($0)]) } ?? .object(["host": .string("127.0.0.1"), "port": .integer(Int64(targetPort))])
        let client = try await NetdClient.connect(socketPath: netd.1)
        let server = try await client.call(method: "server.listen", params: .object([
            "host": .string("127.0.0.1"), "port": .integer(0), "forward": forward, "noDelay": .bool(true),
        ]))
        await client.close()
        guard let netdPort = server["local"]?["port"]?.integerValue else { throw BenchError("server.listen failed: \(server)") }
        let viaNetd = Front(name: "netd", connect: { try Sockets.connectTCP(Int(netdPort)) }, pid: netd.0.pid)

        let socatTarget = unixPath.map { "UNIX-CONNECT:\($0)" } ?? "TCP:127.0.0.1:\(targetPort)"
        var programs: [Program] = []
        var fronts = [direct, viaNetd]
        for (name, extra) in [("socat", [String]()), ("socat-b262144", ["-b", "262144"])] {
            let port = try freePort()
            let socat = try Program(try installed("socat"), extra + ["TCP-LISTEN:\(port),bind=127.0.0.1,reuseaddr,fork,backlog=512", socatTarget], logTo: folder.path + "/\(name).log")
            programs.append(socat)
            try await waitListening(port)
            fronts.append(Front(name: name, connect: { try Sockets.connectTCP(port) }, pid: socat.pid))
        }
        let nodePort = try freePort()
        let node = try startNode(["pipe", "\(nodePort)", unixPath ?? "\(targetPort)"], in: folder, log: "node-pipe.log")
        programs.append(node)
        _ = try await node.waitForLine(startingWith: "ready")
        fronts.append(Front(name: "node-pipe", connect: { try Sockets.connectTCP(nodePort) }, pid: node.pid))
        let stopAll: @Sendable () -> Void = { [programs] in for program in programs { program.stop() } }
        return (fronts, stopAll)
    }

    /// `connections` connections through `front`, each written to as fast as it takes bytes:
    /// what the sink received per second, and the relay's CPU seconds per GB over the whole run.
    static func throughput(through front: Front, connections: Int, sink: ThreadServer, seconds: Double) async throws -> (mbps: Double, cpuPerGB: Double?) {
        let cpuBefore = front.pid.map(cpuSeconds)
        let totalBefore = sink.received.load(ordering: .relaxed)
        var descriptors: [CInt] = []
        for _ in 0..<connections { descriptors.append(try front.connect()) }
        let hoses = Firehoses.writing(to: descriptors)
        try await Task.sleep(for: .milliseconds(300))
        let before = sink.received.load(ordering: .relaxed)
        let ((), elapsed) = try await timed { try await Task.sleep(for: .milliseconds(Int(seconds * 1000))) }
        let after = sink.received.load(ordering: .relaxed)
        await hoses.stop(closing: descriptors)
        // socat's children are counted once it has waited for them.
        try await Task.sleep(for: .milliseconds(500))
        let moved = Double(sink.received.load(ordering: .relaxed) - totalBefore)
        let cpu: Double? = if let pid = front.pid, let cpuBefore { cpuSeconds(of: pid) - cpuBefore } else { nil }
        return (Double(after - before) / elapsed / 1_000_000, cpu.map { $0 / max(moved / 1e9, 1e-9) })
    }

    /// 64-byte round trips through each relay to an echo server, against the direct connection.
    static func latency(in folder: ScratchFolder, netd: (Program, String), smoke: Bool) async throws -> Measurement {
        let echo = try ThreadServer(.echo)
        defer { echo.close() }
        let (fronts, stop) = try await fronts(to: echo, unixPath: nil, netd: netd, in: folder)
        defer { stop() }
        // In turns, several rounds: this machine's wake-up latency drifts by tens of microseconds
        // from minute to minute, more than a relay adds, so every front meets the same drift.
        let (rounds, trips) = smoke ? (1, 100) : (7, 1000)
        var connections: [String: CInt] = [:]
        for front in fronts { connections[front.name] = try front.connect() }
        defer { for fd in connections.values { _ = close(fd) } }
        var medians: [String: [Double]] = [:]
        var tails: [String: [Double]] = [:]
        for round in 0..<rounds {
            for front in fronts {
                guard let fd = connections[front.name] else { continue }
                if round == 0 { _ = try await ThreadPeerRun.blocking { try pingPong(fd, size: 64, rounds: trips / 10) } }
                let times = Latencies(microseconds: try await ThreadPeerRun.blocking { try pingPong(fd, size: 64, rounds: trips) })
                medians[front.name, default: []].append(times.p50)
                tails[front.name, default: []].append(times.p99)
            }
        }
        var figures: [String: Double] = [:]
        for front in fronts {
            let p50s = (medians[front.name] ?? [0]).sorted()
            let p99s = (tails[front.name] ?? [0]).sorted()
            figures["\(front.name)P50Us"] = p50s[p50s.count / 2]
            figures["\(front.name)P99Us"] = p99s[p99s.count / 2]
        }
        let direct = figures["directP50Us"] ?? 0
        for relay in relays { figures["\(relay)AddedUs"] = (figures["\(relay)P50Us"] ?? 0) - direct }
        let bestSocat = min(figures["socatAddedUs"] ?? .infinity, figures["socat-b262144AddedUs"] ?? .infinity)
        figures["netdAddedVsSocat"] = (figures["netdAddedUs"] ?? 0) / max(bestSocat, 1e-9)
        return Measurement(
            scenario: "relay", name: "64-byte ping-pong latency", figures: figures,
            note: "\(rounds) rounds of \(trips) round trips each, in turns, TCP to TCP; the median round's p50 and p99; added = p50 through the relay minus p50 direct")
    }

    /// Idle pairs held through each relay: resident memory per pair (socat: its forked children included).
    static func idleMemory(in folder: ScratchFolder, netd: (Program, String), smoke: Bool) async throws -> Measurement {
        let hold = try ThreadServer(.hold)
        defer { hold.close() }
        let (fronts, stop) = try await fronts(to: hold, unixPath: nil, netd: netd, in: folder)
        defer { stop() }
        let pairs = smoke ? 20 : 1000
        var figures: [String: Double] = [:]
        for front in fronts where front.pid != nil {
            let pid = front.pid ?? 0
            let before = residentBytesWithChildren(of: pid)
            var descriptors: [CInt] = []
            for _ in 0..<pairs { descriptors.append(try front.connect()) }
            try await Task.sleep(for: .milliseconds(smoke ? 300 : 1500))
            let after = residentBytesWithChildren(of: pid)
            figures["\(front.name)BytesPerPair"] = Double(after - before) / Double(pairs)
            for fd in descriptors { _ = close(fd) }
            try await Task.sleep(for: .milliseconds(smoke ? 200 : 1000))
        }
        return Measurement(scenario: "relay", name: "memory per idle pair", figures: figures, note: "\(pairs) idle pairs; growth of the relay's resident memory (with its children)")
    }

    static func freePort() throws -> Int {
        let probe = try Sockets.listenTCP()
        defer { probe.close() }
        return probe.port
    }

    static func waitListening(_ port: Int) async throws {
        for _ in 0..<250 {
            if let fd = try? Sockets.connectTCP(port) {
                _ = close(fd)
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw BenchError("nothing listens on \(port)")
    }
}

enum ThreadPeerRun {
    /// Blocking socket work on a thread of its own.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await Sockets.onThread(body)
    }
}
