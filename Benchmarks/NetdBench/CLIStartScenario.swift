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
    ///
    /// Started with posix_spawn: Foundation's `Process` took about 50 ms per start from this
    /// process on the test machine, which would hide what the two programs themselves cost.
    private static func wallTime(_ executable: String, _ arguments: [String], expect: String) throws -> Double {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw BenchError("pipe: \(String(cString: strerror(errno)))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid: pid_t = 0
        let start = DispatchTimeLike.now()
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        close(fds[1])
        guard spawned == 0 else {
            close(fds[0])
            throw BenchError("cannot start \(executable): \(String(cString: strerror(spawned)))")
        }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if count <= 0 { break }
            output += chunk[..<count]
        }
        close(fds[0])
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let elapsed = Double(DispatchTimeLike.now() - start) / 1000
        let text = String(decoding: output, as: UTF8.self)
        guard status == 0, text.contains(expect) else {
            throw BenchError("\(executable) \(arguments.joined(separator: " ")) failed (status \(status)): \(text)")
        }
        return elapsed
    }
}
