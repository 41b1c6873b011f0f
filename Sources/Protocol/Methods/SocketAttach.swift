/// Params of a call after whose answer the RPC connection carries a socket's bytes instead of
/// JSON-RPC (contract section 9): `socket.attach`, and `attach: true` on `socket.connect` and
/// `server.accept`. The RPC connection reads nothing past such a request until it is answered.
public protocol StreamSwitchingParams: RPCParams {
    var switchesToStream: Bool { get }
}

/// `socket.attach`: the RPC connection becomes the socket's byte stream, both ways.
public enum SocketAttachMethod: RPCMethod {
    public static let name = "socket.attach"
    public static let summary = "Turn this RPC connection into the socket's raw byte stream, both ways, after the answer line."
    public struct Params: StreamSwitchingParams, Hashable {
        public var id: Int64

        public init(id: Int64) { self.id = id }

        public static let fields = [ParamField("id", "integer", required: true, "The socket's id.")]

        public var switchesToStream: Bool { true }
    }

    public struct Result: Codable, Hashable, Sendable {
        public var socket: SocketInfo

        public init(socket: SocketInfo) { self.socket = socket }
    }
}

/// `socket.pipe`: joins two open sockets of the caller, relaying bytes both ways.
public enum SocketPipeMethod: RPCMethod {
    public static let name = "socket.pipe"
    public static let summary = "Join two open sockets: bytes relayed both ways by the kernel, ends passed on, a reset resets both."

    public struct Params: RPCParams, Hashable {
        public var id: Int64
        public var to: Int64

        public init(id: Int64, to: Int64) {
            self.id = id
            self.to = to
        }

        public static let fields = [
            ParamField("id", "integer", required: true, "One socket."),
            ParamField("to", "integer", required: true, "The other socket; `upstream` runs from `id` toward `to`."),
        ]

        public func validate() throws(ResponseError) {
            if id == to { throw .invalidParams("`id` and `to` are the same socket (\(id)); a socket cannot be piped to itself") }
        }
    }

    /// Both sockets, each with `peer` the other's id.
    public struct Result: Codable, Hashable, Sendable {
        public var socket: SocketInfo
        public var to: SocketInfo

        public init(socket: SocketInfo, to: SocketInfo) {
            self.socket = socket
            self.to = to
        }
    }
}

/// Where a forwarding server relays its connections: `{"host","port","family"}` or `{"path"}`.
public struct ForwardTarget: Codable, Hashable, Sendable {
    // In key order, for the encoder.
    public var family: Int?
    public var host: String?
    public var path: String?
    public var port: Int?

    public init(host: String? = nil, port: Int? = nil, family: Int? = nil, path: String? = nil) {
        self.host = host
        self.port = port
        self.family = family
        self.path = path
    }

    public func validate() throws(ResponseError) {
        if let path {
            try Check.unixPath(path)
            if host != nil || port != nil || family != nil {
                throw .invalidParams("`forward` takes `path` (Unix) or `host`, `port` and `family` (TCP), not both")
            }
        } else {
            guard port != nil else { throw .invalidParams("`forward` needs `port` (TCP) or `path` (Unix socket)") }
            try Check.port(port, "forward.port", allowZero: false)
            try Check.host(host, "forward.host")
            if host?.isEmpty == true { throw .invalidParams("`forward.host` must not be empty") }
            if let family, ![0, 4, 6].contains(family) {
                throw .invalidParams("`forward.family` must be 0, 4 or 6, not \(family)")
            }
        }
    }

    /// `host:port` or the path, for messages.
    public var description: String {
        path ?? "\(host ?? "localhost"):\(port ?? 0)"
    }
}
