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
        /// Extension: whether history is being written, and what it is behind or has lost.
        public var history: HistoryHealth
        /// Extension: every limit's value, keyed by its flag's name (``NetdLimit``).
        public var limits: [String: Int]
        /// Extension: what users hold against the per-user limits: every user with anything, for
        /// an admin; the caller alone otherwise.
        public var users: [UserUsage]
        /// Extension: this RPC connection against the per-client limits.
        public var connection: ConnectionUsage

        public init(
            version: String, pid: Int32, uptimeMs: Int64, socket: String, database: String,
            sockets: Int, servers: Int, clients: Int, caller: Caller, history: HistoryHealth,
            limits: [String: Int], users: [UserUsage], connection: ConnectionUsage
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
            self.history = history
            self.limits = limits
            self.users = users
            self.connection = connection
        }
    }

    /// One user's RPC clients, live sockets and listening servers (`max-clients-per-user`,
    /// `max-sockets-per-user`, `max-servers-per-user`).
    public struct UserUsage: Codable, Hashable, Sendable {
        public var uid: UInt32
        public var clients: Int
        public var sockets: Int
        public var servers: Int

        public init(uid: UInt32, clients: Int, sockets: Int, servers: Int) {
            self.uid = uid
            self.clients = clients
            self.sockets = sockets
            self.servers = servers
        }
    }

    /// The caller's RPC connection: its event subscriptions (`max-subscriptions-per-client`).
    public struct ConnectionUsage: Codable, Hashable, Sendable {
        public var subscriptions: Int

        public init(subscriptions: Int) {
            self.subscriptions = subscriptions
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

/// How the history writer is doing (`netd.status` extension).
public struct HistoryHealth: Codable, Hashable, Sendable {
    /// The last attempt to write history succeeded (or none was needed).
    public var healthy: Bool
    /// Changes waiting to be written (records, updates, events; byte counts are kept apart, one per socket).
    public var queued: Int
    /// Failed attempts to write since netd started.
    public var failures: Int
    /// The last failure's reason and time, or null.
    public var lastError: String?
    public var lastErrorAt: String?
    /// Changes given up because history could not be written for too long (the queue was full).
    public var dropped: Int
    /// When history was last committed, or null.
    public var lastCommitAt: String?

    public init(
        healthy: Bool, queued: Int, failures: Int, lastError: String?, lastErrorAt: String?, dropped: Int,
        lastCommitAt: String?
    ) {
        self.healthy = healthy
        self.queued = queued
        self.failures = failures
        self.lastError = lastError
        self.lastErrorAt = lastErrorAt
        self.dropped = dropped
        self.lastCommitAt = lastCommitAt
    }

    private enum CodingKeys: String, CodingKey {
        case healthy, queued, failures, lastError, lastErrorAt, dropped, lastCommitAt
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(healthy, forKey: .healthy)
        try container.encode(queued, forKey: .queued)
        try container.encode(failures, forKey: .failures)
        try container.encode(lastError, forKey: .lastError)
        try container.encode(lastErrorAt, forKey: .lastErrorAt)
        try container.encode(dropped, forKey: .dropped)
        try container.encode(lastCommitAt, forKey: .lastCommitAt)
    }
}
