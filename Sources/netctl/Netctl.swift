import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import NetdBlockingClient
import NetdProtocol

/// Every command names itself (`commandName:`): ArgumentParser would otherwise derive each name from
/// its type with `String(describing:)`, a reflective lookup per command at every start, a third of
/// what `netctl ping` cost.
struct Netctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netctl",
        abstract: "Talk to netd: open, watch, forward, break and look back at connections it holds for you.",
        discussion: """
            A first session, with a server of your own on 127.0.0.1:6379:
              netctl connect 127.0.0.1:6379 --label redis     # socket 1
              netctl send -e 1 'PING\\r\\n'; netctl recv 1 --wait 1s
              netctl forward :6380 127.0.0.1:6379             # forward 2
              netctl watch &                                  # events as they happen
              netctl fault add 2 latency ms=200               # break it on purpose
              netctl history; netctl stats --since 1h         # what happened

            `netctl help COMMAND` explains a command, with examples. Ids are netd's, per socket and \
            server; durations are 500ms, 30s, 1h, 7d; sizes 512, 64k, 1m; addresses HOST:PORT, \
            [::1]:PORT, :PORT or a Unix socket path.

            Exit status: 0 success, 1 netd answered with an error (or what was asked did not happen), \
            2 usage error, 3 netd could not be reached.
            """,
        version: NetdVersion.current,
        groupedSubcommands: [
            CommandGroup(name: "Connections", subcommands: [Connect.self, Send.self, Recv.self, Pipe.self, End.self, Close.self, Configure.self, Join.self]),
            CommandGroup(name: "Servers and forwards", subcommands: [Listen.self, Accept.self, Forward.self, Exec.self]),
            CommandGroup(name: "Watching", subcommands: [List.self, Get.self, Watch.self, Wait.self]),
            CommandGroup(name: "History", subcommands: [History.self, Stats.self, Prune.self]),
            CommandGroup(name: "Faults", subcommands: [Fault.self]),
            CommandGroup(name: "Daemon", subcommands: [Ping.self, Status.self, Methods.self, Call.self]),
        ])

    /// Lets `--socket` and `--json` come before the subcommand too (`netctl --json status`).
    @OptionGroup var globals: GlobalOptions
}

/// `--socket` and `--json`, shared by every subcommand.
struct GlobalOptions: ParsableArguments {
    @Option(help: "netd's socket (default: $NETD_SOCKET, $XDG_RUNTIME_DIR/netd/netd.sock, /tmp/netd-$UID/netd.sock).")
    var socket: String?

    @Flag(help: "Print the result object exactly as netd returned it, as JSON.")
    var json = false

    var socketPath: String { NetdPaths.socket(flag: socket) }

    /// Runs `body` with a connection to netd: a plain blocking socket, so that netctl starts fast;
    /// failures become netctl's exit statuses and one line that says what to do.
    func withClient<T>(_ body: (NetdBlockingClient) throws -> T) throws -> T {
        let client: NetdBlockingClient
        do {
            client = try NetdBlockingClient.connect(socketPath: socketPath)
        } catch {
            throw Failure.unreachable(Unreachable.explain(path: socketPath, error: error))
        }
        do {
            return try body(client)
        } catch let error as ResponseError {
            throw Failure.netd(error, json: json)
        } catch let error as NetdClientError {
            throw Failure.unreachable("netctl: \(error.description)")
        }
    }

    /// Prints `result` as JSON with `--json`, else as `human` says.
    func print<T: Encodable>(_ result: T, human: (T) -> String) throws {
        if json {
            Swift.print(String(decoding: try JSONCoding.encode(result), as: UTF8.self))
        } else {
            Swift.print(human(result))
        }
    }
}

/// Why netctl stopped, and the exit status that says so (contract section 8).
enum Failure: Error {
    /// netd answered with an error: 1.
    case netd(ResponseError, json: Bool)
    /// netd could not be reached: 3; the whole message, saying what to do.
    case unreachable(String)
    /// Something asked for did not happen (no connection came, no such method): 1.
    case failed(String)

    var exitCode: Int32 {
        switch self {
        case .netd, .failed: 1
        case .unreachable: 3
        }
    }

    var message: String {
        switch self {
        case .netd(let error, let json):
            if json, let data = try? JSONCoding.encode(error) {
                return String(decoding: data, as: UTF8.self)
            }
            let name = error.systemCode.map { ", \($0)" } ?? ""
            return "netctl: \(error.message) (\(error.code)\(name))"
        case .unreachable(let message):
            return message
        case .failed(let message):
            return "netctl: " + message
        }
    }
}

/// Why netd's socket did not answer, worked out from the socket file, in one line with what to do.
enum Unreachable {
    static func explain(path: String, error: NetdClientError) -> String {
        let start = "start it with `netd` (or `systemctl --user start netd.socket`), or give its socket with --socket PATH or $NETD_SOCKET"
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == EACCES {
                return "netctl: permission denied on a folder above \(path) (you are uid \(getuid())): netd's owner can put its socket where you may reach it"
            }
            return "netctl: netd is not running: no socket at \(path); \(start)"
        }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            return "netctl: \(path) is not a socket, so no netd listens there; \(start)"
        }
        if access(path, W_OK) != 0 {
            let mode = String(info.st_mode & 0o777, radix: 8)
            return "netctl: permission denied on \(path) (mode \(mode), owner uid \(info.st_uid); you are uid \(getuid())): "
                + "netd's owner can admit you with `netd --socket-mode 0660 --allow-group GROUP` and you in GROUP, or --allow-uid \(getuid())"
        }
        if case .unreachable(_, let reason) = error, reason == String(cString: strerror(ECONNREFUSED)) {
            return "netctl: netd is not running: \(path) is left from one that stopped (connection refused); \(start)"
        }
        return "netctl: \(error.description); \(start)"
    }
}

@main
enum Main {
    /// Synchronous from start to end: no concurrency runtime to start for a command that makes a
    /// call or two over a blocking socket.
    static func main() {
        var command: any ParsableCommand
        do {
            command = try Netctl.parseAsRoot()
        } catch {
            // Only on this path: naming every command takes the runtime's reflection, milliseconds
            // that `netctl ping` should not pay.
            if let unknown = Suggestion.unknownCommand(in: Array(CommandLine.arguments.dropFirst())) {
                Terminal.err(unknown + "\n")
                exit(2)
            }
            fail(error)
        }
        do {
            try command.run()
        } catch let failure as Failure {
            Terminal.err(failure.message + "\n")
            exit(failure.exitCode)
        } catch {
            fail(error)
        }
    }

    private static func fail(_ error: any Error) -> Never {
        // ArgumentParser says 64 (EX_USAGE) for usage errors; the contract says 2.
        if Netctl.exitCode(for: error) == .validationFailure {
            Terminal.err(Netctl.fullMessage(for: error) + "\n")
            exit(2)
        }
        Netctl.exit(withError: error)
    }
}

/// A mistyped subcommand gets the nearest names, not ArgumentParser's "Unexpected argument".
enum Suggestion {
    /// netctl's subcommands, and the words ArgumentParser itself takes in their place.
    static var commands: [String] {
        Netctl.configuration.groupedSubcommands.flatMap(\.subcommands).flatMap { [$0._commandName] + $0.configuration.aliases } + ["help"]
    }

    /// The message for `arguments` if the subcommand in them is no command; nil otherwise.
    static func unknownCommand(in arguments: [String]) -> String? {
        // The first word that is neither an option nor an option's value: `--socket PATH` takes one.
        var index = 0
        while index < arguments.count, arguments[index].hasPrefix("-") {
            index += ["--socket", "--generate-completion-script"].contains(arguments[index]) ? 2 : 1
        }
        guard index < arguments.count else { return nil }
        let word = arguments[index]
        guard !commands.contains(word) else { return nil }
        let near = commands.map { ($0, distance(word.lowercased(), $0)) }
            .filter { $0.1 <= 2 || $0.0.hasPrefix(word.lowercased()) }
            .sorted { $0.1 < $1.1 }
            .map { "`netctl \($0.0)`" }
        let hint = near.isEmpty ? "" : " Did you mean \(near.prefix(3).joined(separator: " or "))?"
        return "netctl: no command `\(word)`.\(hint) (`netctl help` lists every command.)"
    }

    /// Edit distance (Levenshtein) between two words.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(1, b.count) where j <= b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
