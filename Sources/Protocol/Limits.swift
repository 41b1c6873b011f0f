/// netd's limits, each named as its flag is (without the dashes): the name an error's
/// `data.limit` gives when the limit is reached, and the key `netd.status` reports it under.
public enum NetdLimit: String, Codable, CaseIterable, Hashable, Sendable {
    /// The longest request line (answered with -32600 and id null, contract section 1).
    case maxMessageBytes = "max-message-bytes"
    /// RPC clients connected at once, across all users.
    case maxClients = "max-clients"
    /// RPC clients connected at once by one user.
    case maxClientsPerUser = "max-clients-per-user"
    /// Requests one RPC connection may have waiting for an answer.
    case maxRequestsPerClient = "max-requests-per-client"
    /// Live sockets (client and accepted) one user may hold.
    case maxSocketsPerUser = "max-sockets-per-user"
    /// Listening servers one user may hold.
    case maxServersPerUser = "max-servers-per-user"
    /// Event subscriptions one RPC connection may hold.
    case maxSubscriptionsPerClient = "max-subscriptions-per-client"
    /// Unread bytes a socket buffers before netd stops reading from its peer (backpressure, never an error).
    case maxBufferBytes = "max-buffer-bytes"
    /// Accepted sockets a server holds for `server.accept` before it stops accepting (backpressure, never an error).
    case maxPendingAccepts = "max-pending-accepts"

    /// The flag that sets it.
    public var flag: String { "--\(rawValue)" }

    /// The `data` of the error that answers when it is reached: the POSIX-style `code`, the
    /// limit's name and its value.
    public func errorData(code: String, max: Int) -> JSONValue {
        .object(["code": .string(code), "limit": .string(rawValue), "max": .integer(Int64(max))])
    }
}
