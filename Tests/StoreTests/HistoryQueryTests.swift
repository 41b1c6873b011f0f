import Foundation
import GRDB
import Logging
import NetdProtocol
import Testing

@testable import NetdStore

/// Queries, paging, summaries, pruning and migration on real database files.
@Suite struct HistoryQueryTests {
    let logger = Logger(label: "netd-test", factory: { _ in SwiftLogNoOpLogHandler() })

    private func withStore<T>(_ body: (HistoryStore, String) async throws -> T) async throws -> T {
        let folder = "/tmp/netd-store-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try HistoryStore(path: folder + "/h.db", logger: logger)
        do {
            let result = try await body(store, folder)
            try store.close()
            return result
        } catch {
            try? store.close()
            throw error
        }
    }

    /// 1,000 records over 1,000 seconds: ids and opening times rise together, as netd gives them.
    /// Every 10th is a server, every 7th a Unix socket, every 5th labelled, every 3rd still open.
    private func fill(_ store: HistoryStore, count: Int = 1000) throws {
        try store.pool.write { db in
            for index in 1...count {
                let role: Role = index % 10 == 0 ? .server : (index % 2 == 0 ? .accepted : .client)
                let kind: Kind = index % 7 == 0 ? .unix : .tcp
                let opened = time(index)
                var record = ConnectionRecord(
                    id: Int64(index), role: role, kind: kind, state: index % 3 == 0 ? .open : .closed,
                    ownerUID: index % 4 == 0 ? 1000 : 0, ownerPID: 1, openedAt: opened)
                record.label = index % 5 == 0 ? "batch" : nil
                if kind == .unix {
                    if role == .client { record.remotePath = "/run/app.sock" } else { record.localPath = "/run/app.sock" }
                } else if role == .server {
                    record.localAddress = "127.0.0.1"
                    record.localPort = 8000 + index % 2
                } else {
                    record.host = role == .client ? "localhost" : nil
                    record.remoteAddress = "127.0.0.1"
                    record.remotePort = 6379 + index % 3
                }
                if index % 3 != 0 {
                    record.closedAt = time(index + index % 11)
                    record.errorCode = index % 13 == 0 ? "ECONNREFUSED" : nil
                }
                record.bytesRead = Int64(index)
                record.bytesWritten = Int64(2 * index)
                try record.insert(db)
                try EventRecord(connectionID: Int64(index), at: opened, type: "connect", detail: nil).insert(db)
            }
        }
    }

    @Test func pagesNeverRepeatOrSkipARow() async throws {
        try await withStore { store, _ in
            try fill(store)
            var seen: [Int64] = []
            var before: Int64?
            for _ in 0..<200 {
                let page = try await store.query(HistoryFilter(label: "batch"), before: before, limit: 7)
                seen += page.records.map(\.id)
                guard let next = page.next else { break }
                before = next
            }
            #expect(seen == Array(stride(from: 1000, through: 5, by: -5)))
        }
    }

    @Test(arguments: FilterCase.all)
    func everyFilterFindsExactlyItsRowsFromAnIndex(_ test: FilterCase) async throws {
        let (name, filter) = (test.name, test.filter)
        try await withStore { store, _ in
            try fill(store)
            let expected = (1...1000).reversed().filter(test.matches).map(Int64.init)
            let found = try await store.query(filter, before: nil, limit: 10_000).records.map(\.id)
            #expect(found == expected, "\(name)")
            // Newest first straight from an index: no sorting step, whatever the table's size.
            let plan = try await store.queryPlan(filter, before: 900, limit: 100)
            #expect(!plan.contains("TEMP B-TREE"), "\(name): \(plan)")
        }
    }

    @Test func summarisesByRemoteWithErrorsAndDurations() async throws {
        try await withStore { store, _ in
            try fill(store)
            let rows = try await store.stats(HistoryFilter(role: .client, kind: .tcp), by: .remote)
            let byKey = Dictionary(uniqueKeysWithValues: rows.map { ($0.key, $0) })
            let clients = (1...1000).filter { $0 % 2 == 1 && $0 % 7 != 0 && $0 % 10 != 0 }
            for port in 6379...6381 {
                let mine = clients.filter { 6379 + $0 % 3 == port }
                let row = try #require(byKey[.text("localhost:\(port)")])
                #expect(row.connections == mine.count)
                #expect(row.open == mine.filter { $0 % 3 == 0 }.count)
                #expect(row.failed == mine.filter { $0 % 3 != 0 && $0 % 13 == 0 }.count)
                #expect((row.errors["ECONNREFUSED"] ?? 0) == row.failed)
                #expect(row.bytesRead == Int64(mine.reduce(0, +)))
                let durations = mine.filter { $0 % 3 != 0 }.map { Double(($0 % 11) * 1000) }.sorted()
                #expect(row.durations == durations)
            }
            #expect(rows.count == 3)
        }
    }

    @Test func prunesClosedRecordsInBatchesWithTheirEvents() async throws {
        try await withStore { store, _ in
            try fill(store)
            let cutoff = time(600)
            let expected = (1...1000).filter { $0 % 3 != 0 && $0 + $0 % 11 < 600 }.count
            let theirs = (1...1000).filter { $0 % 3 != 0 && $0 + $0 % 11 < 600 && $0 % 4 == 0 }.count
            #expect(try await store.prune(closedBefore: cutoff, ownerUID: 1000, batch: 10) == theirs)
            #expect(try await store.prune(closedBefore: cutoff, batch: 10) == expected - theirs)
            let counts = try await store.pool.read { db -> [Int] in
                try [
                    "SELECT COUNT(*) FROM connections WHERE closed_at < '\(cutoff)'",
                    "SELECT COUNT(*) FROM connections",
                    "SELECT COUNT(*) FROM events WHERE connection_id NOT IN (SELECT id FROM connections)",
                    "SELECT COUNT(*) FROM events",
                ].map { try Int.fetchOne(db, sql: $0) ?? -1 }
            }
            // Nothing closed before the cutoff is left, and the events went with their records.
            #expect(counts == [0, 1000 - expected, 0, 1000 - expected])
            // Open records are never pruned, however old.
            #expect(try await store.prune(closedBefore: time(100_000)) == (1...1000).filter { $0 % 3 != 0 }.count - expected)
            #expect(try await store.query(HistoryFilter(), before: nil, limit: 10_000).records.allSatisfy { $0.closedAt == nil })
        }
    }

    @Test func upgradesADatabaseMadeByTheFirstSchema() async throws {
        let folder = "/tmp/netd-store-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/v1.db"
        // A database exactly as the first version of netd left it.
        let old = try DatabasePool(path: path)
        try Schema.migrator.migrate(old, upTo: "v1-connections-and-events")
        try await old.write { db in
            try db.execute(sql: """
                INSERT INTO connections (role, kind, state, host, remote_address, remote_port, owner_uid, opened_at, closed_at, bytes_read, label)
                VALUES ('client', 'tcp', 'closed', 'localhost', '127.0.0.1', 6379, 1000, '2026-11-20T10:00:00.000Z', '2026-11-20T10:00:05.000Z', 42, 'old');
                INSERT INTO events (connection_id, at, type, detail) VALUES (1, '2026-11-20T10:00:00.000Z', 'connect', NULL);
                """)
        }
        try old.close()

        let store = try HistoryStore(path: path, logger: logger)
        defer { try? store.close() }
        #expect(try store.appliedMigrations() == ["v1-connections-and-events", "v2-history-indexes", "v3-pairs-forwards-persisted-listens"])
        let rows = try await store.query(HistoryFilter(label: "old"), before: nil, limit: 10)
        #expect(rows.records.map(\.bytesRead) == [42])
        #expect(try await store.events(of: 1).map(\.type) == ["connect"])
        let indexes = try await store.pool.read { db in
            try String.fetchSet(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'connections'")
        }
        #expect(indexes.isSuperset(of: ["connections_label", "connections_host", "connections_port", "connections_path", "connections_owner"]))
        #expect(store.allocate().id == 2)
    }
}

/// The database's text for 2026-11-25T00:00:00Z plus `seconds`.
private func time(_ seconds: Int) -> String {
    Timestamp.format(Date(timeIntervalSince1970: 1_795_564_800 + Double(seconds)))
}

/// A filter, and which of `fill`'s records (by index) it must find.
struct FilterCase: Sendable, CustomTestStringConvertible {
    let name: String
    let filter: HistoryFilter
    let matches: @Sendable (Int) -> Bool

    init(_ name: String, _ filter: HistoryFilter, _ matches: @escaping @Sendable (Int) -> Bool) {
        self.name = name
        self.filter = filter
        self.matches = matches
    }

    var testDescription: String { name }

    static let all: [FilterCase] = [
        FilterCase("role", HistoryFilter(role: .server)) { i in i % 10 == 0 },
        FilterCase("kind", HistoryFilter(kind: .unix)) { i in i % 7 == 0 },
        FilterCase("open", HistoryFilter(state: .open)) { i in i % 3 == 0 },
        FilterCase("closed", HistoryFilter(state: .closed)) { i in i % 3 != 0 },
        FilterCase("label", HistoryFilter(label: "batch")) { i in i % 5 == 0 },
        FilterCase("owner", HistoryFilter(ownerUID: 1000)) { i in i % 4 == 0 },
        FilterCase("host", HistoryFilter(host: "localhost")) { i in i % 10 != 0 && i % 7 != 0 && i % 2 == 1 },
        FilterCase("peer address", HistoryFilter(host: "127.0.0.1")) { i in i % 10 != 0 && i % 7 != 0 && i % 2 == 0 },
        FilterCase("port", HistoryFilter(port: 6380)) { i in i % 10 != 0 && i % 7 != 0 && i % 3 == 1 },
        FilterCase("server port", HistoryFilter(port: 8001)) { i in i % 10 == 0 && i % 7 != 0 && i % 2 == 1 },
        FilterCase("path", HistoryFilter(path: "/run/app.sock")) { i in i % 7 == 0 },
        FilterCase("window", HistoryFilter(since: time(100), until: time(200))) { i in (100..<200).contains(i) },
        FilterCase("since", HistoryFilter(since: time(990))) { i in i >= 990 },
        FilterCase("until", HistoryFilter(until: time(3))) { i in i < 3 },
        FilterCase("nothing", HistoryFilter(since: time(5000))) { _ in false },
        FilterCase("combined", HistoryFilter(ownerUID: 0, since: time(500), role: .client, label: "batch")) { i in i >= 500 && i % 4 != 0 && i % 2 == 1 && i % 5 == 0 && i % 10 != 0 },
    ]
}
