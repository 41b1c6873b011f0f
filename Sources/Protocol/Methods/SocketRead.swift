/// `socket.read`: bytes the peer sent that no client has read yet.
public enum SocketReadMethod: RPCMethod {
    public static let name = "socket.read"
    public static let summary = "Read buffered bytes from a socket, waiting up to waitMs when there are none."

    public static let maximumBytes = 16 << 20

    public struct Params: RPCParams, Hashable {
        public var id: Int64
        public var maxBytes: Int?
        public var encoding: DataEncoding?
        public var waitMs: Int?

        public init(id: Int64, maxBytes: Int? = nil, encoding: DataEncoding? = nil, waitMs: Int? = nil) {
            self.id = id
            self.maxBytes = maxBytes
            self.encoding = encoding
            self.waitMs = waitMs
        }

        public static let fields = [
            ParamField("id", "integer", required: true, "The socket's id."),
            ParamField("maxBytes", "integer", "Read at most this many bytes (default 65536)."),
            ParamField("encoding", "string: utf8, base64 or hex", "How `data` is returned (default utf8)."),
            ParamField("waitMs", "integer", "Wait up to this long when nothing is buffered (default 0)."),
        ]

        public func validate() throws(ResponseError) {
            try Check.range(maxBytes, "maxBytes", 1...SocketReadMethod.maximumBytes)
            try Check.range(waitMs, "waitMs", 0...3_600_000)
        }
    }

    public struct Result: Codable, Hashable, Sendable {
        public var bytes: Int
        public var data: String
        public var encoding: DataEncoding
        /// True once the peer has ended and nothing is left to read.
        public var eof: Bool

        public init(data: String, encoding: DataEncoding, bytes: Int, eof: Bool) {
            self.data = data
            self.encoding = encoding
            self.bytes = bytes
            self.eof = eof
        }
    }
}
