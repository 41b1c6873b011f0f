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

/// `HOST:PORT`, `[IPv6]:PORT`, `PORT` or a Unix socket path, as netctl's commands take them.
struct Target {
    var host: String?
    var port: Int?
    var path: String?

    /// Anything with a `/`, or ending in `.sock`, is a Unix socket path, made absolute against
    /// netctl's working directory (netd refuses relative paths: it cannot know the caller's);
    /// otherwise the port is after the last colon.
    init(parsing text: String, hostRequired: Bool) throws {
        if text.contains("/") || text.hasSuffix(".sock") {
            path = Self.absolute(text)
            return
        }
        var rest = Substring(text)
        if let colon = rest.lastIndex(of: ":") {
            var name = rest[..<colon]
            if name.hasPrefix("[") && name.hasSuffix("]") { name = name.dropFirst().dropLast() }
            host = String(name)
            rest = rest[rest.index(after: colon)...]
        } else if hostRequired {
            throw ValidationError("expected HOST:PORT or a socket path, not \(text)")
        }
        guard let port = Int(rest), (0...65535).contains(port) else {
            throw ValidationError("\(rest) is not a port (0-65535)")
        }
        self.port = port
    }

    /// `path` against the working directory, `.` and `..` resolved by their names (as the shell's
    /// `cd -L` does; nothing needs to exist yet).
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        let base = FileManager.default.currentDirectoryPath
        var parts: [Substring] = []
        for part in (base + "/" + path).split(separator: "/") {
            switch part {
            case ".": continue
            case "..": _ = parts.popLast()
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }
}

func describe(_ endpoint: Endpoint?) -> String {
    guard let endpoint else { return "-" }
    if let path = endpoint.path { return path }
    guard let address = endpoint.address, let port = endpoint.port else { return "-" }
    return address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
}

struct Connect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: SocketConnectMethod.summary,
        discussion: "Example: netctl connect 127.0.0.1:6379    netctl connect /run/app.sock")

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "HOST:PORT, [IPv6]:PORT or a Unix socket path.") var target: String
    @Option(help: "A label for the socket.") var label: String?
    @Option(help: "Connect timeout in milliseconds.") var timeout: Int?
    @Flag(help: "Keep the write side open after the peer ends.") var allowHalfOpen = false

    func validate() throws { _ = try Target(parsing: target, hostRequired: true) }

    func run() throws {
        let target = try Target(parsing: target, hostRequired: true)
        let params = SocketConnectMethod.Params(
            port: target.port, host: target.host, path: target.path, timeoutMs: timeout,
            allowHalfOpen: allowHalfOpen ? true : nil, label: label)
        let socket = try globals.withClient { try $0.call(SocketConnectMethod.self, params) }
        try globals.print(socket) { "socket \($0.id) \($0.state.rawValue): \(describe($0.local)) -> \(describe($0.remote))" }
    }
}

struct Listen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: ServerListenMethod.summary,
        discussion: "Example: netctl listen 8080    netctl listen 127.0.0.1:0    netctl listen /tmp/app.sock")

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "PORT, HOST:PORT or a Unix socket path.") var target: String
    @Option(help: "A label for the server and its sockets.") var label: String?
    @Option(help: "Unix: the socket file's mode in octal.") var mode: String?
    @Option(help: "Refuse connections beyond this many live ones.") var maxConnections: Int?

    func validate() throws { _ = try Target(parsing: target, hostRequired: false) }

    func run() throws {
        let target = try Target(parsing: target, hostRequired: false)
        let params = ServerListenMethod.Params(
            port: target.port, host: target.host, path: target.path, mode: mode, maxConnections: maxConnections, label: label)
        let server = try globals.withClient { try $0.call(ServerListenMethod.self, params) }
        try globals.print(server) { "server \($0.id) listening on \(describe($0.local))" }
    }
}

struct Accept: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: ServerAcceptMethod.summary)

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "The server's id.") var id: Int64
    @Option(help: "Wait up to this many milliseconds for a connection.") var wait: Int = 0

    func run() throws {
        let result = try globals.withClient { try $0.call(ServerAcceptMethod.self, .init(id: id, waitMs: wait)) }
        try globals.print(result) { result in
            guard let socket = result.socket else { return "no connection waiting on server \(id)" }
            return "socket \(socket.id) accepted from \(describe(socket.remote))"
        }
    }
}

struct Send: ParsableCommand {
    static let configuration = CommandConfiguration(
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
        abstract: "Print the bytes a socket has received (raw on stdout; the result JSON with --json).")

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "The socket's id.") var id: Int64
    @Option(help: "Wait up to this many milliseconds when nothing is buffered.") var wait: Int = 0
    @Option(help: "Read at most this many bytes.") var maxBytes: Int = 65536
    @Option(help: "With --json: utf8, base64 or hex.") var encoding: DataEncoding = .utf8

    func run() throws {
        if globals.json {
            let result = try globals.withClient {
                try $0.call(SocketReadMethod.self, .init(id: id, maxBytes: maxBytes, encoding: encoding, waitMs: wait))
            }
            try globals.print(result) { _ in "" }
            return
        }
        // Raw bytes, whatever they are: read as base64 and write them out unchanged.
        let result = try globals.withClient {
            try $0.call(SocketReadMethod.self, .init(id: id, maxBytes: maxBytes, encoding: .base64, waitMs: wait))
        }
        Terminal.out(Data(base64Encoded: result.data) ?? Data())
        if result.eof { Terminal.err("netctl: socket \(id): the peer has ended\n") }
    }
}

extension DataEncoding: ExpressibleByArgument {}

struct End: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: SocketEndMethod.summary)

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "The socket's id.") var id: Int64

    func run() throws {
        let socket = try globals.withClient { try $0.call(SocketEndMethod.self, .init(id: id)) }
        try globals.print(socket) { "socket \($0.id) ended its write side (\($0.state.rawValue))" }
    }
}

struct Close: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Close a socket or a server.")

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
