import GRDB
import NetdProtocol

/// One row of `connections`: a socket or server netd held.
public struct ConnectionRecord: Codable, Sendable, Hashable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "connections"

    /// A record's state: a socket's (``SocketState``) or a server's (``ServerState``).
    public enum State: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
        case opening, open, readOnly, writeOnly, closed, listening

        public init(_ state: SocketState) { self.init(rawValue: state.rawValue)! }
        public init(_ state: ServerState) { self.init(rawValue: state.rawValue)! }
    }

    public var id: Int64
    public var role: Role
    public var kind: Kind
    public var state: State
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
    /// The other socket of a relayed pair (part two).
    public var peerID: Int64?
    /// A forwarding server's target, as JSON (part two).
    public var forward: String?

    public init(id: Int64, role: Role, kind: Kind, state: State, ownerUID: UInt32, ownerPID: Int32?, openedAt: String) {
        self.id = id
        self.role = role
        self.kind = kind
        self.state = state
        self.ownerUID = ownerUID
        self.ownerPID = ownerPID
        self.openedAt = openedAt
    }

    /// The columns of `connections`, named once: the record's coding keys, the columns queries
    /// filter on and the columns changes set (``RecordChange``).
    public enum CodingKeys: String, CodingKey, CaseIterable, ColumnExpression, Sendable {
        case id, role, kind, state, label, host
        case localAddress = "local_address", localPort = "local_port", localPath = "local_path"
        case remoteAddress = "remote_address", remotePort = "remote_port", remotePath = "remote_path"
        case serverID = "server_id", ownerUID = "owner_uid", ownerPID = "owner_pid"
        case openedAt = "opened_at", closedAt = "closed_at", lastActivityAt = "last_activity_at"
        case bytesRead = "bytes_read", bytesWritten = "bytes_written"
        case errorCode = "error_code", errorMessage = "error_message"
        case backlog, maxConnections = "max_connections", accepted
        case peerID = "peer_id", forward
    }

    public typealias Column = CodingKeys

    /// The value of one column. The switch is exhaustive: a column added to ``Column`` cannot be
    /// left out of what is written.
    func value(of column: Column) -> DatabaseValue {
        switch column {
        case .id: id.databaseValue
        case .role: role.databaseValue
        case .kind: kind.databaseValue
        case .state: state.databaseValue
        case .label: label.databaseValue
        case .host: host.databaseValue
        case .localAddress: localAddress.databaseValue
        case .localPort: localPort.databaseValue
        case .localPath: localPath.databaseValue
        case .remoteAddress: remoteAddress.databaseValue
        case .remotePort: remotePort.databaseValue
        case .remotePath: remotePath.databaseValue
        case .serverID: serverID.databaseValue
        case .ownerUID: ownerUID.databaseValue
        case .ownerPID: ownerPID.databaseValue
        case .openedAt: openedAt.databaseValue
        case .closedAt: closedAt.databaseValue
        case .lastActivityAt: lastActivityAt.databaseValue
        case .bytesRead: bytesRead.databaseValue
        case .bytesWritten: bytesWritten.databaseValue
        case .errorCode: errorCode.databaseValue
        case .errorMessage: errorMessage.databaseValue
        case .backlog: backlog.databaseValue
        case .maxConnections: maxConnections.databaseValue
        case .accepted: accepted.databaseValue
        case .peerID: peerID.databaseValue
        case .forward: forward.databaseValue
        }
    }

    /// Every column's value, in ``Column`` order.
    var row: [DatabaseValue] { Column.allCases.map(value(of:)) }

    /// Written column by column (``value(of:)``), not through `Encodable`'s containers.
    public func encode(to container: inout PersistenceContainer) {
        for column in Column.allCases { container[column.rawValue] = value(of: column) }
    }
}

extension ConnectionRecord.Column {
    /// Where this column's value sits in ``ConnectionRecord/row``.
    var index: Int { Self.indexes[self]! }

    private static let indexes = Dictionary(uniqueKeysWithValues: allCases.enumerated().map { ($1, $0) })
}

extension Role: DatabaseValueConvertible {}
extension Kind: DatabaseValueConvertible {}

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
