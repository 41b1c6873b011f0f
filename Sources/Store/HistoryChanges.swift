import GRDB
import NetdProtocol

/// A change to the history, as ``HistoryWriter`` takes it: typed, applied in the order queued.
public enum HistoryChange: Sendable, Hashable {
    /// A new record: a socket being opened or accepted, a server, a failed listen.
    case insert(ConnectionRecord)
    /// Something happened to a record held in memory.
    case update(id: Int64, RecordChange)
    case event(EventRecord)
}

/// What can happen to a record after it is written: each case sets a fixed set of columns.
public enum RecordChange: Sendable, Hashable {
    /// A client socket connected, from `local` to `remote`.
    case connected(local: Endpoint?, remote: Endpoint?, at: String)
    /// A socket or server failed (it closes with a later change).
    case failed(code: String, message: String)
    /// A socket closed, with its final byte counts.
    case socketClosed(at: String, bytesRead: Int64, bytesWritten: Int64)
    /// A server stopped listening, having accepted `accepted` connections.
    case serverClosed(at: String, accepted: Int64)
    /// A server accepted a connection: its running count.
    case accepted(total: Int64)
    /// A socket joined another in a pipe or forward pair.
    case peer(Int64)

    typealias Column = ConnectionRecord.Column

    /// The columns this change sets, always the same for a case, so that each case is one cached statement.
    var columns: [Column] {
        switch self {
        case .connected: [.state, .localAddress, .localPort, .localPath, .remoteAddress, .remotePort, .remotePath, .lastActivityAt]
        case .failed: [.errorCode, .errorMessage]
        case .socketClosed: [.state, .closedAt, .lastActivityAt, .bytesRead, .bytesWritten]
        case .serverClosed: [.state, .closedAt, .accepted]
        case .accepted: [.accepted]
        case .peer: [.peerID]
        }
    }

    /// The values of ``columns``, in their order.
    var values: [(any DatabaseValueConvertible)?] {
        switch self {
        case .connected(let local, let remote, let at):
            [ConnectionRecord.State.open, local?.address, local?.port, local?.path, remote?.address, remote?.port, remote?.path, at]
        case .failed(let code, let message): [code, message]
        case .socketClosed(let at, let read, let written): [ConnectionRecord.State.closed, at, at, read, written]
        case .serverClosed(let at, let accepted): [ConnectionRecord.State.closed, at, accepted]
        case .accepted(let total): [total]
        case .peer(let id): [id]
        }
    }

    /// `UPDATE connections SET … WHERE id = ?` for this case.
    var sql: String {
        "UPDATE \(ConnectionRecord.databaseTableName) SET "
            + columns.map { "\($0.rawValue) = ?" }.joined(separator: ", ") + " WHERE \(Column.id.rawValue) = ?"
    }
}

/// A change as one transaction writes it: a new record as the values of its row, with the updates
/// of the same batch folded in, or any other change as queued.
enum BatchedChange {
    case row([DatabaseValue])
    case change(HistoryChange)

    private static let insertSQL: String = {
        let columns = ConnectionRecord.Column.allCases
        return "INSERT INTO \(ConnectionRecord.databaseTableName) (" + columns.map(\.rawValue).joined(separator: ", ")
            + ") VALUES (" + Array(repeating: "?", count: columns.count).joined(separator: ", ") + ")"
    }()

    private static let eventSQL: String = {
        typealias Column = EventRecord.CodingKeys
        let columns = [Column.connectionID, .at, .type, .detail].map(\.rawValue)
        return "INSERT INTO \(EventRecord.databaseTableName) (\(columns.joined(separator: ", "))) VALUES (?, ?, ?, ?)"
    }()

    func apply(_ db: Database) throws {
        switch self {
        case .row(let values):
            try db.cachedStatement(sql: Self.insertSQL).execute(arguments: StatementArguments(values))
        case .change(.insert(let record)):
            try BatchedChange.row(record.row).apply(db)
        case .change(.event(let event)):
            // A cached statement, not the record's insert (which builds its statement and fetches the id back).
            try db.cachedStatement(sql: Self.eventSQL).execute(arguments: [event.connectionID, event.at, event.type, event.detail])
        case .change(.update(let id, let change)):
            var arguments = StatementArguments(change.values)
            arguments += [id]
            try db.cachedStatement(sql: change.sql).execute(arguments: arguments)
        }
    }

    /// The changes with the updates of a record inserted in the same batch folded into its row: a
    /// socket opened and closed within one transaction is written as one row, not a row and two
    /// updates of every index. The fold sets the columns and values the update's SQL would.
    static func fold(_ changes: [HistoryChange]) -> [BatchedChange] {
        var batched: [BatchedChange] = []
        batched.reserveCapacity(changes.count)
        var inserted: [Int64: Int] = [:]
        for change in changes {
            switch change {
            case .insert(let record):
                inserted[record.id] = batched.count
                batched.append(.row(record.row))
            case .update(let id, let update):
                guard let index = inserted[id], case .row(var values) = batched[index] else {
                    batched.append(.change(change))
                    continue
                }
                for (column, value) in zip(update.columns, update.values) {
                    values[column.index] = value?.databaseValue ?? .null
                }
                batched[index] = .row(values)
            case .event:
                batched.append(.change(change))
            }
        }
        return batched
    }
}
