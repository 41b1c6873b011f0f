import Foundation
import Logging
import NetdClient
import NetdProtocol
import NetdStore

/// history-query: `history.query` through netd on a database of `records` records spread over
/// 30 days (with two events each), for the common filters; p50 and p99 of each.
enum HistoryQueryScenario {
    static func run(records: Int, queriesPerFilter: Int) async throws -> [Measurement] {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let database = folder.path + "/history.sqlite3"
        let (_, built) = try await timed { try await fill(database, records: records) }
        let size = (try? FileManager.default.attributesOfItem(atPath: database)[.size] as? Int) ?? 0
        FileHandle.standardError.write(Data("history-query: \(records) records written in \(String(format: "%.1f", built)) s, \(size / 1_048_576) MiB\n".utf8))

        let (netd, socket) = try await startNetd(in: folder, database: database)
        defer { netd.stop() }
        let client = try await NetdClient.connect(socketPath: socket)
        defer { Task { await client.close() } }

        let now = Date()
        func ago(_ seconds: Double) -> String { Timestamp.format(now.addingTimeInterval(-seconds)) }
        let filters: [(String, HistoryQueryMethod.Params)] = [
            ("newest 100", .init()),
            ("label", .init(label: "job-7")),
            ("host", .init(host: "localhost")),
            ("port", .init(port: 6379)),
            ("path", .init(path: "/run/app-3.sock")),
            ("role server", .init(role: .server)),
            ("kind unix", .init(kind: .unix)),
            ("since 1h", .init(since: ago(3600))),
            ("1h a week ago", .init(since: ago(7 * 86_400), until: ago(7 * 86_400 - 3600))),
            ("label since 24h", .init(since: ago(86_400), label: "job-3")),
            ("error page deep", .init(state: .closed, before: Int64(records / 2))),
        ]
        var results: [Measurement] = []
        for (name, params) in filters {
            var items = 0
            var samples: [Double] = []
            _ = try await client.call(HistoryQueryMethod.self, params)
            for _ in 0..<queriesPerFilter {
                let (page, seconds) = try await timed { try await client.call(HistoryQueryMethod.self, params) }
                items = page.items.count
                samples.append(seconds * 1e6)
            }
            let latencies = Latencies(microseconds: samples)
            results.append(Measurement(
                scenario: "history-query", name: name,
                figures: ["p50Ms": latencies.p50 / 1000, "p99Ms": latencies.p99 / 1000, "items": Double(items), "records": Double(records)]))
        }
        var samples: [Double] = []
        for _ in 0..<max(3, queriesPerFilter / 20) {
            let (_, seconds) = try await timed { try await client.call(HistoryStatsMethod.self, .init(since: ago(86_400))) }
            samples.append(seconds * 1e6)
        }
        let stats = Latencies(microseconds: samples)
        results.append(Measurement(
            scenario: "history-query", name: "stats 24h (extension)",
            figures: ["p50Ms": stats.p50 / 1000, "p99Ms": stats.p99 / 1000, "records": Double(records)]))
        return results
    }

    /// Writes `records` finished records over the last 30 days, ids and opening times rising together.
    static func fill(_ path: String, records: Int) async throws {
        let store = try HistoryStore(path: path, logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }))
        defer { try? store.close() }
        let span = 30.0 * 86_400
        let start = Date().addingTimeInterval(-span)
        let step = span / Double(records)
        let uid = getuid()
        var generator = SystemRandomNumberGenerator()
        var batch: [ConnectionRecord] = []
        var events: [EventRecord] = []
        for index in 1...records {
            let opened = start.addingTimeInterval(Double(index) * step)
            let roll = Int.random(in: 0..<100, using: &generator)
            let role: Role = roll < 70 ? .client : roll < 95 ? .accepted : .server
            let unix = Int.random(in: 0..<5, using: &generator) == 0
            let openedAt = Timestamp.format(opened)
            var record = ConnectionRecord(
                id: Int64(index), role: role, kind: unix ? .unix : .tcp, state: .closed, ownerUID: uid,
                ownerPID: Int32.random(in: 100...60_000, using: &generator), openedAt: openedAt)
            if Int.random(in: 0..<2, using: &generator) == 0 { record.label = "job-\(Int.random(in: 0..<20, using: &generator))" }
            let port = [6379, 5432, 8080, 443, 9000][Int.random(in: 0..<5, using: &generator)]
            switch (role, unix) {
            case (.server, true): record.localPath = "/run/app-\(index % 10).sock"
            case (.server, false): (record.localAddress, record.localPort) = ("127.0.0.1", port)
            case (.client, true): record.remotePath = "/run/app-\(index % 10).sock"
            case (.client, false):
                record.host = Int.random(in: 0..<3, using: &generator) == 0 ? "127.0.0.1" : "localhost"
                (record.remoteAddress, record.remotePort) = ("127.0.0.1", port)
                (record.localAddress, record.localPort) = ("127.0.0.1", Int.random(in: 32768...60999, using: &generator))
            case (_, true): record.localPath = "/run/app-\(index % 10).sock"
            default:
                (record.localAddress, record.localPort) = ("127.0.0.1", port)
                (record.remoteAddress, record.remotePort) = ("127.0.0.\(index % 200 + 1)", Int.random(in: 32768...60999, using: &generator))
            }
            // All closed (netd would close what it does not hold as ELOST); 3% failed.
            do {
                let closed = opened.addingTimeInterval(Double.random(in: 0.001...(step * 50), using: &generator))
                record.closedAt = Timestamp.format(closed)
                record.lastActivityAt = record.closedAt
                record.bytesRead = Int64.random(in: 0...100_000, using: &generator)
                record.bytesWritten = Int64.random(in: 0...100_000, using: &generator)
                if Int.random(in: 0..<100, using: &generator) < 3 {
                    record.errorCode = ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT"][Int.random(in: 0..<3, using: &generator)]
                    record.errorMessage = "connect \(record.errorCode ?? "")"
                }
                events.append(EventRecord(connectionID: Int64(index), at: record.closedAt ?? openedAt, type: "close", detail: #"{"hadError":\#(record.errorCode != nil)}"#))
            }
            events.append(EventRecord(connectionID: Int64(index), at: openedAt, type: role == .server ? "listening" : "connect", detail: nil))
            batch.append(record)
            if batch.count == 50_000 || index == records {
                try await store.insert(records: batch, events: events)
                batch.removeAll(keepingCapacity: true)
                events.removeAll(keepingCapacity: true)
            }
        }
    }
}
