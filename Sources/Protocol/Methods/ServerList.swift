/// `server.list`: the caller's servers (an admin's: everyone's).
public enum ServerListMethod: RPCMethod {
    public static let name = "server.list"
    public static let summary = "List the servers you may see, optionally filtered by kind, state or label."
    public typealias Params = ListParams

    public struct Result: Codable, Hashable, Sendable {
        public var servers: [ServerInfo]

        public init(servers: [ServerInfo]) { self.servers = servers }
    }
}
