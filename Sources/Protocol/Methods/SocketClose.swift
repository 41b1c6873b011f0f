/// `socket.close`: close both directions now, discarding what was not read.
public enum SocketCloseMethod: RPCMethod {
    public static let name = "socket.close"
    public static let summary = "Close a socket, discarding unread bytes; reset sends RST instead of FIN."
    public typealias Result = SocketInfo

    public struct Params: RPCParams, Hashable {
        public var id: Int64
        public var reset: Bool?

        public init(id: Int64, reset: Bool? = nil) {
            self.id = id
            self.reset = reset
        }

        public static let fields = [
            ParamField("id", "integer", required: true, "The socket's id."),
            ParamField("reset", "boolean", "Send RST rather than a graceful close (default false)."),
        ]
    }
}
