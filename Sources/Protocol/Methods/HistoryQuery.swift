/// `history.query`: records of the history database, newest first, a page at a time.
public enum HistoryQueryMethod: RPCMethod {
    public static let name = "history.query"
    public static let summary = "Query the history of sockets and servers, newest first, with filters and paging by id."

    /// The filters of `history.query`; `history.stats` takes the same.
    public struct Params: RPCParams, Hashable {
        public var since: String?
        public var until: String?
        public var role: Role?
        public var kind: Kind?
        public var state: HistoryState?
        public var host: String?
        public var port: Int?
        public var path: String?
        public var server: Int64?
        public var label: String?
        public var limit: Int?
        public var before: Int64?

        public init(
            since: String? = nil, until: String? = nil, role: Role? = nil, kind: Kind? = nil, state: HistoryState? = nil,
            host: String? = nil, port: Int? = nil, path: String? = nil, server: Int64? = nil, label: String? = nil,
            limit: Int? = nil, before: Int64? = nil
        ) {
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
            self.limit = limit
            self.before = before
        }

        public static let fields =
            HistoryFilterFields.window("Only records")
            + [ParamField("state", "string: open or closed", "Only records still open, or only closed ones.")]
            + HistoryFilterFields.selection
            + [
                ParamField("limit", "integer 1-10000", "At most this many records (default 100)."),
                ParamField("before", "integer", "Continue below this id: the `next` of the previous page."),
            ]

        public func validate() throws(ResponseError) {
            try HistoryFilterFields.validate(since: since, until: until, host: host, port: port, path: path)
            try Check.range(limit, "limit", 1...10_000)
        }
    }

    public struct Result: Codable, Hashable, Sendable {
        public var items: [HistoryRecord]
        /// The `before` of the next page; null when no record is left.
        public var next: Int64?

        public init(items: [HistoryRecord], next: Int64?) {
            self.items = items
            self.next = next
        }

        private enum CodingKeys: String, CodingKey { case items, next }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(items, forKey: .items)
            try container.encode(next, forKey: .next)
        }
    }
}

/// The `state` filter of history: a record still open, or closed.
public enum HistoryState: String, Codable, Sendable, CaseIterable {
    case open, closed
}

/// The filters `history.query` and `history.stats` share: their descriptions and checks.
enum HistoryFilterFields {
    static func window(_ subject: String) -> [ParamField] {
        [
            ParamField("since", "string (ISO 8601)", "\(subject) opened at or after this time."),
            ParamField("until", "string (ISO 8601)", "\(subject) opened before this time."),
        ]
    }

    static let selection = [
        ParamField("role", "string: client, accepted or server", "Only this role."),
        ParamField("kind", "string: tcp or unix", "Only this kind."),
        ParamField("host", "string", "Only records known by this host: the name asked for, else (accepted sockets) the peer's address."),
        ParamField("port", "integer 0-65535", "Only sockets with this remote port, and servers with this local port."),
        ParamField("path", "string", "Only Unix records with this path (the peer's for clients, the server's otherwise)."),
        ParamField("server", "integer", "Only sockets accepted by this server."),
        ParamField("label", "string", "Only this label."),
    ]

    static func validate(since: String?, until: String?, host: String?, port: Int?, path: String?) throws(ResponseError) {
        try Check.timestamp(since, "since")
        try Check.timestamp(until, "until")
        try Check.port(port, "port", allowZero: true)
        if let path { try Check.unixPath(path, absolute: false) }
        if host?.isEmpty == true { throw .invalidParams("`host` must not be empty") }
    }
}
