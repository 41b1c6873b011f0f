import NetdProtocol

/// `events.subscribe` and `events.unsubscribe`.
struct EventMethods: Sendable {
    let hub: EventHub

    func register(in table: inout MethodTable) {
        let hub = self.hub
        table.on(EventsSubscribeMethod.self) { params, context in
            guard let sink = context.notify else {
                throw NetdError.internalFailure("this connection cannot receive notifications")
            }
            let id = hub.subscribe(
                connectionID: context.connectionID, uid: context.peer.uid, admin: context.isAdmin,
                types: params.types.map(Set.init), ids: params.ids.map(Set.init), sink: sink)
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
