/// `events.unsubscribe`: stop a subscription made on this RPC connection.
public enum EventsUnsubscribeMethod: RPCMethod {
    public static let name = "events.unsubscribe"
    public static let summary = "Stop a subscription made on this connection."

    public struct Params: RPCParams, Hashable {
        public var subscription: Int64

        public init(subscription: Int64) { self.subscription = subscription }

        public static let fields = [ParamField("subscription", "integer", required: true, "What events.subscribe returned.")]
    }

    public struct Result: Codable, Hashable, Sendable {
        public var ok: Bool

        public init(ok: Bool) { self.ok = ok }
    }
}
