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

struct Ping: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ping",
        abstract: PingMethod.summary,
        discussion: "Example: netctl ping    (exit status 3 when netd cannot be reached: made for scripts)")

    @OptionGroup var globals: GlobalOptions

    func run() throws {
        let started = ContinuousClock.now
        let result = try globals.withClient { try $0.call(PingMethod.self) }
        let elapsed = ContinuousClock.now - started
        try globals.print(result) { result in
            let ms = Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000
            return "pong from netd \(result.version) at \(globals.socketPath) in \(oneDecimal(ms)) ms"
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: StatusMethod.summary,
        discussion: "Example: netctl status    netctl --json status | jq .limits")

    @OptionGroup var globals: GlobalOptions

    func run() throws {
        let status = try globals.withClient { try $0.call(StatusMethod.self) }
        try globals.print(status) { status in
            """
            netd \(status.version), pid \(status.pid), up \(formatDuration(milliseconds: status.uptimeMs))
            socket    \(status.socket)
            database  \(status.database)
            sockets   \(status.sockets)
            servers   \(status.servers)
            clients   \(status.clients)
            you       uid \(status.caller.uid), pid \(status.caller.pid)\(status.caller.admin ? " (admin)" : "")
            """ + Self.usage(status)
        }
    }
}

extension Status {
    /// Each user's holdings against the per-user limits: `uid 1000  3/256 clients  12/16384 sockets  1/1024 servers`.
    static func usage(_ status: StatusMethod.Result) -> String {
        func limit(_ name: NetdLimit) -> String { status.limits[name.rawValue].map(String.init) ?? "?" }
        let rows = status.users.map { user in
            let name = "uid \(user.uid)"
            return "\n" + name + String(repeating: " ", count: max(1, 10 - name.count))
                + "\(user.clients)/\(limit(.maxClientsPerUser)) clients  \(user.sockets)/\(limit(.maxSocketsPerUser)) sockets  "
                + "\(user.servers)/\(limit(.maxServersPerUser)) servers"
        }
        return rows.joined()
    }
}

struct Call: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "call",
        abstract: "Call any method with JSON params and print its result.",
        discussion: "Example: netctl call netd.status    netctl call socket.get '{\"id\": 3}'    echo '{}' | netctl call netd.ping -")

    @OptionGroup var globals: GlobalOptions

    @Argument(help: "The method, e.g. netd.status (`netctl call netd.methods` lists them).")
    var method: String

    @Argument(help: "Params as a JSON object, or - to read them from stdin.")
    var params: String?

    func validate() throws {
        // Params from stdin are read once, in run().
        if params != "-" { _ = try parsedParams() }
    }

    private func parsedParams() throws -> JSONValue? {
        guard let params else { return nil }
        let text: Data = params == "-" ? Data(Terminal.readInput()) : Data(params.utf8)
        do {
            return try JSONDecoder().decode(JSONValue.self, from: text)
        } catch {
            throw ValidationError("params are not valid JSON: \(params == "-" ? "stdin" : params)")
        }
    }

    func run() throws {
        let params = try parsedParams()
        let result = try globals.withClient { try $0.call(method: method, params: params) }
        if globals.json {
            try globals.print(result) { _ in "" }
        } else {
            print(String(decoding: try JSONCoding.encodePretty(result), as: UTF8.self))
        }
    }
}

/// `1d 2h`, `3m 4s`, `850 ms`: the two largest units, for people.
func formatDuration(milliseconds: Int64) -> String {
    if milliseconds < 1000 { return "\(milliseconds) ms" }
    let seconds = milliseconds / 1000
    let units: [(Int64, String)] = [(86400, "d"), (3600, "h"), (60, "m"), (1, "s")]
    var parts: [String] = []
    var rest = seconds
    for (size, name) in units where rest >= size || !parts.isEmpty {
        parts.append("\(rest / size)\(name)")
        rest %= size
        if parts.count == 2 { break }
    }
    return parts.joined(separator: " ")
}
