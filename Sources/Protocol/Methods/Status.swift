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
        /// Extension: who netd takes the caller to be, from the socket's peer credentials.
        public var caller: Caller

        public init(
            version: String, pid: Int32, uptimeMs: Int64, socket: String, database: String,
            sockets: Int, servers: Int, clients: Int, caller: Caller
        ) {
            self.version = version
            self.pid = pid
            self.uptimeMs = uptimeMs
            self.socket = socket
            self.database = database
            self.sockets = sockets
            self.servers = servers
            self.clients = clients
            self.caller = caller
        }
    }

    /// The owner a socket opened on this connection would get (contract section 3's `owner`).
    public struct Caller: Codable, Hashable, Sendable {
        public var uid: UInt32
        public var pid: Int32
        /// Whether this caller sees every user's sockets (root or netd's own user).
        public var admin: Bool

        public init(uid: UInt32, pid: Int32, admin: Bool) {
            self.uid = uid
            self.pid = pid
            self.admin = admin
        }
    }
}
