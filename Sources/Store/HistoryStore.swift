import Foundation
import GRDB
import Logging
import NetdProtocol
import Synchronization
import NetdLocks

/// The history database: one file, opened once, written by one writer (GRDB's pool serialises
/// every write on a single connection) and readable by other programs while netd runs (WAL).
public final class HistoryStore: Sendable {
    /// Why the database could not be opened; `description` is the one line netd prints before exiting.
    public struct OpenError: Error, CustomStringConvertible {
        public var description: String
    }

    public let path: String
    let pool: DatabasePool
    private let logger: Logger
    /// The next id and the latest opening time given out, together (see ``allocate()``).
    private let allocation: Locked<(next: Int64, latest: Date)>
    private let closed = Atomic<Bool>(false)

    /// Opens the database at `path`, creating it with the current schema when missing and
    /// migrating it in place when older.
    ///
    /// - Throws: ``OpenError`` when the file is not a SQLite database, belongs to another program,
    ///   was written by a newer netd, or cannot be opened. The file is never modified in that case.
    public init(path: String, logger: Logger) throws(OpenError) {
        self.path = path
        self.logger = logger
        try Self.createParentDirectory(of: path)
        try Self.inspectExisting(path)
        try Self.createPrivateFile(path)
        do {
            var configuration = Configuration()
            configuration.label = "netd.history"
            configuration.busyMode = .timeout(1)
            configuration.prepareDatabase { db in
                // WAL with NORMAL sync: commits never wait for fsync; a crash loses at most the
                // last moments of history, never the file's integrity.
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
            }
            let pool = try DatabasePool(path: path, configuration: configuration)
            try Schema.migrator.migrate(pool)
            let (highest, latest) = try Self.allocationStart(pool)
            self.pool = pool
            allocation = Locked((highest + 1, latest))
        } catch {
            throw OpenError(description: "cannot open the history database \(path): \(Self.reason(error))")
        }
    }

    /// Closes the database; later calls on this store fail, and closing again does nothing.
    ///
    /// Readers are closed first so that the writer is the last connection: only it may checkpoint
    /// and remove the -wal file, leaving one self-contained file behind.
    public func close() throws {
        // A closed pool must not be touched again (SQLite would read freed memory).
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        _ = try? pool.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        pool.releaseMemory()
        try pool.close()
    }

    /// Closes the records a previous run left open: `error_code` `ELOST`, closed at their last
    /// recorded activity or event, whichever is later.
    ///
    /// - Returns: how many records were closed.
    @discardableResult
    public func closeLostRecords(at now: Date = Date()) throws -> Int {
        let lost = try pool.write { db -> Int in
            let ids = try Int64.fetchAll(db, sql: "SELECT id FROM connections WHERE closed_at IS NULL")
            guard !ids.isEmpty else { return 0 }
            try db.execute(sql: """
                UPDATE connections
                SET state = 'closed',
                    closed_at = MAX(
                        COALESCE(last_activity_at, opened_at),
                        COALESCE((SELECT MAX(at) FROM events WHERE connection_id = connections.id), opened_at)),
                    error_code = 'ELOST',
                    error_message = 'netd stopped before this connection was closed'
                WHERE closed_at IS NULL
                """)
            try db.execute(sql: """
                INSERT INTO events (connection_id, at, type, detail)
                SELECT id, closed_at, 'close', '{"hadError":true,"code":"ELOST"}'
                FROM connections WHERE id IN (\(ids.map(String.init).joined(separator: ",")))
                """)
            return ids.count
        }
        if lost > 0 {
            logger.info("closed records a previous run left open", metadata: ["history.lost": "\(lost)"])
        }
        return lost
    }

    /// A new record's id and opening time, given together so that opening times never decrease
    /// as ids rise (history turns a time window into an id range). Ids continue from the highest
    /// ever given, deleted records included, so they never repeat. Should the clock step back,
    /// new records keep the latest time given until it catches up.
    public func allocate() -> (id: Int64, openedAt: String) {
        let (id, date) = allocation.withLock { allocation in
            let date = max(Date(), allocation.latest)
            allocation.latest = date
            defer { allocation.next += 1 }
            return (allocation.next, date)
        }
        return (id, Timestamp.format(date))
    }

    /// Continues ids after `id`, given by another process on this database (the netd this one
    /// replaces): ids never repeat, whichever process gave them.
    public func continueAllocation(after id: Int64) {
        allocation.withLock { $0.next = max($0.next, id + 1) }
    }

    /// The next id ``allocate()`` would give.
    public var nextID: Int64 { allocation.withLock { $0.next } }

    /// The highest id ever given to a record (deleted ones included) and the latest opening time.
    private static func allocationStart(_ pool: DatabasePool) throws -> (Int64, Date) {
        try pool.read { db in
            let sequence = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'connections'") ?? 0
            let maximum = try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM connections") ?? 0
            let latest = try String.fetchOne(db, sql: "SELECT MAX(opened_at) FROM connections").flatMap(Timestamp.parse)
            return (max(sequence, maximum), latest ?? .distantPast)
        }
    }

    /// The schema migrations applied to this database, oldest first.
    public func appliedMigrations() throws -> [String] {
        try pool.read { db in try Schema.migrator.appliedIdentifiers(db).sorted() }
    }

    // MARK: - Opening safely

    private static func createParentDirectory(of path: String) throws(OpenError) {
        let parent = (path as NSString).deletingLastPathComponent
        guard !parent.isEmpty, !FileManager.default.fileExists(atPath: parent) else { return }
        do {
            try FileManager.default.createDirectory(
                atPath: parent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw OpenError(description: "cannot create the folder for the history database \(parent): \(reason(error))")
        }
    }

    /// History says who talked to whom: the file (and so SQLite's -wal and -shm, which copy its
    /// mode) is created readable by its owner only.
    private static func createPrivateFile(_ path: String) throws(OpenError) {
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        if fd >= 0 {
            _ = Glibc.close(fd)
        } else if errno != EEXIST {
            throw OpenError(description: "cannot create the history database \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Looks at an existing file read-only, so that a file which is not ours is never written to.
    private static func inspectExisting(_ path: String) throws(OpenError) {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw OpenError(description: "the history database path \(path) exists and is not a regular file")
        }
        guard info.st_size > 0 else { return }
        var configuration = Configuration()
        configuration.readonly = true
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            try queue.read { db in
                let applicationID = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
                let objects = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master") ?? 0
                if applicationID != Schema.applicationID {
                    if objects > 0 {
                        throw OpenError(description: """
                            \(path) is a SQLite database but not netd's (application_id \(applicationID)); \
                            refusing to touch it: pass --db with another path
                            """)
                    }
                    return
                }
                let known = Set(Schema.migrator.migrations)
                let applied = try Schema.migrator.appliedIdentifiers(db)
                let unknown = applied.subtracting(known)
                if !unknown.isEmpty {
                    throw OpenError(description: """
                        \(path) was written by a newer netd (schema \(unknown.sorted().joined(separator: ", "))); \
                        refusing to open it with this one
                        """)
                }
            }
        } catch let error as OpenError {
            throw error
        } catch let error as DatabaseError where error.resultCode == .SQLITE_NOTADB {
            throw OpenError(description: "\(path) is not a SQLite database; refusing to touch it: pass --db with another path")
        } catch {
            throw OpenError(description: "cannot open the history database \(path): \(reason(error))")
        }
    }

    private static func reason(_ error: any Error) -> String {
        if let error = error as? DatabaseError {
            return error.message ?? error.resultCode.description
        }
        return String(describing: error)
    }
}
