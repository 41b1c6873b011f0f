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

func describe(_ endpoint: Endpoint?) -> String {
    guard let endpoint else { return "-" }
    if let path = endpoint.path { return path }
    guard let address = endpoint.address, let port = endpoint.port else { return "-" }
    return address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
}

struct Connect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connect",
        abstract: SocketConnectMethod.summary,
        discussion: """
            Prints the new socket's id; later commands (send, recv, pipe, close, ...) take it. With --pipe, \
            the terminal is joined to the socket at once, as `nc HOST PORT` does: stdin to the socket, \
            the socket to stdout, until both directions end.

            Examples:
              netctl connect 127.0.0.1:6379 --label redis
              netctl connect /run/app.sock
              printf 'PING\\r\\n' | netctl connect --pipe 127.0.0.1:6379
            """)

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "HOST:PORT, [IPv6]:PORT, :PORT (localhost) or a Unix socket path.") var target: String
    @Option(help: "A label for the socket.") var label: String?
    @Option(help: "Give up connecting after this long: 500ms, 5s (a bare number is milliseconds).") var timeout: DurationArgument?
    @Flag(help: "Keep the write side open after the peer ends.") var allowHalfOpen = false
    @Flag(help: "Join stdin and stdout to the socket, like nc (exit 0 on a clean end, 1 on a reset).") var pipe = false

    func validate() throws {
        _ = try Target(parsing: target, hostRequired: true)
        if pipe && globals.json { throw ValidationError("--pipe and --json do not go together: the terminal carries the socket's bytes") }
    }

    func run() throws {
        let target = try Target(parsing: target, hostRequired: true)
        let params = SocketConnectMethod.Params(
            port: target.port, host: target.host, path: target.path, timeoutMs: timeout?.milliseconds,
            allowHalfOpen: allowHalfOpen ? true : nil, label: label, attach: pipe ? true : nil)
        if pipe {
            try StreamRelay.run(globals: globals) { client in try client.callAttaching(SocketConnectMethod.self, params).id }
            return
        }
        let socket = try globals.withClient { try $0.call(SocketConnectMethod.self, params) }
        try globals.print(socket) { "socket \($0.id) \($0.state.rawValue): \(describe($0.local)) -> \(describe($0.remote))" }
    }
}

struct Listen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "listen",
        abstract: ServerListenMethod.summary,
        discussion: """
            Prints the server's id; `netctl accept ID` takes its connections (`netctl forward` relays \
            them instead).

            Examples:
              netctl listen :8080              # every address
              netctl listen 127.0.0.1:0        # any free port, printed
              netctl listen ./app.sock --mode 0660
            """)

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "PORT, :PORT, HOST:PORT, [IPv6]:PORT or a Unix socket path.") var target: String
    @OptionGroup var options: ListenOptions

    func validate() throws { _ = try Target(parsing: target, hostRequired: false) }

    func run() throws {
        let server = try globals.withClient { try $0.call(ServerListenMethod.self, options.params(try Target(parsing: target, hostRequired: false))) }
        try globals.print(server) { "server \($0.id) listening on \(describe($0.local))" + ($0.label.map { " (\($0))" } ?? "") }
    }
}

/// What `listen` and `forward` share.
struct ListenOptions: ParsableArguments {
    @Option(help: "A label for the server and its sockets.") var label: String?
    @Option(help: "Unix: the socket file's mode in octal, e.g. 0660.") var mode: String?
    @Option(help: "Refuse connections beyond this many live ones.") var maxConnections: Int?
    @Flag(help: "Keep it in netd's database: netd listens again at every start, until closed.") var persist = false

    func params(_ target: Target, forward: ForwardTarget? = nil) -> ServerListenMethod.Params {
        ServerListenMethod.Params(
            port: target.port, host: target.host, path: target.path, mode: mode, maxConnections: maxConnections, label: label,
            forward: forward, persist: persist ? true : nil)
    }
}

struct Forward: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Listen, and relay every connection to a target: bytes moved by the kernel, ends and resets passed on.",
        discussion: """
            Each connection through the forward is two sockets in `netctl ls` and in history (the accepted \
            one and the one to the target, each the other's peer). `netctl fault add` breaks them on purpose; \
            `netctl close ID` stops the forward.

            Examples:
              netctl forward :8080 127.0.0.1:80
              netctl forward 127.0.0.1:6380 /run/redis.sock --label redis --persist
            """)

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "Where to listen: PORT, :PORT, HOST:PORT or a Unix socket path.") var listen: String
    @Argument(help: "Where to connect each one: HOST:PORT, [IPv6]:PORT or a Unix socket path.") var target: String
    @OptionGroup var options: ListenOptions

    func validate() throws {
        _ = try Target(parsing: listen, hostRequired: false)
        _ = try Target(parsing: target, hostRequired: true)
    }

    func run() throws {
        let forward = try Target(parsing: target, hostRequired: true).forward
        let params = options.params(try Target(parsing: listen, hostRequired: false), forward: forward)
        let server = try globals.withClient { try $0.call(ServerListenMethod.self, params) }
        try globals.print(server) { server in
            let to = server.forward.map(Forward.describe) ?? "?"
            return "forward \(server.id) listening on \(netctl.describe(server.local)) -> \(to)" + (server.persist == true ? " (persisted)" : "")
        }
    }

    static func describe(_ target: ForwardTarget) -> String {
        if let path = target.path { return path }
        let host = target.host ?? "localhost"
        return (host.contains(":") ? "[\(host)]" : host) + ":\(target.port ?? 0)"
    }
}

struct Accept: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accept",
        abstract: ServerAcceptMethod.summary,
        discussion: """
            Examples:
              netctl accept 4 --wait 10s
              netctl accept 4 --wait 1m --pipe     # join the terminal to the next connection, like nc -l
            """)

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "The server's id.") var id: Int64
    @Option(help: "Wait up to this long for a connection: 500ms, 10s, 1m (a bare number is milliseconds).") var wait: DurationArgument?
    @Flag(help: "Join stdin and stdout to the accepted socket, like nc -l.") var pipe = false

    func validate() throws {
        if pipe && globals.json { throw ValidationError("--pipe and --json do not go together: the terminal carries the socket's bytes") }
    }

    func run() throws {
        let params = ServerAcceptMethod.Params(id: id, waitMs: wait?.milliseconds ?? 0, attach: pipe ? true : nil)
        if pipe {
            try StreamRelay.run(globals: globals) { client in
                guard let socket = try client.callAttaching(ServerAcceptMethod.self, params).socket?.id else {
                    throw Failure.failed("no connection came to server \(id)\(wait == nil ? " (wait for one with --wait 30s)" : "")")
                }
                return socket
            }
            return
        }
        let result = try globals.withClient { try $0.call(ServerAcceptMethod.self, params) }
        try globals.print(result) { result in
            guard let socket = result.socket else { return "no connection waiting on server \(id)" }
            return "socket \(socket.id) accepted from \(describe(socket.remote))"
        }
    }
}

struct Send: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send bytes to a socket: DATA, or stdin when DATA is absent.",
        discussion: "Example: netctl send -e 5 'PING\\r\\n'    printf 'GET / HTTP/1.0\\r\\n\\r\\n' | netctl send 5")

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "The socket's id.") var id: Int64
    @Argument(help: "The bytes to send (default: read stdin to its end).") var data: String?
    @Flag(name: .short, help: "Interpret backslash escapes in DATA: \\r \\n \\t \\\\ \\xHH.") var escapes = false

    func run() throws {
        let bytes: [UInt8] =
            if let data { escapes ? try unescape(data) : Array(data.utf8) } else { Terminal.readInput() }
        let result = try globals.withClient {
            try $0.call(SocketWriteMethod.self, .init(id: id, data: Data(bytes).base64EncodedString(), encoding: .base64))
        }
        try globals.print(result) { "sent \($0.bytes) bytes to socket \(id)" }
    }
}

struct Recv: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recv",
        abstract: "Print the bytes a socket has received (raw on stdout; the result JSON with --json).",
        discussion: """
            Examples:
              netctl recv 5 --wait 2s
              netctl recv 5 --max-bytes 1m > reply.bin
              netctl --json recv 5 --encoding hex | jq -r .data
            """)

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "The socket's id.") var id: Int64
    @Option(help: "Wait up to this long when nothing is buffered: 500ms, 5s (a bare number is milliseconds).") var wait: DurationArgument?
    @Option(help: "Read at most this many bytes: 512, 64k, 1m.") var maxBytes: SizeArgument = SizeArgument(argument: "64k")!
    @Option(help: "With --json: utf8, base64 or hex.") var encoding: DataEncoding = .utf8

    func run() throws {
        if globals.json {
            let result = try globals.withClient {
                try $0.call(SocketReadMethod.self, .init(id: id, maxBytes: maxBytes.bytes, encoding: encoding, waitMs: wait?.milliseconds ?? 0))
            }
            try globals.print(result) { _ in "" }
            return
        }
        // Raw bytes, whatever they are: read as base64 and write them out unchanged.
        let result = try globals.withClient {
            try $0.call(SocketReadMethod.self, .init(id: id, maxBytes: maxBytes.bytes, encoding: .base64, waitMs: wait?.milliseconds ?? 0))
        }
        Terminal.out(Data(base64Encoded: result.data) ?? Data())
        if result.eof { Terminal.err("netctl: socket \(id): the peer has ended\n") }
    }
}

extension DataEncoding: ExpressibleByArgument {}

struct End: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "end",
        abstract: SocketEndMethod.summary,
        discussion: "Example: netctl end 5    (the peer reads its end of stream; 5 can still read what comes back)")

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "The socket's id.") var id: Int64

    func run() throws {
        let socket = try globals.withClient { try $0.call(SocketEndMethod.self, .init(id: id)) }
        try globals.print(socket) { "socket \($0.id) ended its write side (\($0.state.rawValue))" }
    }
}

struct Close: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "close",
        abstract: "Close a socket or a server.",
        discussion: """
            Examples:
              netctl close 5
              netctl close 5 --reset            # RST instead of a graceful close
              netctl close 2 --connections      # a server and every socket it accepted
            """)

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "The socket's or server's id.") var id: Int64
    @Flag(help: "Sockets: send RST instead of closing gracefully.") var reset = false
    @Flag(help: "Servers: also close the sockets it accepted.") var connections = false

    func run() throws {
        try globals.withClient { client in
            do {
                let socket = try client.call(SocketCloseMethod.self, .init(id: id, reset: reset ? true : nil))
                try globals.print(socket) { "socket \($0.id) \($0.state.rawValue)" }
            } catch let error as ResponseError where error.code == .notFound {
                let server = try client.call(ServerCloseMethod.self, .init(id: id, closeConnections: connections ? true : nil))
                try globals.print(server) { "server \($0.id) \($0.state.rawValue)" }
            }
        }
    }
}

/// `\r`, `\n`, `\t`, `\0`, `\\` and `\xHH`, as `echo -e` reads them.
func unescape(_ text: String) throws -> [UInt8] {
    var bytes: [UInt8] = []
    var iterator = Array(text.utf8).makeIterator()
    while let byte = iterator.next() {
        guard byte == UInt8(ascii: "\\"), let next = iterator.next() else {
            bytes.append(byte)
            continue
        }
        switch next {
        case UInt8(ascii: "r"): bytes.append(0x0D)
        case UInt8(ascii: "n"): bytes.append(0x0A)
        case UInt8(ascii: "t"): bytes.append(0x09)
        case UInt8(ascii: "0"): bytes.append(0x00)
        case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\"))
        case UInt8(ascii: "x"):
            guard let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            else { throw ValidationError("\\x needs two hex digits") }
            bytes.append(value)
        default:
            bytes.append(UInt8(ascii: "\\"))
            bytes.append(next)
        }
    }
    return bytes
}
