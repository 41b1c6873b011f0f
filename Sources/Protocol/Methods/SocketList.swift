/// `socket.list`: the caller's sockets (an admin's: everyone's).
public enum SocketListMethod: RPCMethod {
    public static let name = "socket.list"
    public static let summary = "List the sockets you may see, optionally filtered by role, kind, state, server or label."
    public typealias Params = ListParams

    public struct Result: Codable, Hashable, Sendable {
        public var sockets: [SocketInfo]

        public init(sockets: [SocketInfo]) { self.sockets = sockets }
    }
}
