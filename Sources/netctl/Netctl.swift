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

struct Netctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netctl",
        abstract: "Talk to netd: open, inspect and close connections it holds for you.",
        discussion: """
            Exit status: 0 success, 1 netd answered with an error, 2 usage error, 3 netd could not be reached.
            """,
        version: NetdVersion.current,
        subcommands: [
            Ping.self, Status.self, Connect.self, Listen.self, Accept.self, Send.self, Recv.self, End.self, Close.self,
            List.self, Get.self, Watch.self, Wait.self, History.self, Stats.self, Call.self, Exec.self,
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

    /// Connects, runs `body`, and closes, turning failures into netctl's exit statuses.
    /// Runs `body` with a connection to netd: a plain blocking socket, so that netctl starts fast.
    func withClient<T>(_ body: (NetdBlockingClient) throws -> T) throws -> T {
        let client: NetdBlockingClient
        do {
            client = try NetdBlockingClient.connect(socketPath: socketPath)
        } catch {
            throw Failure.unreachable(error.description)
        }
        do {
            return try body(client)
        } catch let error as ResponseError {
            throw Failure.netd(error, json: json)
        } catch let error as NetdClientError {
            throw Failure.unreachable(error.description)
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

/// Why netctl stopped, and the exit status that says so.
enum Failure: Error {
    case netd(ResponseError, json: Bool)
    case unreachable(String)

    var exitCode: Int32 {
        switch self {
        case .netd: 1
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
        case .unreachable(let reason):
            return """
                netctl: \(reason)
                Start netd with `netd` (or `swift run netd`), or point netctl at its socket with --socket or $NETD_SOCKET.
                """
        }
    }
}

@main
enum Main {
    /// Synchronous from start to end: no concurrency runtime to start for a command that makes a
    /// call or two over a blocking socket.
    static func main() {
        if let unknown = Suggestion.unknownCommand(in: Array(CommandLine.arguments.dropFirst())) {
            Terminal.err(unknown + "\n")
            exit(2)
        }
        do {
            var command = try Netctl.parseAsRoot()
            try command.run()
        } catch let failure as Failure {
            Terminal.err(failure.message + "\n")
            exit(failure.exitCode)
        } catch {
            // ArgumentParser says 64 (EX_USAGE) for usage errors; the contract says 2.
            if Netctl.exitCode(for: error) == .validationFailure {
                Terminal.err(Netctl.fullMessage(for: error) + "\n")
                exit(2)
            }
            Netctl.exit(withError: error)
        }
    }
}

/// A mistyped subcommand gets the nearest names, not ArgumentParser's "Unexpected argument".
enum Suggestion {
    /// netctl's subcommands, and the words ArgumentParser itself takes in their place.
    static var commands: [String] {
        Netctl.configuration.subcommands.flatMap { [$0._commandName] + $0.configuration.aliases } + ["help"]
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
