import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NetdBlockingClient
import NetdProtocol

struct Configure: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "configure",
        abstract: SocketConfigureMethod.summary,
        discussion: """
            Examples:
              netctl configure 5 --no-delay true --keep-alive true --keep-alive-delay 30s
              netctl configure 5 --idle-timeout 1m      # a `timeout` event after a minute without traffic
            """)

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "The socket's id.") var id: Int64
    @Option(help: "TCP: true disables Nagle's algorithm.") var noDelay: Bool?
    @Option(help: "TCP: true sends keep-alive probes.") var keepAlive: Bool?
    @Option(help: "TCP: idle time before the first keep-alive probe: 30s, 2m.") var keepAliveDelay: DurationArgument?
    @Option(help: "A `timeout` event after this long without traffic: 30s, 5m (0: off).") var idleTimeout: DurationArgument?

    func validate() throws {
        if noDelay == nil && keepAlive == nil && keepAliveDelay == nil && idleTimeout == nil {
            throw ValidationError("give at least one of --no-delay, --keep-alive, --keep-alive-delay, --idle-timeout")
        }
    }

    func run() throws {
        let params = SocketConfigureMethod.Params(
            id: id, noDelay: noDelay, keepAlive: keepAlive, keepAliveInitialDelayMs: keepAliveDelay?.milliseconds,
            idleTimeoutMs: idleTimeout?.milliseconds)
        let socket = try globals.withClient { try $0.call(SocketConfigureMethod.self, params) }
        try globals.print(socket) { "socket \($0.id) configured" }
    }
}

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: HistoryPruneMethod.summary,
        discussion: """
            Examples:
              netctl prune 30d                       # closed more than 30 days ago
              netctl prune 2026-11-01T00:00:00Z
            """)

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "Closed before this: a duration back from now (7d, 12h) or an ISO 8601 time.") var before: TimeArgument

    func run() throws {
        let result = try globals.withClient { try $0.call(HistoryPruneMethod.self, .init(before: before.iso)) }
        try globals.print(result) { "deleted \($0.deleted) record\($0.deleted == 1 ? "" : "s") closed before \(shortTime(before.iso)) UTC" }
    }
}

struct Methods: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "methods",
        abstract: "List netd's methods with their params (`netctl call` calls any of them).",
        discussion: "Example: netctl methods    netctl methods socket.connect")

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "Only this method, with every param explained.") var method: String?

    func run() throws {
        let result = try globals.withClient { try $0.call(MethodsMethod.self) }
        let chosen = result.methods.filter { method == nil || $0.name == method }
        if let method, chosen.isEmpty {
            throw Failure.failed("netd has no method \(method) (`netctl methods` lists them)")
        }
        try globals.print(method == nil ? result : MethodsMethod.Result(methods: chosen)) { _ in
            if method == nil {
                return table(chosen.map { [$0.name, $0.summary] })
            }
            return chosen.map { described in
                let params = described.params.map { field in
                    "  \(field.name)\(field.required ? " (required)" : "")  \(field.type)\n      \(field.summary)"
                }
                return ([described.name + ": " + described.summary] + (params.isEmpty ? ["  no params"] : params)).joined(separator: "\n")
            }.joined(separator: "\n")
        }
    }
}
