/// `netd.status`: what this netd is and what it holds.
public enum StatusMethod: RPCMethod {
    public static let name = "netd.status"
    public static let summary = "Report netd's version, pid, uptime, paths and how many sockets, servers and clients it has."
    public typealias Params = NoParams

    public struct Result: Codable, Hashable, Sendable {
        public var version: String
        public var pid: Int32
        public var uptimeMs: Int64
        /// The path netd listens on.
        public var socket: String
        /// The path of the history database.
        public var database: String
        /// Live sockets (client and accepted) across all users.
        public var sockets: Int
        /// Listening servers across all users.
        public var servers: Int
        /// Connected RPC clients, this one included.
        public var clients: Int

        public init(
            version: String, pid: Int32, uptimeMs: Int64, socket: String, database: String,
            sockets: Int, servers: Int, clients: Int
        ) {
            self.version = version
            self.pid = pid
            self.uptimeMs = uptimeMs
            self.socket = socket
            self.database = database
            self.sockets = sockets
            self.servers = servers
            self.clients = clients
        }
    }
}
