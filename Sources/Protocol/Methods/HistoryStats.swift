/// `history.stats` (an extension): what was talked to over a time window, and what failed.
public enum HistoryStatsMethod: RPCMethod {
    public static let name = "history.stats"
    public static let summary = "Extension: counts, bytes, errors and duration percentiles of history, grouped by remote, kind, role, label or server."

    public struct Params: RPCParams, Hashable {
        public var since: String?
        public var until: String?
        public var groupBy: StatsGrouping?
        public var role: Role?
        public var kind: Kind?
        public var host: String?
        public var port: Int?
        public var path: String?
        public var server: Int64?
        public var label: String?
        public var limit: Int?

        public init(
            since: String? = nil, until: String? = nil, groupBy: StatsGrouping? = nil, role: Role? = nil, kind: Kind? = nil,
            host: String? = nil, port: Int? = nil, path: String? = nil, server: Int64? = nil, label: String? = nil,
            limit: Int? = nil
        ) {
            self.since = since
            self.until = until
            self.groupBy = groupBy
            self.role = role
            self.kind = kind
            self.host = host
            self.port = port
            self.path = path
            self.server = server
            self.label = label
            self.limit = limit
        }

        public static let fields =
            HistoryFilterFields.window("Records (default: the last 24 hours)")
            + [ParamField("groupBy", "string: remote, kind, role, label or server", "How to group (default remote).")]
            + HistoryFilterFields.selection
            + [ParamField("limit", "integer 1-10000", "At most this many groups, the busiest first (default 100).")]

        public func validate() throws(ResponseError) {
            try HistoryFilterFields.validate(since: since, until: until, host: host, port: port, path: path)
            try Check.range(limit, "limit", 1...10_000)
        }
    }

    public struct Result: Codable, Hashable, Sendable {
        public var since: String
        public var until: String
        public var groupBy: StatsGrouping
        /// The busiest groups first (most records, then most bytes).
        public var groups: [StatsGroup]
        /// Every record of the window that matched, whether or not its group is listed.
        public var total: StatsSummary

        public init(since: String, until: String, groupBy: StatsGrouping, groups: [StatsGroup], total: StatsSummary) {
            self.since = since
            self.until = until
            self.groupBy = groupBy
            self.groups = groups
            self.total = total
        }
    }
}

/// How `history.stats` groups records.
public enum StatsGrouping: String, Codable, Sendable, CaseIterable {
    /// What was talked to: `host:port` (the name asked for) or the path for client sockets; the
    /// peer's address (without its ephemeral port) for accepted TCP sockets and the server's path
    /// for accepted Unix ones; the listening address for servers.
    case remote
    case kind
    case role
    case label
    case server
}

/// One group of `history.stats`.
public struct StatsGroup: Codable, Hashable, Sendable {
    /// The group's value: a remote such as `localhost:6379`, a kind, a role, a label, a server id; null for none.
    public var key: JSONValue
    public var summary: StatsSummary

    public init(key: JSONValue, summary: StatsSummary) {
        self.key = key
        self.summary = summary
    }

    // Encoded flat: {"key": ..., "connections": ..., ...}.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyCodingKey.self)
        key = try container.decodeIfPresent(JSONValue.self, forKey: AnyCodingKey("key")) ?? .null
        summary = try StatsSummary(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyCodingKey.self)
        try container.encode(key, forKey: AnyCodingKey("key"))
        try summary.encode(to: encoder)
    }
}

/// Counts, bytes, errors and durations of a set of records.
public struct StatsSummary: Codable, Hashable, Sendable {
    /// Records (sockets and servers) opened in the window.
    public var connections: Int
    /// Of those, still open.
    public var open: Int
    /// Of those, ended with an error (`ELOST` included).
    public var failed: Int
    /// Error code to how many records ended with it.
    public var errors: [String: Int]
    public var bytesRead: Int64
    public var bytesWritten: Int64
    /// How long closed records were open, in milliseconds; null fields when none closed.
    public var durationMs: Percentiles

    public init(
        connections: Int, open: Int, failed: Int, errors: [String: Int], bytesRead: Int64, bytesWritten: Int64,
        durationMs: Percentiles
    ) {
        self.connections = connections
        self.open = open
        self.failed = failed
        self.errors = errors
        self.bytesRead = bytesRead
        self.bytesWritten = bytesWritten
        self.durationMs = durationMs
    }

    public struct Percentiles: Codable, Hashable, Sendable {
        public var p50: Double?
        public var p90: Double?
        public var p99: Double?
        public var max: Double?

        public init(p50: Double? = nil, p90: Double? = nil, p99: Double? = nil, max: Double? = nil) {
            self.p50 = p50
            self.p90 = p90
            self.p99 = p99
            self.max = max
        }

        private enum CodingKeys: String, CodingKey { case p50, p90, p99, max }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(p50, forKey: .p50)
            try container.encode(p90, forKey: .p90)
            try container.encode(p99, forKey: .p99)
            try container.encode(max, forKey: .max)
        }

        /// Nearest-rank percentiles of `sorted` (ascending).
        public init(sorted: [Double]) {
            guard let last = sorted.last else {
                self.init()
                return
            }
            func rank(_ fraction: Double) -> Double {
                let index = Int((fraction * Double(sorted.count)).rounded(.up)) - 1
                return sorted[Swift.max(0, Swift.min(sorted.count - 1, index))]
            }
            self.init(p50: rank(0.5), p90: rank(0.9), p99: rank(0.99), max: last)
        }
    }
}
