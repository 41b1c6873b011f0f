/// Params of a call whose answer line carries a descriptor with SCM_RIGHTS (contract section 11):
/// `socket.handoff`, `server.handoff`, and `handoff: true` on `server.accept`.
public protocol DescriptorPassingParams: RPCParams {
    var passesDescriptor: Bool { get }
}

/// `socket.handoff`: the socket's descriptor to the caller; netd lets go of it.
public enum SocketHandoffMethod: RPCMethod {
    public static let name = "socket.handoff"
    public static let summary = "Hand the socket's descriptor to the caller (SCM_RIGHTS with the answer line); netd closes its copy."

    public struct Params: DescriptorPassingParams, Hashable {
        public var id: Int64

        public init(id: Int64) { self.id = id }

        public static let fields = [ParamField("id", "integer", required: true, "The socket's id.")]

        public var passesDescriptor: Bool { true }
    }

    /// The socket as netd last saw it (closed, `handedOff`), and what it had buffered unread.
    public struct Result: Codable, Hashable, Sendable {
        public var data: String
        public var encoding: DataEncoding
        public var socket: SocketInfo

        public init(socket: SocketInfo, data: String, encoding: DataEncoding = .base64) {
            self.socket = socket
            self.data = data
            self.encoding = encoding
        }
    }
}

/// `server.handoff`: a listening server's descriptor to the caller.
public enum ServerHandoffMethod: RPCMethod {
    public static let name = "server.handoff"
    public static let summary = "Hand the listening server's descriptor to the caller (SCM_RIGHTS with the answer line); netd stops listening."

    public struct Params: DescriptorPassingParams, Hashable {
        public var id: Int64

        public init(id: Int64) { self.id = id }

        public static let fields = [ParamField("id", "integer", required: true, "The server's id.")]

        public var passesDescriptor: Bool { true }
    }

    public struct Result: Codable, Hashable, Sendable {
        public var server: ServerInfo

        public init(server: ServerInfo) { self.server = server }
    }
}

extension ServerAcceptMethod.Params: DescriptorPassingParams {
    public var passesDescriptor: Bool { handoff == true }
}
