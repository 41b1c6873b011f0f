import Foundation

/// cli-start: the wall time of `netctl ping` against `redis-cli -s SOCKET ping`, each a new
/// process, many runs.
enum CLIStartScenario {
    static func run(smoke: Bool) async throws -> [Measurement] {
        let runs = smoke ? 5 : 100
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let (netd, socket) = try await startNetd(in: folder)
        defer { netd.stop() }
        let (redis, redisSocket) = try await startRedis(in: folder)
        defer { redis.stop() }
        let netctl = try builtExecutable("netctl")
        let redisCLI = try installed("redis-cli")
        var netctlTimes: [Double] = []
        var redisTimes: [Double] = []
        for _ in 0..<runs {
            netctlTimes.append(try wallTime(netctl, ["--socket", socket, "ping"], expect: "pong"))
            redisTimes.append(try wallTime(redisCLI, ["-s", redisSocket, "ping"], expect: "PONG"))
        }
        let ours = Latencies(microseconds: netctlTimes)
        let theirs = Latencies(microseconds: redisTimes)
        return [Measurement(
            scenario: "cli-start", name: "netctl ping vs redis-cli ping",
            figures: [
                "netctlP50Ms": ours.p50 / 1000, "netctlP99Ms": ours.p99 / 1000,
                "redisCliP50Ms": theirs.p50 / 1000, "redisCliP99Ms": theirs.p99 / 1000,
                "ratio": ours.p50 / theirs.p50, "runs": Double(runs),
            ])]
    }

    /// Microseconds from starting the program to its exit; its output must contain `expect`.
    private static func wallTime(_ executable: String, _ arguments: [String], expect: String) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        let start = DispatchTimeLike.now()
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let elapsed = Double(DispatchTimeLike.now() - start) / 1000
        guard process.terminationStatus == 0, String(decoding: output, as: UTF8.self).contains(expect) else {
            throw BenchError("\(executable) \(arguments.joined(separator: " ")) failed: \(String(decoding: output, as: UTF8.self))")
        }
        return elapsed
    }
}
