/// `server.close`: stop listening; accepted sockets live on unless asked.
public enum ServerCloseMethod: RPCMethod {
    public static let name = "server.close"
    public static let summary = "Stop listening; accepted sockets stay open unless closeConnections is true."
    public typealias Result = ServerInfo

    public struct Params: RPCParams, Hashable {
        public var id: Int64
        public var closeConnections: Bool?

        public init(id: Int64, closeConnections: Bool? = nil) {
            self.id = id
            self.closeConnections = closeConnections
        }

        public static let fields = [
            ParamField("id", "integer", required: true, "The server's id."),
            ParamField("closeConnections", "boolean", "Also close every socket it accepted (default false)."),
        ]
    }
}
