import Foundation
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
final class Program: @unchecked Sendable {
    let process: Process

    init(_ executable: String, _ arguments: [String], logTo log: String) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: log)
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    /// Stops it with SIGTERM and waits (SIGKILL after 10 s).
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
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
