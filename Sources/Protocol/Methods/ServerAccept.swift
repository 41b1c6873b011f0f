/// `server.accept`: claim the oldest accepted socket no client has claimed yet.
public enum ServerAcceptMethod: RPCMethod {
    public static let name = "server.accept"
    public static let summary = "Claim the oldest accepted socket not yet claimed, waiting up to waitMs; null when none."

    public struct Params: RPCParams, Hashable {
        public var id: Int64
        public var waitMs: Int?
        /// Part two (section 9): the accepted socket's bytes take over the RPC connection.
        public var attach: Bool?
        /// Part two (section 11): the accepted socket's descriptor goes to the caller instead.
        public var handoff: Bool?

        public init(id: Int64, waitMs: Int? = nil, attach: Bool? = nil, handoff: Bool? = nil) {
            self.id = id
            self.waitMs = waitMs
            self.attach = attach
            self.handoff = handoff
        }

        public static let fields = [
            ParamField("id", "integer", required: true, "The server's id."),
            ParamField("waitMs", "integer", "Wait up to this long when none is pending (default 0)."),
            ParamField("attach", "boolean", "The RPC connection becomes the accepted socket's byte stream (socket.attach)."),
            ParamField("handoff", "boolean", "Hand the accepted socket's descriptor to the caller (socket.handoff) instead of tracking it."),
        ]

        public func validate() throws(ResponseError) {
            try Check.range(waitMs, "waitMs", 0...3_600_000)
            if attach == true && handoff == true { throw .invalidParams("`attach` and `handoff` cannot both be true") }
        }
    }

    public struct Result: Codable, Hashable, Sendable {
        /// With `handoff`: what the socket had buffered unread, in `encoding` (base64).
        public var data: String?
        public var encoding: DataEncoding?
        public var socket: SocketInfo?

        public init(socket: SocketInfo?, data: String? = nil, encoding: DataEncoding? = nil) {
            self.socket = socket
            self.data = data
            self.encoding = encoding
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            if let data { try container.encode(data, forKey: .data) }
            if let encoding { try container.encode(encoding, forKey: .encoding) }
            try container.encode(socket, forKey: .socket)
        }

        private enum CodingKeys: String, CodingKey { case data, encoding, socket }
    }
}

extension ServerAcceptMethod.Params: StreamSwitchingParams {
    public var switchesToStream: Bool { attach == true }
}
