/// `socket.write`: bytes to the peer, answered once the operating system has them.
public enum SocketWriteMethod: RPCMethod {
    public static let name = "socket.write"
    public static let summary = "Write bytes to a socket; answers once they are handed to the operating system."

    public struct Params: RPCParams, Hashable {
        public var id: Int64
        public var data: String
        public var encoding: DataEncoding?

        public init(id: Int64, data: String, encoding: DataEncoding? = nil) {
            self.id = id
            self.data = data
            self.encoding = encoding
        }

        public static let fields = [
            ParamField("id", "integer", required: true, "The socket's id."),
            ParamField("data", "string", required: true, "The bytes, in `encoding`."),
            ParamField("encoding", "string: utf8, base64 or hex", "How `data` is written (default utf8)."),
        ]
    }

    public struct Result: Codable, Hashable, Sendable {
        public var bytes: Int

        public init(bytes: Int) { self.bytes = bytes }
    }
}
