/// `socket.end`: half-close, after writing optional last bytes.
public enum SocketEndMethod: RPCMethod {
    public static let name = "socket.end"
    public static let summary = "Half-close a socket (end its write side), after writing optional last data."
    public typealias Result = SocketInfo

    public struct Params: RPCParams, Hashable {
        public var id: Int64
        public var data: String?
        public var encoding: DataEncoding?

        public init(id: Int64, data: String? = nil, encoding: DataEncoding? = nil) {
            self.id = id
            self.data = data
            self.encoding = encoding
        }

        public static let fields = [
            ParamField("id", "integer", required: true, "The socket's id."),
            ParamField("data", "string", "Last bytes to write before ending."),
            ParamField("encoding", "string: utf8, base64 or hex", "How `data` is written (default utf8)."),
        ]
    }
}
