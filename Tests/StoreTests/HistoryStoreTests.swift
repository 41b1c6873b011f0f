import Foundation
import GRDB
import Logging
import NetdProtocol
import Testing

@testable import NetdStore

/// The history database on real files: creation, schema, refusals, recovery.
@Suite struct HistoryStoreTests {
    let logger = Logger(label: "netd-test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A fresh folder under /tmp, removed afterwards.
    private func withFolder<T>(_ body: (String) throws -> T) throws -> T {
        let folder = "/tmp/netd-store-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        return try body(folder)
    }

    @Test func createsTheContractSchemaInWALMode() throws {
        try withFolder { folder in
            let path = folder + "/state/netd/history.sqlite3"
            let store = try HistoryStore(path: path, logger: logger)
            defer { try? store.close() }
            try store.pool.read { db in
                let connections = try Set(db.columns(in: "connections").map(\.name))
                let required: Set = [
                    "id", "role", "kind", "state", "label", "host", "local_address", "local_port", "local_path",
                    "remote_address", "remote_port", "remote_path", "server_id", "owner_uid", "owner_pid",
                    "opened_at", "closed_at", "bytes_read", "bytes_written", "error_code", "error_message",
                ]
                #expect(required.isSubset(of: connections))
                #expect(try Set(db.columns(in: "events").map(\.name)) == ["id", "connection_id", "at", "type", "detail"])
                #expect(try String.fetchOne(db, sql: "PRAGMA journal_mode") == "wal")
                #expect(try Int32.fetchOne(db, sql: "PRAGMA application_id") == Schema.applicationID)
            }
            #expect(try store.appliedMigrations() == ["v1-connections-and-events", "v2-history-indexes", "v3-pairs-forwards-persisted-listens"])
            var info = stat()
            #expect(stat(path, &info) == 0)
            #expect(info.st_mode & 0o777 == 0o600)
            #expect(stat(folder + "/state/netd", &info) == 0)
            #expect(info.st_mode & 0o777 == 0o700)
        }
    }

    @Test func reopensItsOwnDatabase() throws {
        try withFolder { folder in
            let path = folder + "/h.db"
            try HistoryStore(path: path, logger: logger).close()
            let again = try HistoryStore(path: path, logger: logger)
            #expect(try again.appliedMigrations() == ["v1-connections-and-events", "v2-history-indexes", "v3-pairs-forwards-persisted-listens"])
            try again.close()
        }
    }

    @Test func refusesAFileThatIsNotSQLiteAndLeavesItAlone() throws {
        try withFolder { folder in
            let path = folder + "/notes.txt"
            let content = Data("these are my notes, not a database\n".utf8)
            try content.write(to: URL(fileURLWithPath: path))
            #expect {
                try HistoryStore(path: path, logger: logger)
            } throws: { error in
                String(describing: error).contains("is not a SQLite database")
            }
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == content)
            #expect(!FileManager.default.fileExists(atPath: path + "-wal"))
        }
    }

    @Test func refusesAnotherProgramsDatabaseWithoutChangingIt() throws {
        try withFolder { folder in
            let path = folder + "/other.db"
            let other = try DatabaseQueue(path: path)
            try other.write { db in
                try db.execute(sql: "CREATE TABLE t(x); INSERT INTO t VALUES (1)")
            }
            try other.close()
            let before = try Data(contentsOf: URL(fileURLWithPath: path))
            #expect {
                try HistoryStore(path: path, logger: logger)
            } throws: { error in
                String(describing: error).contains("not netd's")
            }
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        }
    }

    @Test func refusesADatabaseFromANewerNetd() throws {
        try withFolder { folder in
            let path = folder + "/h.db"
            let store = try HistoryStore(path: path, logger: logger)
            try store.pool.write { db in
                try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')")
            }
            try store.close()
            #expect {
                try HistoryStore(path: path, logger: logger)
            } throws: { error in
                String(describing: error).contains("newer netd") && String(describing: error).contains("v99-from-the-future")
            }
        }
    }

    @Test func closesRecordsAPreviousRunLeftOpen() throws {
        try withFolder { folder in
            let path = folder + "/h.db"
            let store = try HistoryStore(path: path, logger: logger)
            try store.pool.write { db in
                try db.execute(sql: """
                    INSERT INTO connections (role, kind, state, owner_uid, opened_at, last_activity_at)
                    VALUES ('client', 'tcp', 'open', 1000, '2026-11-25T10:00:00.000Z', '2026-11-25T10:05:00.000Z');
                    INSERT INTO connections (role, kind, state, owner_uid, opened_at)
                    VALUES ('server', 'unix', 'listening', 1000, '2026-11-25T10:01:00.000Z');
                    INSERT INTO connections (role, kind, state, owner_uid, opened_at, closed_at)
                    VALUES ('client', 'tcp', 'closed', 1000, '2026-11-25T09:00:00.000Z', '2026-11-25T09:01:00.000Z');
                    """)
            }
            try store.close()

            let reopened = try HistoryStore(path: path, logger: logger)
            defer { try? reopened.close() }
            #expect(try reopened.closeLostRecords() == 2)
            try reopened.pool.read { db in
                let rows = try Row.fetchAll(db, sql: "SELECT id, state, closed_at, error_code FROM connections ORDER BY id")
                #expect(rows.map { $0["state"] as String } == ["closed", "closed", "closed"])
                #expect(rows.map { $0["closed_at"] as String } == ["2026-11-25T10:05:00.000Z", "2026-11-25T10:01:00.000Z", "2026-11-25T09:01:00.000Z"])
                #expect(rows.map { $0["error_code"] as String? } == ["ELOST", "ELOST", nil])
                let events = try Row.fetchAll(db, sql: "SELECT connection_id, type FROM events ORDER BY id")
                #expect(events.map { $0["connection_id"] as Int64 } == [1, 2])
                #expect(events.map { $0["type"] as String } == ["close", "close"])
            }
            #expect(try reopened.closeLostRecords() == 0)
        }
    }

    /// The writer folds the updates of a record inserted in the same batch into its insert; the
    /// row must be what the insert and the updates one by one would make, column for column.
    @Test func updatesFoldedIntoAnInsertGiveTheSameRow() async throws {
        let folder = "/tmp/netd-store-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try HistoryStore(path: folder + "/history.sqlite3", logger: logger)
        defer { try? store.close() }
        func record(_ id: Int64) -> ConnectionRecord {
            var record = ConnectionRecord(id: id, role: .client, kind: .tcp, state: .opening, ownerUID: 1000, ownerPID: 7, openedAt: "2026-11-25T10:00:00.000Z")
            record.host = "localhost"
            record.remotePort = 80
            return record
        }
        // Every kind of change, so that each one's folding is checked against its SQL.
        let updates: [RecordChange] = [
            .connected(local: .tcp("127.0.0.1", 5000), remote: Endpoint(address: "127.0.0.2", port: 81, path: "/r"), at: "2026-11-25T10:00:00.500Z"),
            .failed(code: "ECONNRESET", message: "read ECONNRESET"),
            .accepted(total: 3),
            .socketClosed(at: "2026-11-25T10:00:01.000Z", bytesRead: 10, bytesWritten: 20),
            .serverClosed(at: "2026-11-25T10:00:01.000Z", accepted: 4),
        ]
        // Record 1 in one batch (folded), record 2 inserted first and updated in later batches.
        let folded: [HistoryChange] = [.insert(record(1))] + updates.map { .update(id: 1, $0) }
        #expect(BatchedChange.fold(folded).count == 1)
        let oneByOne = [[HistoryWriter.Change.insert(record(2))]] + updates.map { [.update(id: 2, $0)] }
        for batch in [folded] + oneByOne {
            let writer = HistoryWriter(store: store, logger: logger, queueLimit: 200_000)
            let running = Task { await writer.run() }
            var last: UInt64 = 0
            for change in batch { last = writer.enqueue(change) }
            await writer.waitUntilCommitted(last)
            writer.stop()
            await running.value
        }
        let rows = try store.pool.read { db in try Row.fetchAll(db, sql: "SELECT * FROM connections ORDER BY id") }
        #expect(rows.count == 2)
        let columns = rows[0].columnNames.filter { $0 != "id" }
        for column in columns {
            #expect(rows[0][column] as DatabaseValue == rows[1][column] as DatabaseValue, "column \(column)")
        }
        #expect(rows[0]["closed_at"] as String? == "2026-11-25T10:00:01.000Z")
        #expect(rows[0]["accepted"] as Int? == 4)
        #expect(rows[0]["remote_path"] as String? == "/r")
        #expect(rows[0]["error_code"] as String? == "ECONNRESET")
        #expect(rows[0]["state"] as String? == "closed")
        #expect(rows[0]["bytes_written"] as Int? == 20)
    }

    @Test func idsNeverRepeatEvenAfterDeletion() throws {
        try withFolder { folder in
            let store = try HistoryStore(path: folder + "/h.db", logger: logger)
            // Closed below and again here: the second close does nothing.
            defer { try? store.close() }
            try store.pool.write { db in
                for _ in 0..<3 {
                    try db.execute(sql: "INSERT INTO connections (role, kind, state, owner_uid, opened_at) VALUES ('client', 'tcp', 'closed', 0, '2026-11-25T10:00:00.000Z')")
                }
                try db.execute(sql: "DELETE FROM connections")
            }
            try store.close()
            // Reopened, ids go on from the highest ever given.
            let reopened = try HistoryStore(path: folder + "/h.db", logger: logger)
            defer { try? reopened.close() }
            #expect(reopened.allocate().id == 4)
            #expect(reopened.allocate().id == 5)
        }
    }
}
