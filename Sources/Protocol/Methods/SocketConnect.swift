/// `socket.connect`: a TCP connection (name lookup first) or a Unix-socket connection.
public enum SocketConnectMethod: RPCMethod {
    public static let name = "socket.connect"
    public static let summary = "Connect to a TCP host and port (looking the name up first) or a Unix socket path."
    public typealias Result = SocketInfo

    public struct Params: RPCParams, Hashable {
        public var port: Int?
        public var host: String?
        public var family: Int?
        public var localAddress: String?
        public var localPort: Int?
        public var path: String?
        public var timeoutMs: Int?
        public var noDelay: Bool?
        public var keepAlive: Bool?
        public var keepAliveInitialDelayMs: Int?
        public var allowHalfOpen: Bool?
        public var label: String?
        /// Part two (section 9): once connected, the RPC connection becomes the socket's byte stream.
        public var attach: Bool?

        public init(
            port: Int? = nil, host: String? = nil, family: Int? = nil, localAddress: String? = nil,
            localPort: Int? = nil, path: String? = nil, timeoutMs: Int? = nil, noDelay: Bool? = nil,
            keepAlive: Bool? = nil, keepAliveInitialDelayMs: Int? = nil, allowHalfOpen: Bool? = nil, label: String? = nil,
            attach: Bool? = nil
        ) {
            self.port = port
            self.host = host
            self.family = family
            self.localAddress = localAddress
            self.localPort = localPort
            self.path = path
            self.timeoutMs = timeoutMs
            self.noDelay = noDelay
            self.keepAlive = keepAlive
            self.keepAliveInitialDelayMs = keepAliveInitialDelayMs
            self.allowHalfOpen = allowHalfOpen
            self.label = label
            self.attach = attach
        }

        public static let fields = [
            ParamField("port", "integer 1-65535", "TCP: the port to connect to (required for TCP)."),
            ParamField("host", "string", "TCP: name or address, looked up first (default localhost)."),
            ParamField("family", "integer: 0, 4 or 6", "TCP: only addresses of this IP version (0: both)."),
            ParamField("localAddress", "string", "TCP: local address to connect from."),
            ParamField("localPort", "integer 0-65535", "TCP: local port to connect from."),
            ParamField("path", "string", "Unix: the socket path to connect to (at most 107 bytes)."),
            ParamField("timeoutMs", "integer", "Give up connecting after this long (default 30000; 0: never)."),
            ParamField("noDelay", "boolean", "TCP: disable Nagle's algorithm."),
            ParamField("keepAlive", "boolean", "TCP: enable keep-alive probes."),
            ParamField("keepAliveInitialDelayMs", "integer", "TCP: idle time before the first keep-alive probe."),
            ParamField("allowHalfOpen", "boolean", "Keep the write side open after the peer ends (default false, as Node)."),
            ParamField("label", "string", "A label of yours, kept in history and usable as a filter."),
            ParamField("attach", "boolean", "Once connected, this RPC connection becomes the socket's byte stream (socket.attach)."),
        ]

        public func validate() throws(ResponseError) {
            try Check.label(label)
            try Check.host(host)
            if let path {
                try Check.unixPath(path)
                try Check.noTCPParams(with: path, [
                    ("port", port != nil), ("host", host != nil), ("family", family != nil),
                    ("localAddress", localAddress != nil), ("localPort", localPort != nil),
                    ("noDelay", noDelay != nil), ("keepAlive", keepAlive != nil),
                    ("keepAliveInitialDelayMs", keepAliveInitialDelayMs != nil),
                ])
            } else {
                guard port != nil else { throw .invalidParams("`port` (TCP) or `path` (Unix socket) is required") }
                try Check.port(port, "port", allowZero: false)
                try Check.port(localPort, "localPort", allowZero: true)
                try Check.ipAddress(localAddress, "localAddress")
                if let family, ![0, 4, 6].contains(family) {
                    throw .invalidParams("`family` must be 0, 4 or 6, not \(family)")
                }
                if host?.isEmpty == true { throw .invalidParams("`host` must not be empty") }
            }
            try Check.range(timeoutMs, "timeoutMs", 0...3_600_000)
            try Check.range(keepAliveInitialDelayMs, "keepAliveInitialDelayMs", 0...2_147_483_000)
        }
    }
}

extension SocketConnectMethod.Params: StreamSwitchingParams {
    public var switchesToStream: Bool { attach == true }
}
