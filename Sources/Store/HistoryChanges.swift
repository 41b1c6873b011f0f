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

    typealias Column = ConnectionRecord.Column

    /// The columns this change sets, always the same for a case, so that each case is one cached statement.
    var columns: [Column] {
        switch self {
        case .connected: [.state, .localAddress, .localPort, .localPath, .remoteAddress, .remotePort, .remotePath, .lastActivityAt]
        case .failed: [.errorCode, .errorMessage]
        case .socketClosed: [.state, .closedAt, .lastActivityAt, .bytesRead, .bytesWritten]
        case .serverClosed: [.state, .closedAt, .accepted]
        case .accepted: [.accepted]
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
        }
    }

    /// `UPDATE connections SET … WHERE id = ?` for this case.
    var sql: String {
        "UPDATE \(ConnectionRecord.databaseTableName) SET "
            + columns.map { "\($0.rawValue) = ?" }.joined(separator: ", ") + " WHERE \(Column.id.rawValue) = ?"
    }
}

extension HistoryChange {
    func apply(_ db: Database) throws {
        switch self {
        case .insert(let record):
            try record.insert(db)
        case .event(let event):
            try event.insert(db)
        case .update(let id, let change):
            var arguments = StatementArguments(change.values)
            arguments += [id]
            try db.cachedStatement(sql: change.sql).execute(arguments: arguments)
        }
    }

    /// The same changes with the updates of a record inserted in the same batch folded into its
    /// insert: a socket opened and closed within one transaction is written as one row, not a row
    /// and two updates of every index.
    static func merge(_ changes: [HistoryChange]) -> [HistoryChange] {
        var merged: [HistoryChange] = []
        merged.reserveCapacity(changes.count)
        var inserted: [Int64: Int] = [:]
        for change in changes {
            switch change {
            case .insert(let record):
                inserted[record.id] = merged.count
                merged.append(change)
            case .update(let id, let update):
                if let index = inserted[id], case .insert(var record) = merged[index], (try? record.apply(update)) != nil {
                    merged[index] = .insert(record)
                } else {
                    merged.append(change)
                }
            case .event:
                merged.append(change)
            }
        }
        return merged
    }
}

extension ConnectionRecord {
    /// Sets what `change` sets, as its SQL would: through the same columns and values.
    mutating func apply(_ change: RecordChange) throws {
        var row = try databaseDictionary
        for (column, value) in zip(change.columns, change.values) {
            row[column.rawValue] = value?.databaseValue ?? .null
        }
        self = try ConnectionRecord(row: Row(row))
    }
}
