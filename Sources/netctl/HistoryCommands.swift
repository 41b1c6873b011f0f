import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import NetdProtocol

/// A time as netctl's history flags take it: a duration back from now (`1h`, `30m`, `7d`) or an
/// ISO 8601 time; netd receives ISO 8601.
struct TimeArgument: ExpressibleByArgument {
    var iso: String

    init?(argument: String) {
        if let milliseconds = DurationText.milliseconds(argument) {
            iso = Timestamp.format(Date().addingTimeInterval(-Double(milliseconds) / 1000))
        } else if Timestamp.parse(argument) != nil {
            iso = argument
        } else {
            return nil
        }
    }

    static var defaultCompletionKind: CompletionKind { .default }
}

extension Role: ExpressibleByArgument {}
extension Kind: ExpressibleByArgument {}
extension HistoryState: ExpressibleByArgument {}
extension StatsGrouping: ExpressibleByArgument {}

/// The filters `netctl history` and `netctl stats` share, one flag each.
struct HistoryFilterOptions: ParsableArguments {
    @Option(help: "client, accepted or server.") var role: Role?
    @Option(help: "tcp or unix.") var kind: Kind?
    @Option(help: "The host name asked for (or an accepted socket's peer address).") var host: String?
    @Option(help: "Remote port of sockets, local port of servers.") var port: Int?
    @Option(help: "Unix socket path.") var path: String?
    @Option(help: "Sockets accepted by this server.") var server: Int64?
    @Option(help: "Only this label.") var label: String?
}

struct History: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Show past and present connections from netd's history, newest first; with an ID, one record and its events.",
        discussion: """
            Times: a duration back from now (30s, 15m, 1h, 7d) or ISO 8601 (2026-11-25T10:00:00Z).

            Examples:
              netctl history --since 1h --state closed
              netctl history --host db.internal --port 5432
              netctl history 17                     # one record and its events
            """)

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "Show this record and its events.") var id: Int64?
    @Option(help: "Opened at or after this time.") var since: TimeArgument?
    @Option(help: "Opened before this time.") var until: TimeArgument?
    @Option(help: "open or closed.") var state: HistoryState?
    @OptionGroup var filters: HistoryFilterOptions
    @Option(help: "At most this many records.") var limit: Int = 50
    @Option(help: "Continue below this id (the `next` of a previous page).") var before: Int64?

    func run() throws {
        if let id {
            let result = try globals.withClient { try $0.call(HistoryGetMethod.self, .init(id: id)) }
            try globals.print(result) { Self.describe($0) }
            return
        }
        let params = HistoryQueryMethod.Params(
            since: since?.iso, until: until?.iso, role: filters.role, kind: filters.kind, state: state, host: filters.host,
            port: filters.port, path: filters.path.map(Target.absolute), server: filters.server, label: filters.label, limit: limit, before: before)
        let page = try globals.withClient { try $0.call(HistoryQueryMethod.self, params) }
        try globals.print(page) { page in
            var rows = [["ID", "OPENED (UTC)", "DURATION", "KIND", "ROLE", "REMOTE", "IN", "OUT", "END", "LABEL"]]
            for item in page.items { rows.append(Self.row(item)) }
            var text = page.items.isEmpty ? "no records" : table(rows)
            if let next = page.next { text += "\nmore: netctl history --before \(next) (with the same filters)" }
            return text
        }
    }

    static func row(_ item: HistoryRecord) -> [String] {
        switch item {
        case .socket(let socket):
            // The name asked for, with its port, tells more than the address it resolved to.
            let asked = socket.host.flatMap { host in
                socket.remote?.port.map { host.contains(":") ? "[\(host)]:\($0)" : "\(host):\($0)" }
            }
            let remote = asked ?? netctl.describe(socket.remote)
            return [
                String(socket.id), when(socket.openedAt), duration(socket.openedAt, socket.closedAt), socket.kind.rawValue,
                socket.role.rawValue, remote, bytes(socket.bytesRead), bytes(socket.bytesWritten),
                end(socket.closedAt, socket.error), socket.label ?? "",
            ]
        case .server(let server):
            return [
                String(server.id), when(server.openedAt), duration(server.openedAt, server.closedAt), server.kind.rawValue,
                "server", "listen \(netctl.describe(server.local))", "\(server.accepted) acc", "-",
                end(server.closedAt, server.error), server.label ?? "",
            ]
        }
    }

    static func describe(_ result: HistoryGetMethod.Result) -> String {
        let row = Self.row(result.record)
        var lines = [
            "\(row[4]) \(row[0]) (\(row[3])) \(row[5])",
            "opened \(when(result.record.openedAt))" + (result.record.closedAt.map { ", closed \(when($0)) after \(row[2])" } ?? ", still open"),
        ]
        if case .socket(let socket) = result.record {
            lines.append("bytes  \(bytes(socket.bytesRead)) in, \(bytes(socket.bytesWritten)) out")
            lines.append("owner  uid \(socket.owner.uid) pid \(socket.owner.pid)")
        }
        if let error = result.record.error { lines.append("error  \(error.code): \(error.message)") }
        lines.append("events:")
        for event in result.events {
            let detail = event.detail.flatMap { try? String(decoding: JSONCoding.encode($0), as: UTF8.self) } ?? ""
            lines.append("  \(event.at)  \(event.type)  \(detail)")
        }
        return lines.joined(separator: "\n")
    }

    static func end(_ closedAt: String?, _ error: SocketFailure?) -> String {
        guard closedAt != nil else { return "open" }
        return error?.code ?? "ok"
    }
}

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "What netd's connections talked to over a time window, and what failed (history.stats).",
        discussion: """
            Times: a duration back from now (30s, 15m, 1h, 7d) or ISO 8601.

            Examples:
              netctl stats --since 1h
              netctl stats --by label --since 7d
            """)

    @OptionGroup var globals: GlobalOptions
    @Option(help: "Opened at or after this time (default: 24h).") var since: TimeArgument?
    @Option(help: "Opened before this time (default: now).") var until: TimeArgument?
    @Option(help: "Group by remote, kind, role, label or server.") var by: StatsGrouping = .remote
    @OptionGroup var filters: HistoryFilterOptions
    @Option(help: "At most this many groups, busiest first.") var limit: Int = 20

    func run() throws {
        let params = HistoryStatsMethod.Params(
            since: since?.iso, until: until?.iso, groupBy: by, role: filters.role, kind: filters.kind, host: filters.host,
            port: filters.port, path: filters.path.map(Target.absolute), server: filters.server, label: filters.label, limit: limit)
        let result = try globals.withClient { try $0.call(HistoryStatsMethod.self, params) }
        try globals.print(result) { result in
            var rows = [[by.rawValue.uppercased(), "CONN", "OPEN", "FAILED", "IN", "OUT", "P50", "P99", "ERRORS"]]
            func row(_ key: String, _ summary: StatsSummary) -> [String] {
                let errors = summary.errors.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.key) \($0.value)" }
                return [
                    key, String(summary.connections), String(summary.open), String(summary.failed),
                    bytes(summary.bytesRead), bytes(summary.bytesWritten), milliseconds(summary.durationMs.p50),
                    milliseconds(summary.durationMs.p99), errors.joined(separator: ", "),
                ]
            }
            for group in result.groups {
                let key: String =
                    switch group.key {
                    case .string(let text): text
                    case .integer(let number): String(number)
                    default: "(none)"
                    }
                rows.append(row(key, group.summary))
            }
            rows.append(row("total", result.total))
            return "from \(result.since) to \(result.until)\n" + table(rows)
        }
    }
}

/// `2026-11-25T10:00:00.123Z` as `2026-11-25 10:00:00`.
func shortTime(_ iso: String) -> String {
    String(iso.prefix(19).map { $0 == "T" ? " " : $0 })
}

/// How long between two ISO times, briefly: `850ms`, `4.2s`, `3m05s`, `2h10m`, `3d4h`; `-` while open.
func duration(_ opened: String, _ closed: String?) -> String {
    guard let closed, let start = Timestamp.parse(opened), let end = Timestamp.parse(closed) else { return "-" }
    return milliseconds(end.timeIntervalSince(start) * 1000)
}

func milliseconds(_ value: Double?) -> String {
    guard let value else { return "-" }
    let ms = Int(value.rounded())
    switch ms {
    case ..<1000: return "\(ms)ms"
    case ..<60_000: return oneDecimal(Double(ms) / 1000) + "s"
    case ..<3_600_000: return "\(ms / 60_000)m" + twoDigits(ms / 1000 % 60) + "s"
    case ..<86_400_000: return "\(ms / 3_600_000)h" + twoDigits(ms / 60_000 % 60) + "m"
    default: return "\(ms / 86_400_000)d\(ms / 3_600_000 % 24)h"
    }
}
