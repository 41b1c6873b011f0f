import NetdProtocol

/// Everything netd's behaviour depends on, resolved from flags and the environment by the executable.
public struct NetdConfiguration: Sendable {
    /// Where netd listens (contract section 1).
    public var socketPath: String
    /// Permissions of the socket file; the umask is set from it before binding.
    public var socketMode: UInt32 = 0o600
    /// Where the history database lives (contract section 1).
    public var databasePath: String
    /// Longest request line; longer ones get Invalid Request with id null.
    public var maxMessageBytes: Int = 1 << 20
    /// Most RPC clients connected at once; one more gets -32007 and is closed.
    public var maxClients: Int = 1024
    /// Per-socket buffer, sockets per user, unclaimed accepted sockets per server.
    public var limits = ConnectionManager.Limits()

    public init(socketPath: String, databasePath: String) {
        self.socketPath = socketPath
        self.databasePath = databasePath
    }
}
