import Foundation
import GRDB
import NetdProtocol

/// Which records a history query or summary covers. Times are in the database's own format
/// (``NetdProtocol/Timestamp``), so they compare as text.
public struct HistoryFilter: Sendable, Hashable {
    /// Only this user's records; nil for everyone's (an admin).
    public var ownerUID: UInt32?
    public var since: String?
    public var until: String?
    public var role: Role?
    public var kind: Kind?
    /// Open records (not closed yet) or closed ones.
    public var state: HistoryState?
    public var host: String?
    public var port: Int?
    public var path: String?
    public var server: Int64?
    public var label: String?

    public init(
        ownerUID: UInt32? = nil, since: String? = nil, until: String? = nil, role: Role? = nil, kind: Kind? = nil,
        state: HistoryState? = nil, host: String? = nil, port: Int? = nil, path: String? = nil, server: Int64? = nil,
        label: String? = nil
    ) {
        self.ownerUID = ownerUID
        self.since = since
        self.until = until
        self.role = role
        self.kind = kind
        self.state = state
        self.host = host
        self.port = port
        self.path = path
        self.server = server
        self.label = label
    }

    /// The WHERE clause (without the keyword; `1` when empty) and its arguments.
    func sql(before: Int64? = nil) -> (String, StatementArguments) {
        var clauses: [String] = []
        var arguments: StatementArguments = []
        func add(_ clause: String, _ values: (any DatabaseValueConvertible)...) {
            clauses.append(clause)
            for value in values { arguments += [value] }
        }
        if let ownerUID { add("owner_uid = ?", Int64(ownerUID)) }
        // netd gives ids and opening times together, so that opened_at never decreases as ids
        // rise: a time window is an id range, found from the opened_at index, and the rows are
        // read newest first from the primary key. The exact comparison stays (with a unary +
        // so that SQLite does not sort by the time index instead).
        if let since {
            add("id >= COALESCE((SELECT id FROM connections WHERE opened_at >= ? ORDER BY opened_at, id LIMIT 1), 9223372036854775807)", since)
            add("+opened_at >= ?", since)
        }
        if let until {
            add("id <= COALESCE((SELECT id FROM connections WHERE opened_at < ? ORDER BY opened_at DESC, id DESC LIMIT 1), 0)", until)
            add("+opened_at < ?", until)
        }
        if let role { add("role = ?", role) }
        if let kind { add("kind = ?", kind) }
        switch state {
        case .open: add("closed_at IS NULL")
        // Most records are closed: read them in id order rather than from the closed_at index.
        case .closed: add("+closed_at IS NOT NULL")
        case nil: break
        }
        if let host { add("\(Schema.hostExpression) = ?", host) }
        if let port { add("\(Schema.portExpression) = ?", port) }
        if let path { add("\(Schema.pathExpression) = ?", path) }
        if let server { add("server_id = ?", server) }
        if let label { add("label = ?", label) }
        if let before { add("id < ?", before) }
        return (clauses.isEmpty ? "1" : clauses.joined(separator: " AND "), arguments)
    }
}

/// Summaries of history (`history.stats`).
public enum StatsKey: String, Sendable, CaseIterable {
    case remote, kind, role, label, server

    /// The SQL value records are grouped by.
    var expression: String {
        switch self {
        case .remote:
            // What was talked to: the name asked for (or address) and port, or the path.
            """
            CASE role
              WHEN 'client' THEN COALESCE(remote_path, \(Self.hostPort("COALESCE(host, remote_address)", "remote_port")))
              WHEN 'accepted' THEN COALESCE(local_path, remote_address)
              ELSE COALESCE(local_path, \(Self.hostPort("local_address", "local_port")))
            END
            """
        case .kind: "kind"
        case .role: "role"
        case .label: "label"
        case .server: "server_id"
        }
    }

    /// `host:port`, with brackets around an IPv6 address.
    private static func hostPort(_ host: String, _ port: String) -> String {
        "(CASE WHEN instr(\(host), ':') > 0 THEN '[' || \(host) || ']' ELSE \(host) END || ':' || \(port))"
    }
}

/// The value records were grouped by.
public enum StatsKeyValue: Sendable, Hashable {
    case text(String)
    case integer(Int64)
    case none

    init(_ value: DatabaseValue) {
        switch value.storage {
        case .string(let text): self = .text(text)
        case .int64(let number): self = .integer(number)
        case .double(let number): self = .text(String(number))
        case .null, .blob: self = .none
        }
    }
}

/// One group of a summary, as the database gives it.
public struct StatsRow: Sendable, Hashable {
    /// The group's value.
    public var key: StatsKeyValue
    public var connections = 0
    public var open = 0
    public var failed = 0
    public var errors: [String: Int] = [:]
    public var bytesRead: Int64 = 0
    public var bytesWritten: Int64 = 0
    /// Durations of the closed records, in milliseconds, ascending.
    public var durations: [Double] = []
}

extension HistoryStore {
    /// The newest records matching `filter` below id `before`: at most `limit`, and the `before`
    /// of the next page (nil when nothing is left).
    public func query(_ filter: HistoryFilter, before: Int64?, limit: Int) async throws -> (records: [ConnectionRecord], next: Int64?) {
        let (condition, arguments) = filter.sql(before: before)
        let rows = try await pool.read { db in
            try ConnectionRecord.fetchAll(
                db, sql: "SELECT * FROM connections WHERE \(condition) ORDER BY id DESC LIMIT ?",
                arguments: arguments + [limit + 1])
        }
        guard rows.count > limit else { return (rows, nil) }
        let page = Array(rows.prefix(limit))
        return (page, page.last?.id)
    }

    /// How SQLite answers `query` (for the benchmark and tests: every filter should use an index).
    public func queryPlan(_ filter: HistoryFilter, before: Int64?, limit: Int) async throws -> String {
        let (condition, arguments) = filter.sql(before: before)
        return try await pool.read { db in
            try Row.fetchAll(
                db, sql: "EXPLAIN QUERY PLAN SELECT * FROM connections WHERE \(condition) ORDER BY id DESC LIMIT ?",
                arguments: arguments + [limit + 1]
            ).map { $0["detail"] as String? ?? "" }.joined(separator: "; ")
        }
    }

    /// Adds finished records and their events in one transaction: for importing history and
    /// for building large databases in benchmarks. netd itself writes through ``HistoryWriter``.
    public func insert(records: [ConnectionRecord], events: [EventRecord]) async throws {
        try await pool.write { db in
            for record in records { try record.insert(db) }
            for event in events { try event.insert(db) }
        }
    }

    /// A record's events, oldest first.
    public func events(of id: Int64) async throws -> [EventRecord] {
        try await pool.read { db in
            try EventRecord.fetchAll(db, sql: "SELECT * FROM events WHERE connection_id = ? ORDER BY id", arguments: [id])
        }
    }

    /// Deletes records closed before `closedBefore` (and their events), `batch` at a time, each
    /// batch its own short transaction, so that the history writer is never held up for long.
    ///
    /// - Returns: how many records were deleted.
    public func prune(closedBefore: String, ownerUID: UInt32? = nil, batch: Int = 2000) async throws -> Int {
        var owner = ""
        var arguments: StatementArguments = [closedBefore]
        if let ownerUID {
            owner = " AND owner_uid = ?"
            arguments += [Int64(ownerUID)]
        }
        arguments += [batch]
        let statementArguments = arguments
        let sql = """
            DELETE FROM connections WHERE id IN (
              SELECT id FROM connections WHERE closed_at IS NOT NULL AND closed_at < ?\(owner) LIMIT ?)
            """
        var deleted = 0
        while true {
            let count = try await pool.write { db -> Int in
                try db.execute(sql: sql, arguments: statementArguments)
                return db.changesCount
            }
            deleted += count
            if count < batch { break }
            await Task.yield()
        }
        return deleted
    }

    /// Summarises the records matching `filter`, grouped by `key`.
    public func stats(_ filter: HistoryFilter, by key: StatsKey) async throws -> [StatsRow] {
        let (condition, arguments) = filter.sql()
        let group = key.expression
        return try await pool.read { db in
            var rows: [StatsKeyValue: StatsRow] = [:]
            let totals = try Row.fetchCursor(
                db,
                sql: """
                    SELECT \(group) AS key, COUNT(*) AS n, TOTAL(closed_at IS NULL) AS open,
                           TOTAL(error_code IS NOT NULL) AS failed, TOTAL(bytes_read) AS bytesRead,
                           TOTAL(bytes_written) AS bytesWritten
                    FROM connections WHERE \(condition) GROUP BY 1
                    """,
                arguments: arguments)
            while let row = try totals.next() {
                let value = StatsKeyValue(row["key"] as DatabaseValue)
                var summary = StatsRow(key: value)
                summary.connections = row["n"]
                summary.open = Int(row["open"] as Double)
                summary.failed = Int(row["failed"] as Double)
                summary.bytesRead = Int64(row["bytesRead"] as Double)
                summary.bytesWritten = Int64(row["bytesWritten"] as Double)
                rows[value] = summary
            }
            let errors = try Row.fetchCursor(
                db,
                sql: """
                    SELECT \(group) AS key, error_code AS code, COUNT(*) AS n
                    FROM connections WHERE \(condition) AND error_code IS NOT NULL GROUP BY 1, 2
                    """,
                arguments: arguments)
            while let row = try errors.next() {
                let value = StatsKeyValue(row["key"] as DatabaseValue)
                rows[value]?.errors[row["code"]] = row["n"]
            }
            let durations = try Row.fetchCursor(
                db,
                sql: """
                    SELECT \(group) AS key, (julianday(closed_at) - julianday(opened_at)) * 86400000.0 AS ms
                    FROM connections WHERE \(condition) AND closed_at IS NOT NULL ORDER BY 2
                    """,
                arguments: arguments)
            while let row = try durations.next() {
                let value = StatsKeyValue(row["key"] as DatabaseValue)
                // Milliseconds as stored: julianday's floating point leaves crumbs below that.
                rows[value]?.durations.append((row["ms"] as Double).rounded())
            }
            return Array(rows.values)
        }
    }
}

extension HistoryStore {
    /// One record by id, or nil.
    public func record(id: Int64) async throws -> ConnectionRecord? {
        try await pool.read { db in try ConnectionRecord.fetchOne(db, key: id) }
    }
}
