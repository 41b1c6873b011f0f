import Foundation
import NetdProtocol
import NetdStore

/// `history.*`: the ledger of every socket and server, from the database. A caller sees only
/// their own records; an admin sees everyone's.
struct HistoryMethods: Sendable {
    let manager: ConnectionManager
    let store: HistoryStore

    func register(in table: inout MethodTable) {
        let manager = self.manager
        let store = self.store
        table.on(HistoryQueryMethod.self) { params, context in
            let filter = Self.filter(params, for: context)
            let page: (records: [ConnectionRecord], next: Int64?)
            do {
                page = try await store.query(filter, before: params.before, limit: params.limit ?? 100)
            } catch {
                throw NetdError.historyUnavailable("\(error)")
            }
            var items: [HistoryRecord] = []
            items.reserveCapacity(page.records.count)
            for record in page.records {
                // What netd still holds is reported as it is now.
                items.append(await manager.heldRecord(record.id)?.record ?? HistoryRecord(record))
            }
            return HistoryQueryMethod.Result(items: items, next: page.next)
        }
        table.on(HistoryGetMethod.self) { params, context in
            let record = try await manager.historyRecord(params.id, for: context)
            let events: [EventRecord]
            do {
                events = try await store.events(of: params.id)
            } catch {
                throw NetdError.historyUnavailable("\(error)")
            }
            let decoder = JSONDecoder()
            return HistoryGetMethod.Result(
                record: record,
                events: events.map { event in
                    HistoryEvent(at: event.at, type: event.type, detail: event.detail.flatMap { try? decoder.decode(JSONValue.self, from: Data($0.utf8)) })
                })
        }
        table.on(HistoryPruneMethod.self) { params, context in
            let before = Self.normalized(params.before) ?? params.before
            do {
                let owner = context.isAdmin ? nil : context.peer.uid
                let deleted = try await store.prune(closedBefore: before, ownerUID: owner)
                await manager.registry.forgetPruned(closedBefore: before, ownerUID: owner)
                if deleted > 0 {
                    context.logger.info("pruned history", metadata: ["history.deleted": "\(deleted)", "history.before": "\(before)"])
                }
                return HistoryPruneMethod.Result(deleted: deleted)
            } catch {
                throw NetdError.historyUnavailable("cannot prune: \(error)")
            }
        }
        table.on(HistoryStatsMethod.self) { params, context in
            try await Self.stats(params, store: store, context: context)
        }
    }

    /// An ISO 8601 time in the database's own format (UTC, milliseconds), so it compares as text.
    static func normalized(_ text: String?) -> String? {
        text.flatMap(Timestamp.parse).map(Timestamp.format)
    }

    private static func filter(_ params: HistoryQueryMethod.Params, for context: RequestContext) -> HistoryFilter {
        HistoryFilter(
            ownerUID: context.isAdmin ? nil : context.peer.uid, since: normalized(params.since), until: normalized(params.until),
            role: params.role, kind: params.kind, state: params.state, host: params.host,
            port: params.port, path: params.path, server: params.server, label: params.label)
    }

    private static func stats(_ params: HistoryStatsMethod.Params, store: HistoryStore, context: RequestContext) async throws -> HistoryStatsMethod.Result {
        let now = Date()
        let until = normalized(params.until) ?? Timestamp.format(now)
        let since = normalized(params.since) ?? Timestamp.format(now.addingTimeInterval(-86_400))
        let grouping = params.groupBy ?? .remote
        let filter = HistoryFilter(
            ownerUID: context.isAdmin ? nil : context.peer.uid, since: since, until: until, role: params.role,
            kind: params.kind, host: params.host, port: params.port, path: params.path, server: params.server,
            label: params.label)
        let rows: [StatsRow]
        do {
            rows = try await store.stats(filter, by: StatsKey(rawValue: grouping.rawValue) ?? .remote)
        } catch {
            throw NetdError.historyUnavailable("\(error)")
        }
        let busiest = rows.sorted {
            ($0.connections, $0.bytesRead + $0.bytesWritten) > ($1.connections, $1.bytesRead + $1.bytesWritten)
        }
        let groups = busiest.prefix(params.limit ?? 100).map { row in
            StatsGroup(key: JSONValue(row.key), summary: summary(of: [row]))
        }
        return HistoryStatsMethod.Result(
            since: since, until: until, groupBy: grouping, groups: Array(groups), total: summary(of: rows))
    }

    private static func summary(of rows: [StatsRow]) -> StatsSummary {
        var errors: [String: Int] = [:]
        for row in rows { errors.merge(row.errors, uniquingKeysWith: +) }
        let durations = rows.count == 1 ? rows[0].durations : rows.flatMap(\.durations).sorted()
        return StatsSummary(
            connections: rows.reduce(0) { $0 + $1.connections }, open: rows.reduce(0) { $0 + $1.open },
            failed: rows.reduce(0) { $0 + $1.failed }, errors: errors,
            bytesRead: rows.reduce(0) { $0 + $1.bytesRead }, bytesWritten: rows.reduce(0) { $0 + $1.bytesWritten },
            durationMs: .init(sorted: durations))
    }
}

extension JSONValue {
    /// A group key from the database: text, an integer, or null.
    init(_ value: StatsKeyValue) {
        switch value {
        case .text(let text): self = .string(text)
        case .integer(let number): self = .integer(number)
        case .none: self = .null
        }
    }
}
