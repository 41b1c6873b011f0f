import Foundation
import NetdClient
import NetdProtocol
import NetdTestSupport
import Synchronization

#if canImport(Glibc)
import Glibc
import NetdLocks
#endif

/// replace: upgrading the relay in the middle of traffic. Clients keep round trips going on
/// forwarded connections to an echo server while netd is replaced (`netd --replace`), and while
/// socat, the tool people use for the same forward, is restarted as an upgrade of it would be.
/// Figures: connections that survived, the longest round trip (the pause the clients felt), and
/// the round trip before.
enum ReplaceScenario {
    static func run(smoke: Bool) async throws -> [Measurement] {
        signal(SIGPIPE, SIG_IGN)
        let connections = smoke ? 10 : 50
        let plainSockets = smoke ? 10 : 200
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let echo = try ThreadServer(.echo)
        defer { echo.close() }

        // netd: a forward to the echo server, and plain sockets held open beside it.
        let (netd, socket) = try await startNetd(in: folder, extra: ["--log-level", "notice"])
        defer { netd.stop() }
        let client = try await NetdClient.connect(socketPath: socket)
        let server = try await client.call(
            method: "server.listen",
            params: .object(["host": .string("127.0.0.1"), "port": .integer(0), "forward": .object(["host": .string("127.0.0.1"), "port": .integer(Int64(echo.port))])]))
        for _ in 0..<plainSockets {
            _ = try await client.call(method: "socket.connect", params: .object(["host": .string("127.0.0.1"), "port": .integer(Int64(echo.port))]))
        }
        await client.close()
        guard let netdPort = server["local"]?["port"]?.integerValue else { throw BenchError("server.listen failed: \(server)") }
        let viaNetd = try await roundTrips(port: Int(netdPort), connections: connections) {
            let replacing = try Program(
                try builtExecutable("netd"), ["--socket", socket, "--db", folder.path + "/history.sqlite3", "--replace", "--log-level", "notice"],
                logTo: folder.path + "/netd-new.log")
            await netd.waitUntilExit()
            return replacing
        }
        let phases = try phaseTimings(folder.path + "/netd.log")
        viaNetd.restarted?.stop()

        // socat: the same forward, restarted as systemd restarts a unit: the listening process and
        // the children it forked for each connection stop, and a new one starts.
        let socatPort = try RelayScenario.freePort()
        let socatArguments = ["TCP-LISTEN:\(socatPort),bind=127.0.0.1,reuseaddr,fork,backlog=512", "TCP:127.0.0.1:\(echo.port)"]
        let socat = try Program(try installed("socat"), socatArguments, logTo: folder.path + "/socat.log")
        try await Task.sleep(for: .milliseconds(300))
        let viaSocat = try await roundTrips(port: socatPort, connections: connections) {
            for child in children(of: socat.pid) { kill(child, SIGTERM) }
            kill(socat.pid, SIGTERM)
            await socat.waitUntilExit()
            return try Program(try installed("socat"), socatArguments, logTo: folder.path + "/socat-2.log")
        }
        viaSocat.restarted?.stop()

        var figures = phases
        figures["netdSurvived"] = Double(viaNetd.survived)
        figures["netdLongestMs"] = viaNetd.longestMs
        figures["netdP50BeforeMs"] = viaNetd.p50BeforeMs
        figures["socatSurvived"] = Double(viaSocat.survived)
        // Without a surviving connection there is no pause to speak of.
        if viaSocat.survived > 0 { figures["socatLongestMs"] = viaSocat.longestMs }
        figures["socatP50BeforeMs"] = viaSocat.p50BeforeMs
        figures["connections"] = Double(connections)
        return [Measurement(
            scenario: "replace", name: "\(connections) fwd, \(plainSockets) open",
            figures: figures,
            note: "round trips of 64 B on every forwarded connection while the relay is upgraded: netd --replace, socat restarted as systemd restarts a unit; longest = the pause felt by the surviving connections")]
    }

    struct Outcome {
        var survived: Int
        var longestMs: Double
        var p50BeforeMs: Double
        var restarted: Program?
    }

    /// Opens `connections` to `port`, keeps a 64-byte round trip going on each, runs `restart`
    /// half a second in, and goes on for a second after it: how many connections survived, the
    /// longest round trip of those, and the median round trip before the restart.
    private static func roundTrips(port: Int, connections: Int, restart: @escaping @Sendable () async throws -> Program) async throws -> Outcome {
        let descriptors = try (0..<connections).map { _ in try Sockets.connectTCP(port) }
        defer { for fd in descriptors { close(fd) } }
        let state = RoundTrips()
        let began = ContinuousClock.now
        for fd in descriptors {
            let thread = Thread {
                var one: CInt = 1
                setsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
                Sockets.setReceiveTimeout(fd, seconds: 5)
                let message = [UInt8](repeating: 0x70, count: 64)
                while !state.stopping.load(ordering: .relaxed) {
                    let started = ContinuousClock.now
                    guard (try? Sockets.send(fd, message)) != nil, (try? Sockets.read(fd, count: 64))?.count == 64 else {
                        state.broken.add(1, ordering: .relaxed)
                        return
                    }
                    let elapsed = ContinuousClock.now - started
                    state.record(at: started - began, milliseconds: Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000)
                    usleep(2000)
                }
            }
            thread.start()
        }
        try await Task.sleep(for: .milliseconds(500))
        let restartAt = ContinuousClock.now - began
        let restarted = try await restart()
        try await Task.sleep(for: .seconds(1))
        state.stopping.store(true, ordering: .relaxed)
        try await Task.sleep(for: .milliseconds(100))
        let (before, after) = state.split(at: restartAt)
        let sorted = before.sorted()
        return Outcome(
            survived: connections - state.broken.load(ordering: .relaxed), longestMs: after.max() ?? 0,
            p50BeforeMs: sorted.isEmpty ? 0 : sorted[sorted.count / 2], restarted: restarted)
    }

    /// The processes whose parent is `pid`, from /proc.
    private static func children(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { candidate in
            let status = (try? String(contentsOfFile: "/proc/\(candidate)/status", encoding: .utf8)) ?? ""
            return status.split(separator: "\n").contains { $0 == "PPid:\t\(pid)" }
        }
    }

    /// The replaced netd's log line `replaced; stopping`: how long each phase of the handover took.
    private static func phaseTimings(_ log: String) throws -> [String: Double] {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        guard let line = text.split(separator: "\n").first(where: { $0.contains("replaced; stopping") }) else {
            throw BenchError("the replaced netd did not log its handover: \(text.suffix(2000))")
        }
        var figures: [String: Double] = [:]
        for field in line.split(separator: " ") where field.hasPrefix("replace.") {
            let parts = field.dropFirst("replace.".count).split(separator: "=")
            if parts.count == 2, let value = Double(parts[1]) { figures["handover-" + parts[0]] = value }
        }
        return figures
    }
}

/// Round trips seen by the client threads of ``ReplaceScenario``.
private final class RoundTrips: Sendable {
    let stopping = Atomic<Bool>(false)
    let broken = Atomic<Int>(0)
    private let seen = Locked<[(Duration, Double)]>([])

    func record(at offset: Duration, milliseconds: Double) {
        seen.withLock { $0.append((offset, milliseconds)) }
    }

    /// Round trips that began before `moment`, and those after (in milliseconds).
    func split(at moment: Duration) -> (before: [Double], after: [Double]) {
        let all = seen.withLock { $0 }
        return (all.filter { $0.0 < moment }.map(\.1), all.filter { $0.0 >= moment - .milliseconds(200) }.map(\.1))
    }
}
