import NetdProtocol

/// `events.subscribe` and `events.unsubscribe`.
struct EventMethods: Sendable {
    let hub: EventHub
    /// `--max-subscriptions-per-client`.
    let limit: Int

    func register(in table: inout MethodTable) {
        let (hub, limit) = (self.hub, self.limit)
        table.on(EventsSubscribeMethod.self) { params, context in
            guard let sink = context.notify else {
                throw NetdError.internalFailure("this connection cannot receive notifications")
            }
            guard
                let id = hub.subscribe(
                    connectionID: context.connectionID, uid: context.peer.uid, admin: context.isAdmin,
                    types: params.types.map(Set.init), ids: params.ids.map(Set.init), limit: limit, sink: sink)
            else {
                throw NetdError.limit(
                    code: "EMFILE",
                    "this connection holds \(limit) subscriptions already (--max-subscriptions-per-client); unsubscribe one, or widen one with more types or ids",
                    limit: .maxSubscriptionsPerClient, max: limit)
            }
            return EventsSubscribeMethod.Result(subscription: id)
        }
        table.on(EventsUnsubscribeMethod.self) { params, context in
            guard hub.unsubscribe(params.subscription, connectionID: context.connectionID) else {
                throw NetdError.notFound("no subscription \(params.subscription) on this connection")
            }
            return EventsUnsubscribeMethod.Result(ok: true)
        }
    }
}
