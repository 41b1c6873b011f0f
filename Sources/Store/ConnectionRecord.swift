import GRDB

/// One row of `connections`: a socket or server netd held.
public struct ConnectionRecord: Codable, Sendable, Hashable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "connections"

    public var id: Int64
    public var role: String
    public var kind: String
    public var state: String
    public var label: String?
    public var host: String?
    public var localAddress: String?
    public var localPort: Int?
    public var localPath: String?
    public var remoteAddress: String?
    public var remotePort: Int?
    public var remotePath: String?
    public var serverID: Int64?
    public var ownerUID: UInt32
    public var ownerPID: Int32?
    public var openedAt: String
    public var closedAt: String?
    public var lastActivityAt: String?
    public var bytesRead: Int64 = 0
    public var bytesWritten: Int64 = 0
    public var errorCode: String?
    public var errorMessage: String?
    public var backlog: Int?
    public var maxConnections: Int?
    public var accepted: Int64?

    public init(id: Int64, role: String, kind: String, state: String, ownerUID: UInt32, ownerPID: Int32?, openedAt: String) {
        self.id = id
        self.role = role
        self.kind = kind
        self.state = state
        self.ownerUID = ownerUID
        self.ownerPID = ownerPID
        self.openedAt = openedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, role, kind, state, label, host
        case localAddress = "local_address", localPort = "local_port", localPath = "local_path"
        case remoteAddress = "remote_address", remotePort = "remote_port", remotePath = "remote_path"
        case serverID = "server_id", ownerUID = "owner_uid", ownerPID = "owner_pid"
        case openedAt = "opened_at", closedAt = "closed_at", lastActivityAt = "last_activity_at"
        case bytesRead = "bytes_read", bytesWritten = "bytes_written"
        case errorCode = "error_code", errorMessage = "error_message"
        case backlog, maxConnections = "max_connections", accepted
    }

    /// Every column, in the order of ``insertArguments``.
    static let insertColumns = [
        "id", "role", "kind", "state", "label", "host", "local_address", "local_port", "local_path", "remote_address",
        "remote_port", "remote_path", "server_id", "owner_uid", "owner_pid", "opened_at", "closed_at", "last_activity_at",
        "bytes_read", "bytes_written", "error_code", "error_message", "backlog", "max_connections", "accepted",
    ]

    /// The values of ``insertColumns``.
    var insertValues: [(any DatabaseValueConvertible)?] {
        [
            id, role, kind, state, label, host, localAddress, localPort, localPath, remoteAddress,
            remotePort, remotePath, serverID, ownerUID, ownerPID, openedAt, closedAt, lastActivityAt,
            bytesRead, bytesWritten, errorCode, errorMessage, backlog, maxConnections, accepted,
        ]
    }

    /// Written column by column, not through `Encodable` (``insertColumns`` and ``insertValues``).
    public func encode(to container: inout PersistenceContainer) {
        for (column, value) in zip(Self.insertColumns, insertValues) {
            container[column] = value
        }
    }

    public enum Columns {
        public static let id = Column(CodingKeys.id)
        public static let ownerUID = Column(CodingKeys.ownerUID)
        public static let closedAt = Column(CodingKeys.closedAt)
    }
}

/// One row of `events`.
public struct EventRecord: Codable, Sendable, Hashable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "events"

    public var id: Int64?
    public var connectionID: Int64
    public var at: String
    public var type: String
    /// A JSON object, or nil.
    public var detail: String?

    public init(connectionID: Int64, at: String, type: String, detail: String?) {
        self.connectionID = connectionID
        self.at = at
        self.type = type
        self.detail = detail
    }

    enum CodingKeys: String, CodingKey {
        case id, connectionID = "connection_id", at, type, detail
    }
}
