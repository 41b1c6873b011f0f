/// `server.listen`: bind and listen on a TCP port or a Unix socket path.
public enum ServerListenMethod: RPCMethod {
    public static let name = "server.listen"
    public static let summary = "Listen on a TCP port (0: any) or a Unix socket path and accept connections."
    public typealias Result = ServerInfo

    public struct Params: RPCParams, Hashable {
        public var port: Int?
        public var host: String?
        public var ipv6Only: Bool?
        public var reusePort: Bool?
        public var path: String?
        public var mode: String?
        public var backlog: Int?
        public var maxConnections: Int?
        public var allowHalfOpen: Bool?
        public var noDelay: Bool?
        public var keepAlive: Bool?
        public var label: String?
        /// Part two (section 10): relay every accepted connection to this target.
        public var forward: ForwardTarget?
        /// Part two (section 10): kept in the database and listened on again at every start.
        public var persist: Bool?

        public init(
            port: Int? = nil, host: String? = nil, ipv6Only: Bool? = nil, reusePort: Bool? = nil, path: String? = nil,
            mode: String? = nil, backlog: Int? = nil, maxConnections: Int? = nil, allowHalfOpen: Bool? = nil,
            noDelay: Bool? = nil, keepAlive: Bool? = nil, label: String? = nil, forward: ForwardTarget? = nil,
            persist: Bool? = nil
        ) {
            self.port = port
            self.host = host
            self.ipv6Only = ipv6Only
            self.reusePort = reusePort
            self.path = path
            self.mode = mode
            self.backlog = backlog
            self.maxConnections = maxConnections
            self.allowHalfOpen = allowHalfOpen
            self.noDelay = noDelay
            self.keepAlive = keepAlive
            self.label = label
            self.forward = forward
            self.persist = persist
        }

        public static let fields = [
            ParamField("port", "integer 0-65535", "TCP: the port (0: any free one, reported in `local`)."),
            ParamField("host", "string", "TCP: the address or name to listen on (default: all addresses)."),
            ParamField("ipv6Only", "boolean", "TCP: with an IPv6 host, do not accept IPv4 too."),
            ParamField("reusePort", "boolean", "TCP: SO_REUSEPORT, so several listeners share the port."),
            ParamField("path", "string", "Unix: the socket path (at most 107 bytes)."),
            ParamField("mode", "string", "Unix: the socket file's permissions in octal, such as \"0660\"."),
            ParamField("backlog", "integer", "Listen backlog (default 511)."),
            ParamField("maxConnections", "integer", "Refuse connections beyond this many live ones."),
            ParamField("allowHalfOpen", "boolean", "Accepted sockets keep their write side after the peer ends."),
            ParamField("noDelay", "boolean", "TCP: accepted sockets disable Nagle's algorithm."),
            ParamField("keepAlive", "boolean", "TCP: accepted sockets send keep-alive probes."),
            ParamField("label", "string", "A label of yours for the server and its accepted sockets."),
            ParamField("forward", "object", "Relay each accepted connection to {host, port, family} or {path}."),
            ParamField("persist", "boolean", "Keep this listen in the database and listen again at every start."),
        ]

        /// `mode` as a number, or nil when absent.
        public var parsedMode: UInt32? {
            mode.flatMap { UInt32($0, radix: 8) }
        }

        public func validate() throws(ResponseError) {
            try Check.label(label)
            try Check.host(host)
            if let path {
                try Check.unixPath(path)
                try Check.noTCPParams(with: path, [
                    ("port", port != nil), ("host", host != nil), ("ipv6Only", ipv6Only != nil),
                    ("reusePort", reusePort != nil), ("noDelay", noDelay != nil), ("keepAlive", keepAlive != nil),
                ])
                if let mode, UInt32(mode, radix: 8).map({ $0 <= 0o777 }) != true {
                    throw .invalidParams("`mode` must be octal permissions such as \"0660\", not \(mode)")
                }
            } else {
                guard port != nil else { throw .invalidParams("`port` (TCP) or `path` (Unix socket) is required") }
                try Check.port(port, "port", allowZero: true)
                if mode != nil { throw .invalidParams("`mode` is for Unix sockets and needs `path`") }
            }
            try forward?.validate()
            try Check.range(backlog, "backlog", 1...65535)
            try Check.range(maxConnections, "maxConnections", 1...1_000_000)
        }
    }
}
