import CNetdTestSupport
import Foundation
import NetdClient
import NetdProtocol

/// cli-pipe: a file through `netctl pipe ID` against `socat - TCP:HOST:PORT`, through the same
/// netd forward to the same sink, each a new process with the file as stdin and /dev/null as
/// stdout, in turns; the wall time from start to exit (the sink has read every byte by then).
///
/// netctl's bytes take one more hop than socat's (netctl to netd over the attached Unix stream,
/// then netd's relay to the forward), so socat is the bound: the target is half its rate or more.
enum CLIPipeScenario {
    static func run(smoke: Bool) async throws -> [Measurement] {
        let size = smoke ? 4 << 20 : 256 << 20
        let rounds = smoke ? 1 : 5
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let (netd, socket) = try await startNetd(in: folder)
        defer { netd.stop() }
        let sink = try await TCPPeer.start(.sink)
        defer { sink.close() }
        let input = folder.path + "/input.bin"
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        for index in chunk.indices { chunk[index] = UInt8(truncatingIfNeeded: index &* 2_654_435_761 >> 13) }
        guard FileManager.default.createFile(atPath: input, contents: nil) else { throw BenchError("cannot create \(input)") }
        let file = try FileHandle(forWritingTo: URL(fileURLWithPath: input))
        for _ in 0..<(size >> 20) { file.write(Data(chunk)) }
        try file.close()

        let client = try await NetdClient.connect(socketPath: socket)
        defer { Task { await client.close() } }
        let forward = try await client.call(
            ServerListenMethod.self, .init(port: 0, host: "127.0.0.1", forward: ForwardTarget(host: "127.0.0.1", port: sink.port)))
        let port = forward.local?.port ?? 0
        let netctl = try builtExecutable("netctl")
        let socat = try installed("socat")

        var netctlSeconds: [Double] = []
        var socatSeconds: [Double] = []
        for _ in 0..<rounds {
            let before = sink.received.load(ordering: .relaxed)
            let opened = try await client.call(SocketConnectMethod.self, .init(port: port, host: "127.0.0.1"))
            netctlSeconds.append(try timedRun(netctl, ["--socket", socket, "pipe", String(opened.id)], stdin: input))
            try await waitFor(sink, toReach: before + size)
            let middle = sink.received.load(ordering: .relaxed)
            socatSeconds.append(try timedRun(socat, ["-", "TCP:127.0.0.1:\(port)"], stdin: input))
            try await waitFor(sink, toReach: middle + size)
        }
        let ours = Double(size) / median(netctlSeconds) / 1_048_576
        let theirs = Double(size) / median(socatSeconds) / 1_048_576
        return [Measurement(
            scenario: "cli-pipe", name: "netctl pipe vs socat, one forward",
            figures: [
                "netctlMiBps": ours, "socatMiBps": theirs, "ratio": ours / theirs, "mebibytes": Double(size >> 20),
                "rounds": Double(rounds),
            ])]
    }

    private static func median(_ values: [Double]) -> Double {
        values.sorted()[values.count / 2]
    }

    private static func waitFor(_ sink: TCPPeer, toReach total: Int) async throws {
        for _ in 0..<3000 where sink.received.load(ordering: .relaxed) < total {
            try await Task.sleep(for: .milliseconds(10))
        }
        guard sink.received.load(ordering: .relaxed) >= total else { throw BenchError("the sink did not receive every byte") }
    }

    /// Seconds from starting the program, with `stdin` as its input and /dev/null as its output, to its exit.
    /// Started with nothing else of this process (the shim closes every descriptor from 3): a copy
    /// of the sink's connection in the child would keep it open after the sink closes it, and the
    /// relay would wait for its end forever.
    private static func timedRun(_ executable: String, _ arguments: [String], stdin: String) throws -> Double {
        let input = open(stdin, O_RDONLY | O_CLOEXEC)
        let output = open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer {
            close(input)
            close(output)
        }
        guard input >= 0, output >= 0 else { throw BenchError("cannot open \(stdin): \(String(cString: strerror(errno)))") }
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid: pid_t = 0
        let start = DispatchTimeLike.now()
        let spawned = netd_test_spawn(executable, argv, environ, input, output, STDERR_FILENO, &pid)
        guard spawned == 0 else { throw BenchError("cannot start \(executable): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let elapsed = Double(DispatchTimeLike.now() - start) / 1e9
        guard status == 0 else { throw BenchError("\(executable) \(arguments.joined(separator: " ")) exited with status \(status)") }
        return elapsed
    }
}
