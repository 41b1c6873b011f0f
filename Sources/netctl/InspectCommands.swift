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

struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Show one socket or server.",
        discussion: "Example: netctl get 5    netctl --json get 5 | jq .bytesRead")

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "The socket's or server's id.") var id: Int64

    func run() throws {
        try globals.withClient { client in
            do {
                let server = try client.call(ServerGetMethod.self, .init(id: id))
                try globals.print(server) { server in
                    """
                    server \(server.id) (\(server.kind.rawValue)) \(server.state.rawValue) on \(describe(server.local))
                    connections \(server.connections), accepted \(server.accepted), pending \(server.pending), backlog \(server.backlog)
                    owner uid \(server.owner.uid) pid \(server.owner.pid), opened \(when(server.openedAt))\(server.closedAt.map { ", closed \(when($0))" } ?? "")
                    """ + (server.label.map { "\nlabel \($0)" } ?? "")
                }
            } catch let error as ResponseError where error.code == .notFound {
                let socket = try client.call(SocketGetMethod.self, .init(id: id))
                try globals.print(socket) { socket in
                    var lines = [
                        "socket \(socket.id) (\(socket.role.rawValue), \(socket.kind.rawValue)) \(socket.state.rawValue)",
                        "local  \(describe(socket.local))",
                        "remote \(describe(socket.remote))\(socket.host.map { " (\($0))" } ?? "")",
                        "bytes  \(bytes(socket.bytesRead)) in, \(bytes(socket.bytesWritten)) out, \(bytes(socket.buffered)) unread",
                        "owner  uid \(socket.owner.uid) pid \(socket.owner.pid)",
                        "opened \(when(socket.openedAt))\(socket.closedAt.map { ", closed \(when($0))" } ?? "")",
                    ]
                    if let server = socket.server { lines.append("server \(server)") }
                    if let label = socket.label { lines.append("label  \(label)") }
                    if let error = socket.error { lines.append("error  \(error.code): \(error.message)") }
                    return lines.joined(separator: "\n")
                }
            }
        }
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "List your servers and sockets.",
        discussion: "Examples: netctl ls    netctl ls --state open    netctl ls --label redis",
        aliases: ["list"])

    @OptionGroup var globals: GlobalOptions
    @Option(help: "Only this state.") var state: String?
    @Option(help: "Only this label.") var label: String?

    struct Both: Encodable {
        var servers: [ServerInfo]
        var sockets: [SocketInfo]
    }

    func run() throws {
        let both = try globals.withClient { client in
            Both(
                servers: try client.call(ServerListMethod.self, .init(state: state, label: label)).servers,
                sockets: try client.call(SocketListMethod.self, .init(state: state, label: label)).sockets)
        }
        try globals.print(both) { both in
            guard !both.servers.isEmpty || !both.sockets.isEmpty else {
                return "no servers or sockets (netctl connect HOST:PORT opens one, netctl listen PORT a server)"
            }
            var rows = [["ID", "ROLE", "KIND", "STATE", "LOCAL", "REMOTE", "IN", "OUT", "UNREAD", "OPENED", "LABEL"]]
            for server in both.servers {
                let remote = server.forward.map { "-> " + Forward.describe($0) } ?? "\(server.connections) conn"
                rows.append([String(server.id), server.forward == nil ? "server" : "forward", server.kind.rawValue, server.state.rawValue,
                             describe(server.local), remote, "-", "-", "\(server.pending) pending", ago(server.openedAt), server.label ?? ""])
            }
            for socket in both.sockets {
                let role = socket.peer.map { "\(socket.role.rawValue)<>\($0)" } ?? socket.role.rawValue
                rows.append([String(socket.id), role, socket.kind.rawValue, socket.state.rawValue,
                             describe(socket.local), describe(socket.remote), bytes(socket.bytesRead),
                             bytes(socket.bytesWritten), bytes(socket.buffered), ago(socket.openedAt), socket.label ?? ""])
            }
            return table(rows)
        }
    }
}

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Print events as they happen, until interrupted.",
        discussion: """
            Examples:
              netctl watch
              netctl watch --type connection --type close
              netctl --json watch --id 5 | jq -c .      # one JSON line per event
            """)

    @OptionGroup var globals: GlobalOptions
    @Option(name: .customLong("type"), help: "Only this event type (repeatable).") var types: [String] = []
    @Option(name: .customLong("id"), help: "Only this socket or server (repeatable).") var ids: [Int64] = []
    @Option(help: "Stop after this many events.") var count: Int?

    func run() throws {
        try globals.withClient { client in
            let params = EventsSubscribeMethod.Params(types: types.isEmpty ? nil : types, ids: ids.isEmpty ? nil : ids)
            _ = try client.call(EventsSubscribeMethod.self, params)
            var seen = 0
            while count.map({ seen < $0 }) ?? true {
                let line = try client.receiveLine()
                guard let event = try? JSONDecoder().decode(JSONValue.self, from: line), let params = event["params"] else { continue }
                let text: String
                if globals.json {
                    text = String(decoding: try JSONCoding.encode(params), as: UTF8.self)
                } else {
                    var extra = params
                    if case .object(var fields) = extra {
                        for key in ["subscription", "seq", "at", "type", "id"] { fields[key] = nil }
                        extra = .object(fields)
                    }
                    let details = (try? String(decoding: JSONCoding.encode(extra), as: UTF8.self)) ?? ""
                    text = "\(params["at"]?.stringValue ?? "") \(params["type"]?.stringValue ?? "") \(params["id"]?.integerValue ?? 0) \(details == "{}" ? "" : details)"
                }
                // Unbuffered, so that `netctl watch | grep` sees each event as it happens.
                Terminal.out(Array((text + "\n").utf8))
                seen += 1
            }
        }
    }
}

struct Wait: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait",
        abstract: "Wait until a socket or server reaches a state, or until its next event of a type.",
        discussion: """
            Made for test scripts: exit status 0 when it happens, 1 when --timeout passes first (or netd \
            says the id is not yours). --state is checked at once, then as it changes; --event waits for \
            the next such event after netctl starts waiting.
            Examples: netctl wait 7 --state closed --timeout 5s    netctl wait 3 --event connection
            """)

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "The socket's or server's id.") var id: Int64
    @Option(help: "A state: opening, open, readOnly, writeOnly or closed; a server's listening or closed.") var state: String?
    @Option(help: "An event type: connect, connection, data, end, timeout, error, close, fault, ...") var event: String?
    @Option(help: "Give up after this long: 500ms, 5s, 2m (default: wait as long as it takes).") var timeout: String?

    func validate() throws {
        guard (state == nil) != (event == nil) else { throw ValidationError("give one of --state or --event") }
        if let state, !["opening", "open", "readOnly", "writeOnly", "closed", "listening"].contains(state) {
            throw ValidationError("--state \(state): states are opening, open, readOnly, writeOnly, closed and listening")
        }
        if let event, !EventsSubscribeMethod.eventTypes.contains(event) {
            throw ValidationError("--event \(event): types are \(EventsSubscribeMethod.eventTypes.joined(separator: ", "))")
        }
        if let timeout, DurationText.milliseconds(timeout) == nil { throw ValidationError("--timeout \(timeout) is not a duration such as 500ms or 5s") }
    }

    func run() throws {
        let limit = timeout.flatMap(DurationText.milliseconds) ?? Int64.max / 2
        let deadline = ContinuousClock.now + .milliseconds(limit)
        let happened: Bool = try globals.withClient { client in
            if let event {
                _ = try client.call(EventsSubscribeMethod.self, .init(types: [event], ids: [id]))
                while true {
                    let left = deadline - ContinuousClock.now
                    let milliseconds = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000
                    guard milliseconds > 0, let line = try client.receiveLine(withinMilliseconds: milliseconds) else { return false }
                    if let notice = try? JSONDecoder().decode(JSONValue.self, from: line), notice["params"]?["type"] == .string(event) {
                        if globals.json, let params = notice["params"] { Swift.print(String(decoding: try JSONCoding.encode(params), as: UTF8.self)) }
                        return true
                    }
                }
            }
            let wanted = state ?? ""
            // A server's id answers server.get; anything else is a socket's.
            let method = (try? client.call(ServerGetMethod.self, .init(id: id))) != nil ? "server.get" : "socket.get"
            while true {
                let current = try client.call(method: method, params: .object(["id": .integer(id)]))
                if current["state"] == .string(wanted) {
                    if globals.json { Swift.print(String(decoding: try JSONCoding.encode(current), as: UTF8.self)) }
                    return true
                }
                guard ContinuousClock.now < deadline else { return false }
                usleep(20_000)
            }
        }
        guard happened else {
            let what = state.map { "reach state \($0)" } ?? "see a \(event ?? "") event"
            Terminal.err("netctl: \(id) did not \(what) within \(timeout ?? "")\n")
            throw ExitCode(1)
        }
        if !globals.json { Swift.print(state.map { "\(id) is \($0)" } ?? "\(id): \(event ?? "")") }
    }
}
