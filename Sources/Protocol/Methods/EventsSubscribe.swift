/// `events.subscribe`: events arrive as `event` notifications on this RPC connection.
public enum EventsSubscribeMethod: RPCMethod {
    public static let name = "events.subscribe"
    public static let summary = "Receive events (connect, listening, connection, data, end, timeout, error, close) as notifications."

    /// Every event type netd sends; `overflow` says how many events a slow subscriber lost.
    /// Node's names (contract section 5), then part two's: every type netd publishes.
    public static let eventTypes = [
        "connect", "listening", "connection", "data", "end", "timeout", "error", "close", "overflow",
        "attach", "detach", "pipe", "restored", "handoff", "fault",
    ]

    public struct Params: RPCParams, Hashable {
        public var types: [String]?
        public var ids: [Int64]?

        public init(types: [String]? = nil, ids: [Int64]? = nil) {
            self.types = types
            self.ids = ids
        }

        public static let fields = [
            ParamField("types", "array of strings", "Only these event types (default: all)."),
            ParamField("ids", "array of integers", "Only events of these sockets and servers (default: all you may see)."),
        ]

        public func validate() throws(ResponseError) {
            if let unknown = types?.first(where: { !EventsSubscribeMethod.eventTypes.contains($0) }) {
                throw .invalidParams("unknown event type `\(unknown)`; types are \(EventsSubscribeMethod.eventTypes.joined(separator: ", "))")
            }
        }
    }

    public struct Result: Codable, Hashable, Sendable {
        public var subscription: Int64

        public init(subscription: Int64) { self.subscription = subscription }
    }
}
