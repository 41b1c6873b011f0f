import Foundation
import NIOCore
import NetdProtocol
import Synchronization
import NetdLocks

/// Where events go: every subscription, each bound to the RPC connection that made it.
///
/// Publishing never waits: each subscription has a bounded queue drained by its own task, and a
/// subscriber too slow to keep up loses events (seen as a gap in `seq` and an `overflow` event)
/// without slowing the data path or growing netd's memory.
public final class EventHub: Sendable {
    /// How many events a subscription holds before it drops new ones.
    static let queueCapacity = 4096

    struct Subscription: Sendable {
        let id: Int64
        let connectionID: Int
        let uid: UInt32
        let admin: Bool
        let types: Set<String>?
        let ids: Set<Int64>?
        let queue: SubscriptionQueue
    }

    private let subscriptions = Locked<[Int64: Subscription]>([:])
    private let subscribed = Atomic<Int>(0)
    private let nextID = Atomic<Int64>(1)

    init() {}

    /// Starts a subscription whose events are written with `sink`; returns its id.
    /// Nil when the connection holds `limit` subscriptions already.
    func subscribe(
        connectionID: Int, uid: UInt32, admin: Bool, types: Set<String>?, ids: Set<Int64>?, limit: Int,
        sink: @escaping @Sendable (ByteBuffer) async throws -> Void
    ) -> Int64? {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        let queue = SubscriptionQueue(subscription: id, sink: sink)
        let made = subscriptions.withLock { subscriptions in
            guard subscriptions.values.lazy.filter({ $0.connectionID == connectionID }).count < limit else { return false }
            subscriptions[id] = Subscription(id: id, connectionID: connectionID, uid: uid, admin: admin, types: types, ids: ids, queue: queue)
            subscribed.store(subscriptions.count, ordering: .relaxed)
            return true
        }
        guard made else {
            queue.finish()
            return nil
        }
        return id
    }

    /// Subscriptions held by one RPC connection.
    func count(connectionID: Int) -> Int {
        subscriptions.withLock { $0.values.lazy.filter { $0.connectionID == connectionID }.count }
    }

    /// Ends a subscription made on this RPC connection; false if there is none.
    func unsubscribe(_ id: Int64, connectionID: Int) -> Bool {
        let removed = subscriptions.withLock { subscriptions -> Subscription? in
            guard subscriptions[id]?.connectionID == connectionID else { return nil }
            defer { subscribed.store(subscriptions.count, ordering: .relaxed) }
            return subscriptions.removeValue(forKey: id)
        }
        removed?.queue.finish()
        return removed != nil
    }

    /// Ends every subscription of an RPC connection that went away.
    func dropConnection(_ connectionID: Int) {
        let removed = subscriptions.withLock { subscriptions -> [Subscription] in
            let gone = subscriptions.values.filter { $0.connectionID == connectionID }
            for subscription in gone { subscriptions[subscription.id] = nil }
            subscribed.store(subscriptions.count, ordering: .relaxed)
            return gone
        }
        for subscription in removed { subscription.queue.finish() }
    }

    /// Sends an event about socket or server `id` to every subscription that may see it.
    /// Nothing is made (time text, fields) unless someone is subscribed.
    func publish(type: String, id: Int64, owner: Owner, at: @autoclosure () -> String, fields: @autoclosure () -> [String: JSONValue] = [:]) {
        guard subscribed.load(ordering: .relaxed) > 0 else { return }
        let targets = subscriptions.withLock { subscriptions in
            subscriptions.values.filter { subscription in
                (subscription.admin || subscription.uid == owner.uid)
                    && (subscription.types?.contains(type) ?? true)
                    && (subscription.ids?.contains(id) ?? true)
            }
        }
        guard !targets.isEmpty else { return }
        let (at, fields) = (at(), fields())
        for subscription in targets {
            subscription.queue.offer(type: type, id: id, at: at, fields: fields)
        }
    }
}

/// One subscription's bounded queue and the task that writes it out.
final class SubscriptionQueue: Sendable {
    private let subscription: Int64
    private let continuation: AsyncStream<Event>.Continuation
    private let state = Locked(State())
    private let writer: Task<Void, Never>

    private struct State {
        var seq: Int64 = 0
        var dropped: Int64 = 0
    }

    struct Event: Sendable {
        var seq: Int64
        var type: String
        var id: Int64
        var at: String
        var fields: [String: JSONValue]
    }

    init(subscription: Int64, sink: @escaping @Sendable (ByteBuffer) async throws -> Void) {
        self.subscription = subscription
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingOldest(EventHub.queueCapacity))
        self.continuation = continuation
        writer = Task {
            for await event in stream {
                var params = event.fields
                params["subscription"] = .integer(subscription)
                params["seq"] = .integer(event.seq)
                params["at"] = .string(event.at)
                params["type"] = .string(event.type)
                params["id"] = .integer(event.id)
                guard var line = try? JSONCoding.encode(NotificationMessage(method: "event", params: JSONValue.object(params))) else { continue }
                line.append(UInt8(ascii: "\n"))
                do {
                    try await sink(ByteBuffer(bytes: line))
                } catch {
                    return
                }
            }
        }
    }

    /// Queues an event, or counts it lost when the queue is full.
    func offer(type: String, id: Int64, at: String, fields: [String: JSONValue]) {
        state.withLock { state in
            state.seq += 1
            if state.dropped > 0 {
                // Say how many were lost before the next event that gets through.
                let notice = Event(seq: state.seq, type: "overflow", id: id, at: at, fields: ["dropped": .integer(state.dropped)])
                if case .enqueued = continuation.yield(notice) {
                    state.dropped = 0
                    state.seq += 1
                } else {
                    state.dropped += 1
                    return
                }
            }
            if case .dropped = continuation.yield(Event(seq: state.seq, type: type, id: id, at: at, fields: fields)) {
                state.dropped += 1
            }
        }
    }

    func finish() {
        continuation.finish()
        writer.cancel()
    }
}
