import Foundation
import NetdClient
import NetdProtocol
import Testing

/// The real `netd` and `netctl` binaries as a user runs them.
@Suite(.timeLimit(.minutes(2)))
struct ProcessTests {
    @Test(arguments: [SIGTERM, SIGINT])
    func signalsShutDownGracefully(signal: Int32) async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let socket = folder.path + "/netd.sock"
        let netd = try await startNetdProcess(socket: socket, database: folder.path + "/h.sqlite3", folder: folder.path)
        // A client still connected must not hold shutdown up.
        let client = try await NetdClient.connect(socketPath: socket)
        #expect(try await client.call(PingMethod.self).pong)
        netd.signal(signal)
        let output = try await netd.wait(limit: .seconds(20))
        await client.close()
        #expect(output.status == 0, "netd exited \(output.status): \(output.stderr)")
        #expect(output.stderr.contains("netd stopped"))
        #expect(!FileManager.default.fileExists(atPath: socket))
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/h.sqlite3-wal"))
    }

    @Test func aSecondNetdRefusesWithOneLineWhileTheFirstKeepsServing() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let socket = folder.path + "/netd.sock"
        let first = try await startNetdProcess(socket: socket, database: folder.path + "/h.sqlite3", folder: folder.path)
        let second = try await run(try Binaries.path("netd"), ["--socket", socket, "--db", folder.path + "/other.sqlite3"], folder: folder.path)
        #expect(second.status != 0)
        let lines = second.stderr.split(separator: "\n")
        #expect(lines.count == 1, "expected one line, got: \(second.stderr)")
        #expect(second.stderr.contains("already listening on \(socket)"))

        let client = try await NetdClient.connect(socketPath: socket)
        #expect(try await client.call(StatusMethod.self).pid == first.pid)
        await client.close()
        first.signal(SIGTERM)
        #expect(try await first.wait().status == 0)
    }

    @Test func afterKill9ANewNetdReplacesTheStaleSocketAndKeepsTheDatabase() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let socket = folder.path + "/netd.sock"
        let database = folder.path + "/h.sqlite3"
        let first = try await startNetdProcess(socket: socket, database: database, folder: folder.path)
        first.signal(SIGKILL)
        _ = try await first.wait()
        #expect(FileManager.default.fileExists(atPath: socket), "a killed netd leaves its socket file behind")

        let second = try await startNetdProcess(socket: socket, database: database, folder: folder.path)
        let client = try await NetdClient.connect(socketPath: socket)
        let status = try await client.call(StatusMethod.self)
        #expect(status.pid == second.pid)
        #expect(status.database == database)
        await client.close()
        second.signal(SIGTERM)
        #expect(try await second.wait().status == 0)

        // The database is intact: sqlite3 reads it and the schema is there.
        let check = try await run("/usr/bin/sqlite3", [database, "PRAGMA integrity_check; SELECT COUNT(*) FROM connections;"], folder: folder.path)
        #expect(check.stdout == "ok\n0\n", "sqlite3 said: \(check.stdout) \(check.stderr)")
    }

    @Test func netdRaisesItsOpenFileLimitToTheHardLimit() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let netd = try await startNetdProcess(socket: folder.path + "/netd.sock", database: folder.path + "/h.sqlite3", folder: folder.path)
        let limits = try String(contentsOfFile: "/proc/\(netd.pid)/limits", encoding: .utf8)
        let line = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
        let numbers = line.split(separator: " ").compactMap { Int($0) }
        #expect(numbers.count == 2)
        #expect(numbers.first == numbers.last, "soft and hard limits differ: \(line)")
        netd.signal(SIGTERM)
        #expect(try await netd.wait().status == 0)
    }

    @Test func anUnusableDatabaseStopsNetdWithOneLine() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let database = folder.path + "/notes.txt"
        try Data("my notes\n".utf8).write(to: URL(fileURLWithPath: database))
        let output = try await run(try Binaries.path("netd"), ["--socket", folder.path + "/s", "--db", database], folder: folder.path)
        #expect(output.status == 1)
        #expect(output.stderr == "netd: \(database) is not a SQLite database; refusing to touch it: pass --db with another path\n")
        #expect(try String(contentsOfFile: database, encoding: .utf8) == "my notes\n")
    }

    @Test func netctlExitStatuses() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let socket = folder.path + "/netd.sock"
        let netctl = try Binaries.path("netctl")

        let unreachable = try await run(netctl, ["--socket", socket, "ping"], folder: folder.path)
        #expect(unreachable.status == 3)
        #expect(unreachable.stderr.contains("netd is not running: no socket at \(socket)"))
        #expect(unreachable.stderr.contains("start it with `netd`"))

        let netd = try await startNetdProcess(socket: socket, database: folder.path + "/h.sqlite3", folder: folder.path)
        let ping = try await run(netctl, ["--socket", socket, "ping"], folder: folder.path)
        #expect(ping.status == 0)
        #expect(ping.stdout.hasPrefix("pong from netd \(NetdVersion.current)"))

        let json = try await run(netctl, ["ping", "--socket", socket, "--json"], folder: folder.path)
        #expect(json.status == 0)
        #expect(json.stdout == #"{"pong":true,"version":"\#(NetdVersion.current)"}"# + "\n")

        let status = try await run(netctl, ["--socket", socket, "--json", "status"], folder: folder.path)
        let decoded = try JSONDecoder().decode(StatusMethod.Result.self, from: Data(status.stdout.utf8))
        #expect(decoded.pid == netd.pid)
        #expect(decoded.caller.uid == getuid())

        let call = try await run(netctl, ["--socket", socket, "--json", "call", "netd.ping", "{}"], folder: folder.path)
        #expect(call.stdout == json.stdout)

        let fromStdin = try await run(netctl, ["--socket", socket, "--json", "call", "netd.ping", "-"], stdin: "{}", folder: folder.path)
        #expect(fromStdin.status == 0)
        #expect(fromStdin.stdout == json.stdout)

        let netdError = try await run(netctl, ["--socket", socket, "call", "netd.ping", #"{"bogus":1}"#], folder: folder.path)
        #expect(netdError.status == 1)
        #expect(netdError.stderr.contains("unknown param `bogus`"))
        #expect(netdError.stderr.contains("-32602"))

        let unknownMethod = try await run(netctl, ["--socket", socket, "call", "no.such"], folder: folder.path)
        #expect(unknownMethod.status == 1)

        for usage in [["bogus"], ["call"], ["call", "netd.ping", "{not json"], ["ping", "--no-such-flag"]] {
            let output = try await run(netctl, ["--socket", socket] + usage, folder: folder.path)
            #expect(output.status == 2, "netctl \(usage) exited \(output.status)")
        }

        // A mistyped command is named, with the nearest ones, and nothing is sent to netd.
        for (typed, suggested) in [(["sttus"], "netctl status"), (["--json", "lsit"], "netctl list"), (["hstory"], "netctl history")] {
            let output = try await run(netctl, ["--socket", socket] + typed, folder: folder.path)
            #expect(output.status == 2, "netctl \(typed) exited \(output.status)")
            #expect(output.stderr.contains("no command `\(typed.last ?? "")`") && output.stderr.contains("Did you mean") && output.stderr.contains("`\(suggested)`"), "\(output.stderr)")
        }
        let nothingNear = try await run(netctl, ["--socket", socket, "xyzzy"], folder: folder.path)
        #expect(nothingNear.status == 2 && !nothingNear.stderr.contains("Did you mean"), "\(nothingNear.stderr)")
        let completion = try await run(netctl, ["--generate-completion-script", "bash"], folder: folder.path)
        #expect(completion.status == 0 && completion.stdout.contains("complete"), "a value after an option is not a command: \(completion.stderr)")

        let help = try await run(netctl, ["--help"], folder: folder.path)
        #expect(help.status == 0)
        #expect(help.stdout.contains("Exit status"))

        netd.signal(SIGTERM)
        #expect(try await netd.wait().status == 0)
    }

    /// The man pages in docs/man are current: every command netctl has, and every flag netd takes,
    /// is in them (`bash scripts/man` regenerates both).
    @Test func theManPagesAreCurrent() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let netctlPage = try String(contentsOfFile: try repositoryFile("docs/man/netctl.1"), encoding: .utf8)
        let netdPage = try String(contentsOfFile: try repositoryFile("docs/man/netd.8"), encoding: .utf8)
        #expect(netdPage.contains(".Dt NETD 8") && netctlPage.contains(".Dt NETCTL 1"))
        // netctl's commands as its help lists them, netd's flags as its help lists them.
        let help = try await run(try Binaries.path("netctl"), ["--help"], folder: folder.path).stdout
        // Each command's line starts two spaces in; the lines its summary wraps onto start further in.
        // Commands come in groups, each headed `... SUBCOMMANDS:`.
        let commands = help.components(separatedBy: "SUBCOMMANDS:").dropFirst().joined().split(separator: "\n")
            .filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") }
            .compactMap { $0.split(separator: " ").first.map { String($0).trimmingCharacters(in: .punctuationCharacters) } }
            .filter { $0 != "See" }  // "See 'netctl help <subcommand>' ...", after the list
        #expect(commands.count >= 15, "\(commands)")
        for command in commands {
            #expect(netctlPage.contains(".It Em \(command)") || netctlPage.contains(".It Em \"\(command),"), "netctl \(command) is not in docs/man/netctl.1: bash scripts/man")
        }
        let netdHelp = try await run(try Binaries.path("netd"), ["--help"], folder: folder.path).stdout
        let flags = Set(netdHelp.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "[" || $0 == "]" || $0 == "," })
            .filter { $0.hasPrefix("--") && $0.count > 2 }.map { String($0.dropFirst(2)) })
        #expect(flags.count >= 20, "\(flags)")
        for flag in flags where flag != "help" && flag != "version" {
            #expect(netdPage.contains("Fl -\(flag)"), "netd --\(flag) is not in docs/man/netd.8: bash scripts/man")
        }
    }

    @Test func eventLoopsSetsHowManyThreadsServe() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        for count in [1, 3] {
            let socket = folder.path + "/n\(count).sock"
            let netd = try await startNetdProcess(
                socket: socket, database: folder.path + "/h\(count).sqlite3", folder: folder.path, extra: ["--event-loops", "\(count)"])
            let threads = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(netd.pid)/task").compactMap { task in
                try? String(contentsOfFile: "/proc/\(netd.pid)/task/\(task)/comm", encoding: .utf8)
            }
            #expect(threads.filter { $0.hasPrefix("NIO-SGLTN-") }.count == count, "\(threads)")
            let client = try await NetdClient.connect(socketPath: socket)
            #expect(try await client.call(PingMethod.self).pong)
            await client.close()
            netd.signal(SIGTERM)
            #expect(try await netd.wait().status == 0)
        }
    }

    @Test func socatIsAWorkingClient() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let socket = folder.path + "/netd.sock"
        let netd = try await startNetdProcess(socket: socket, database: folder.path + "/h.sqlite3", folder: folder.path)
        let socat = try #require(["/usr/bin/socat", "/bin/socat"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                 "socat is not installed (scripts/test installs it)")
        let answer = try await run(
            socat, ["-t", "5", "-", "UNIX-CONNECT:\(socket)"],
            stdin: #"{"jsonrpc":"2.0","id":1,"method":"netd.ping"}"# + "\n", folder: folder.path)
        #expect(answer.status == 0)
        #expect(answer.stdout == #"{"jsonrpc":"2.0","id":1,"result":{"pong":true,"version":"\#(NetdVersion.current)"}}"# + "\n")
        netd.signal(SIGTERM)
        #expect(try await netd.wait().status == 0)
    }
}
