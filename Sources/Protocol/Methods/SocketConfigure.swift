/// `socket.configure`: change options of a live socket.
public enum SocketConfigureMethod: RPCMethod {
    public static let name = "socket.configure"
    public static let summary = "Set noDelay, keepAlive, keepAliveInitialDelayMs or idleTimeoutMs on a live socket."
    public typealias Result = SocketInfo

    public struct Params: RPCParams, Hashable {
        public var id: Int64
        public var noDelay: Bool?
        public var keepAlive: Bool?
        public var keepAliveInitialDelayMs: Int?
        public var idleTimeoutMs: Int?

        public init(id: Int64, noDelay: Bool? = nil, keepAlive: Bool? = nil, keepAliveInitialDelayMs: Int? = nil, idleTimeoutMs: Int? = nil) {
            self.id = id
            self.noDelay = noDelay
            self.keepAlive = keepAlive
            self.keepAliveInitialDelayMs = keepAliveInitialDelayMs
            self.idleTimeoutMs = idleTimeoutMs
        }

        public static let fields = [
            ParamField("id", "integer", required: true, "The socket's id."),
            ParamField("noDelay", "boolean", "TCP: disable Nagle's algorithm."),
            ParamField("keepAlive", "boolean", "TCP: enable keep-alive probes."),
            ParamField("keepAliveInitialDelayMs", "integer", "TCP: idle time before the first keep-alive probe."),
            ParamField("idleTimeoutMs", "integer", "Raise a `timeout` event after this long without traffic (0: off)."),
        ]

        public func validate() throws(ResponseError) {
            try Check.range(keepAliveInitialDelayMs, "keepAliveInitialDelayMs", 0...2_147_483_000)
            try Check.range(idleTimeoutMs, "idleTimeoutMs", 0...2_147_483_000)
        }
    }
}
