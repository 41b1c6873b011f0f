/// `server.accept`: claim the oldest accepted socket no client has claimed yet.
public enum ServerAcceptMethod: RPCMethod {
    public static let name = "server.accept"
    public static let summary = "Claim the oldest accepted socket not yet claimed, waiting up to waitMs; null when none."

    public struct Params: RPCParams, Hashable {
        public var id: Int64
        public var waitMs: Int?
        /// Part two (section 9): the accepted socket's bytes take over the RPC connection.
        public var attach: Bool?

        public init(id: Int64, waitMs: Int? = nil, attach: Bool? = nil) {
            self.id = id
            self.waitMs = waitMs
            self.attach = attach
        }

        public static let fields = [
            ParamField("id", "integer", required: true, "The server's id."),
            ParamField("waitMs", "integer", "Wait up to this long when none is pending (default 0)."),
            ParamField("attach", "boolean", "The RPC connection becomes the accepted socket's byte stream (socket.attach)."),
        ]

        public func validate() throws(ResponseError) {
            try Check.range(waitMs, "waitMs", 0...3_600_000)
        }
    }

    public struct Result: Codable, Hashable, Sendable {
        public var socket: SocketInfo?

        public init(socket: SocketInfo?) { self.socket = socket }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(socket, forKey: .socket)
        }

        private enum CodingKeys: String, CodingKey { case socket }
    }
}

extension ServerAcceptMethod.Params: StreamSwitchingParams {
    public var switchesToStream: Bool { attach == true }
}
