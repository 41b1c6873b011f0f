/// `history.get`: one record and its events, in order.
public enum HistoryGetMethod: RPCMethod {
    public static let name = "history.get"
    public static let summary = "One record of history with its events, oldest first."
    public typealias Params = IDParams

    public struct Result: Codable, Hashable, Sendable {
        public var record: HistoryRecord
        public var events: [HistoryEvent]

        public init(record: HistoryRecord, events: [HistoryEvent]) {
            self.record = record
            self.events = events
        }
    }
}
