import Foundation
import NetdTestSupport
import NetdClient
import NetdProtocol

/// Latencies of one measured series, in microseconds.
struct Latencies: Codable, Sendable {
    var count: Int
    var p50: Double
    var p99: Double
    var max: Double

    init(microseconds samples: [Double]) {
        let sorted = samples.sorted()
        func rank(_ fraction: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            return sorted[Swift.max(0, Swift.min(sorted.count - 1, Int((fraction * Double(sorted.count)).rounded(.up)) - 1))]
        }
        count = sorted.count
        p50 = rank(0.5)
        p99 = rank(0.99)
        max = sorted.last ?? 0
    }
}

/// One line of the report: a scenario, what was measured, and the figures.
struct Measurement: Codable, Sendable {
    var scenario: String
    var name: String
    /// The figures by name (`p50Ms`, `rps`, `ratio`, ...).
    var figures: [String: Double]
    var note: String?
}

/// Seconds elapsed while running `body`.
func timed<T>(_ body: () async throws -> T) async rethrows -> (T, Double) {
    let start = ContinuousClock.now
    let result = try await body()
    let elapsed = ContinuousClock.now - start
    return (result, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

/// A folder under /tmp with a short name (socket paths must fit in 107 bytes).
struct ScratchFolder {
    let path: String

    init() throws {
        path = "/tmp/nb-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A program the benchmark runs, built beside it (netd) or installed (redis-server, socat, node).
final class Program: Sendable {
    private let process: Spawned
    private let log: String
    private let name: String

    init(_ executable: String, _ arguments: [String], logTo log: String) throws {
        self.log = log
        name = URL(fileURLWithPath: executable).lastPathComponent
        process = try Spawned(executable, arguments, stdout: log, stderr: log)
    }

    var pid: Int32 { process.pid }

    var isRunning: Bool { process.exitStatus == nil }

    /// Waits until its output has a line starting with `prefix`; that line.
    func waitForLine(startingWith prefix: String, seconds: Double = 60) async throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) { return String(line) }
            guard isRunning else { throw BenchError("\(name) exited: \(text)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw BenchError("no line starting with \(prefix) from \(name) in \(seconds) s")
    }

    /// Waits until it has exited.
    func waitUntilExit() async {
        _ = await process.wait()
    }

    /// Stops it with SIGTERM and waits (SIGKILL after 10 s).
    func stop() {
        guard isRunning else { return }
        process.signal(SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while isRunning && Date() < deadline { usleep(10_000) }
        if isRunning { process.signal(SIGKILL) }
        _ = process.waitBlocking()
    }

    /// Resident memory in bytes, from /proc.
    var residentBytes: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        let kilobytes = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kilobytes * 1024
    }
}

/// The netd executable built beside this one.
func builtExecutable(_ name: String) throws -> String {
    let here = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    let path = here.appendingPathComponent(name).path
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw BenchError("\(path) is missing: build it first (swift build -c release)")
    }
    return path
}

/// Starts netd on `folder` and waits until it answers.
func startNetd(in folder: ScratchFolder, database: String? = nil, extra: [String] = []) async throws -> (Program, String) {
    let socket = folder.path + "/netd.sock"
    let netd = try Program(
        try builtExecutable("netd"),
        ["--socket", socket, "--db", database ?? folder.path + "/history.sqlite3", "--log-level", "warning"] + extra,
        logTo: folder.path + "/netd.log")
    for _ in 0..<300 {
        if let client = try? await NetdClient.connect(socketPath: socket) {
            let pong = try? await client.call(PingMethod.self)
            await client.close()
            if pong != nil { return (netd, socket) }
        }
        try await Task.sleep(for: .milliseconds(100))
    }
    netd.stop()
    throw BenchError("netd did not start; see \(folder.path)/netd.log")
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A program installed on the machine (scripts/bench installs the missing ones).
func installed(_ name: String) throws -> String {
    for folder in ["/usr/bin", "/usr/local/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: folder + "/" + name) {
        return folder + "/" + name
    }
    throw BenchError("\(name) is not installed: run bash scripts/bench, which installs it")
}

/// A file of this repository (the Node.js peer), found above the executable or the current folder.
func repositoryFile(_ relative: String) throws -> String {
    var candidates = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath)]
    candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent())
    for start in candidates {
        var folder = start
        for _ in 0..<6 {
            let path = folder.appendingPathComponent(relative).path
            if FileManager.default.fileExists(atPath: path) { return path }
            folder = folder.deletingLastPathComponent()
        }
    }
    throw BenchError("cannot find \(relative); run netd-bench from the repository")
}

/// redis-server on a Unix socket in `folder`, nothing saved.
func startRedis(in folder: ScratchFolder) async throws -> (Program, String) {
    let socket = folder.path + "/redis.sock"
    let redis = try Program(
        try installed("redis-server"),
        ["--port", "0", "--unixsocket", socket, "--save", "", "--appendonly", "no", "--dir", folder.path, "--loglevel", "warning"],
        logTo: folder.path + "/redis.log")
    for _ in 0..<200 where !FileManager.default.fileExists(atPath: socket) {
        try await Task.sleep(for: .milliseconds(20))
    }
    return (redis, socket)
}

/// The Node.js peer (Benchmarks/node/peer.js) in one of its modes.
func startNode(_ arguments: [String], in folder: ScratchFolder, log: String) throws -> Program {
    try Program(try installed("node"), [try repositoryFile("Benchmarks/node/peer.js")] + arguments, logTo: folder.path + "/" + log)
}


/// netd, redis-server and the by-hand Node.js daemon (`peer.js rpc`), each on a Unix socket in one
/// folder, for the scenarios that compare the three with one load generator.
struct RPCPeers {
    let netd: Program
    let netdSocket: String
    let redis: Program
    let redisSocket: String
    let node: Program
    let nodeSocket: String

    static func start(in folder: ScratchFolder) async throws -> RPCPeers {
        let (netd, netdSocket) = try await startNetd(in: folder)
        do {
            let (redis, redisSocket) = try await startRedis(in: folder)
            do {
                let nodeSocket = folder.path + "/node.sock"
                let node = try startNode(["rpc", nodeSocket], in: folder, log: "node.log")
                do {
                    _ = try await node.waitForLine(startingWith: "ready")
                } catch {
                    node.stop()
                    throw error
                }
                return RPCPeers(netd: netd, netdSocket: netdSocket, redis: redis, redisSocket: redisSocket, node: node, nodeSocket: nodeSocket)
            } catch {
                redis.stop()
                throw error
            }
        } catch {
            netd.stop()
            throw error
        }
    }

    func stop() {
        node.stop()
        redis.stop()
        netd.stop()
    }
}

/// Runs each peer's measurement `rounds` times, taking turns (netd, then the others, then netd
/// again...), and keeps for each peer the round with its median rate: on a shared machine whose
/// speed drifts by 10 to 40% within minutes, peers measured in turns see the same drift, and one
/// slow spell does not decide a ratio.
func interleaved(rounds: Int, _ peers: [() async throws -> (Double, Latencies)]) async throws -> [(Double, Latencies)] {
    var runs = [[(Double, Latencies)]](repeating: [], count: peers.count)
    for _ in 0..<max(1, rounds) {
        for (index, peer) in peers.enumerated() { runs[index].append(try await peer()) }
    }
    return runs.map { rounds in rounds.sorted { $0.0 < $1.0 }[rounds.count / 2] }
}
