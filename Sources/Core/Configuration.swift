import NetdProtocol
import Prometheus

/// Everything netd's behaviour depends on, resolved from flags and the environment by the executable.
public struct NetdConfiguration: Sendable {
    /// Where netd listens (contract section 1).
    public var socketPath: String
    /// Permissions of the socket file, given to it before it is bound (``SocketFile/bindListening(mode:)``).
    public var socketMode: UInt32 = 0o600
    /// Where the history database lives (contract section 1).
    public var databasePath: String
    /// Longest request line; longer ones get Invalid Request with id null.
    public var maxMessageBytes: Int = 1 << 20
    /// Most RPC clients connected at once; one more gets -32007 and is closed.
    public var maxClients: Int = 1024
    /// Most RPC clients one user may have connected at once; one more gets -32007 and is closed.
    public var maxClientsPerUser: Int = 256
    /// Requests one RPC connection may have in flight (waiting for an answer); one more gets -32007.
    public var maxRequestsPerClient: Int = 1024
    /// Event subscriptions one RPC connection may hold; one more gets -32007.
    public var maxSubscriptionsPerClient: Int = 64
    /// Per-socket buffer, sockets and servers per user, unclaimed accepted sockets per server.
    public var limits = ConnectionManager.Limits()
    /// Keep closed records this long, pruning older ones periodically; nil keeps them forever.
    public var retain: Duration?
    /// History changes held in memory while the database cannot be written; beyond it they are given up (and counted).
    public var historyQueueLimit = 200_000
    /// `netd --replace`: take over from a netd running on the socket (contract section 13);
    /// with none running, start as usual.
    public var replace = false
    /// An RPC connection that has sent an incomplete line for longer than this is closed (a slow
    /// client holding a connection open a byte at a time); nil never closes one.
    public var rpcIdleTimeout: Duration? = .seconds(60)
    /// The RPC socket systemd bound and passed (socket activation): netd serves on it instead of
    /// binding `socketPath`, and leaves its file alone when it stops.
    public var activatedListener: CInt?
    /// `--metrics HOST:PORT`: where to serve Prometheus text, and the registry swift-metrics was
    /// bootstrapped with (``MetricsEndpoint``); nil serves none.
    public var metrics: (host: String, port: Int, registry: PrometheusCollectorRegistry)?
    /// Who besides root and netd's own user may use netd, and who else is an admin.
    public var access = AccessPolicy()

    public init(socketPath: String, databasePath: String) {
        self.socketPath = socketPath
        self.databasePath = databasePath
    }

    /// Every limit's value, by name, as `netd.status` reports them.
    public var limitValues: [NetdLimit: Int] {
        [
            .maxMessageBytes: maxMessageBytes, .maxClients: maxClients, .maxClientsPerUser: maxClientsPerUser,
            .maxRequestsPerClient: maxRequestsPerClient, .maxSocketsPerUser: limits.socketsPerUser,
            .maxServersPerUser: limits.serversPerUser, .maxSubscriptionsPerClient: maxSubscriptionsPerClient,
            .maxBufferBytes: limits.socketBufferBytes, .maxPendingAccepts: limits.pendingPerServer,
        ]
    }
}
