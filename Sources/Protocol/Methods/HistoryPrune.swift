/// `history.prune`: delete records closed before a time, with their events.
public enum HistoryPruneMethod: RPCMethod {
    public static let name = "history.prune"
    public static let summary = "Delete records closed before a time, with their events (yours; an admin's: everyone's)."

    public struct Params: RPCParams, Hashable {
        public var before: String

        public init(before: String) { self.before = before }

        public static let fields = [
            ParamField("before", "string (ISO 8601)", required: true, "Delete records closed before this time."),
        ]

        public func validate() throws(ResponseError) {
            try Check.timestamp(before, "before")
        }
    }

    public struct Result: Codable, Hashable, Sendable {
        /// Records deleted (their events went with them).
        public var deleted: Int

        public init(deleted: Int) { self.deleted = deleted }
    }
}
