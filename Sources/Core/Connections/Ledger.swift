import Foundation
import NetdProtocol
import NetdStore

/// Turns what happens to a socket or server into its history change and its event, in one call
/// each, so that a record and the events subscribers see never disagree. Every call queues (the
/// history writer is off the data path) and returns the sequence number of the last change, for
/// ``committed(_:)``.
final class Ledger: Sendable {
    let history: HistoryWriter
    let events: EventHub

    init(history: HistoryWriter, events: EventHub) {
        self.history = history
        self.events = events
    }

    static func now() -> String { Timestamp.format(Date()) }

    /// Returns once the change is in the database, or soon (``HistoryWriter/waitUntilCommitted(_:atMost:)``).
    func committed(_ sequence: UInt64) async {
        await history.waitUntilCommitted(sequence)
    }

    // MARK: Opening

    /// A new record (a socket being opened, an accepted socket, a server or a failed listen).
    @discardableResult
    func opened(_ record: ConnectionRecord) -> UInt64 {
        history.enqueue(.insert(record))
    }

    /// A client socket connected: its addresses, and `connect`.
    @discardableResult
    func connected(_ id: Int64, owner: Owner, local: Endpoint?, remote: Endpoint?) -> UInt64 {
        let now = Self.now()
        history.enqueue(.update(id: id, .connected(local: local, remote: remote, at: now)))
        events.publish(type: "connect", id: id, owner: owner, at: now)
        return history.enqueue(.event(EventRecord(connectionID: id, at: now, type: "connect", detail: nil)))
    }

    /// A server listens.
    func listening(_ record: ConnectionRecord) -> UInt64 {
        history.enqueue(.insert(record))
        events.publish(type: "listening", id: record.id, owner: record.owner, at: record.openedAt)
        return history.enqueue(.event(EventRecord(connectionID: record.id, at: record.openedAt, type: "listening", detail: nil)))
    }

    /// A server accepted `socket` (its record, already built): `connection` on the server.
    func accepted(_ record: ConnectionRecord, by server: Int64, owner: Owner, total: Int64) -> UInt64 {
        let sequence = history.enqueue(.insert(record))
        history.enqueue(.event(EventRecord(connectionID: server, at: record.openedAt, type: "connection", detail: Self.json(["socket": .integer(record.id)]))))
        history.enqueue(.update(id: server, .accepted(total: total)))
        return sequence
    }

    /// Tells subscribers of the server that it accepted `socket` (once the socket is registered).
    func announceConnection(server: Int64, socket: Int64, owner: Owner, at time: String) {
        events.publish(type: "connection", id: server, owner: owner, at: time, fields: ["socket": .integer(socket)])
    }

    // MARK: Traffic

    /// Bytes arrived; the counts reach the database within a second.
    func data(_ id: Int64, owner: Owner, bytes: Int, read: Int64, written: Int64) {
        let now = Date()
        history.counters(id: id, read: read, written: written, at: now)
        events.publish(type: "data", id: id, owner: owner, at: Timestamp.format(now), fields: ["bytes": .integer(Int64(bytes))])
    }

    /// Bytes went out; only the counts change.
    func wrote(_ id: Int64, read: Int64, written: Int64) {
        history.counters(id: id, read: read, written: written, at: Date())
    }

    func peerEnded(_ id: Int64, owner: Owner) {
        let now = Self.now()
        history.enqueue(.event(EventRecord(connectionID: id, at: now, type: "end", detail: nil)))
        events.publish(type: "end", id: id, owner: owner, at: now)
    }

    func idle(_ id: Int64, owner: Owner) {
        events.publish(type: "timeout", id: id, owner: owner, at: Self.now())
    }

    // MARK: Relays

    /// A socket joined `peer` in a pipe or forward pair: `peer_id`, and an event `pipe`.
    func piped(_ id: Int64, peer: Int64, owner: Owner) -> UInt64 {
        let now = Self.now()
        history.enqueue(.update(id: id, .peer(peer)))
        events.publish(type: "pipe", id: id, owner: owner, at: now, fields: ["peer": .integer(peer)])
        return history.enqueue(.event(EventRecord(connectionID: id, at: now, type: "pipe", detail: Self.json(["peer": .integer(peer)]))))
    }

    /// An RPC connection of `client` now carries the socket's bytes: `attach`.
    func attached(_ id: Int64, owner: Owner, client: Owner) -> UInt64 {
        let now = Self.now()
        let detail: [String: JSONValue] = ["uid": .integer(Int64(client.uid)), "pid": .integer(Int64(client.pid))]
        events.publish(type: "attach", id: id, owner: owner, at: now, fields: detail)
        return history.enqueue(.event(EventRecord(connectionID: id, at: now, type: "attach", detail: Self.json(detail))))
    }

    /// A socket's or server's descriptor went to `taker`'s process: `handoff`.
    @discardableResult
    func handedOff(_ id: Int64, owner: Owner, to taker: Owner) -> UInt64 {
        let now = Self.now()
        let detail: [String: JSONValue] = ["uid": .integer(Int64(taker.uid)), "pid": .integer(Int64(taker.pid))]
        events.publish(type: "handoff", id: id, owner: owner, at: now, fields: detail)
        return history.enqueue(.event(EventRecord(connectionID: id, at: now, type: "handoff", detail: Self.json(detail))))
    }

    /// The attached stream ended: `detach`.
    func detached(_ id: Int64, owner: Owner) {
        let now = Self.now()
        events.publish(type: "detach", id: id, owner: owner, at: now)
        history.enqueue(.event(EventRecord(connectionID: id, at: now, type: "detach", detail: nil)))
    }

    /// A fault acted on the socket's connection (contract section 12): `fault`.
    func fault(_ id: Int64, owner: Owner, fault: Int64, type: FaultType, detail: String) {
        let now = Self.now()
        let fields: [String: JSONValue] = ["fault": .integer(fault), "type": .string(type.rawValue), "detail": .string(detail)]
        events.publish(type: "fault", id: id, owner: owner, at: now, fields: fields)
        history.enqueue(.event(EventRecord(connectionID: id, at: now, type: "fault", detail: Self.json(fields))))
    }

    /// A persisted listen was made again at start (kept as row `row`): `restored` on the new server.
    func restored(_ id: Int64, owner: Owner, from row: Int64) {
        let now = Self.now()
        events.publish(type: "restored", id: id, owner: owner, at: now)
        history.enqueue(.event(EventRecord(connectionID: id, at: now, type: "restored", detail: Self.json(["persisted": .integer(row)]))))
    }

    // MARK: Ending

    /// A socket or server failed: the error on its record, an `error` event.
    @discardableResult
    func failed(_ id: Int64, owner: Owner, _ failure: SocketFailure) -> UInt64 {
        let now = Self.now()
        history.enqueue(.update(id: id, .failed(code: failure.code, message: failure.message)))
        let error: [String: JSONValue] = ["code": .string(failure.code), "message": .string(failure.message)]
        events.publish(type: "error", id: id, owner: owner, at: now, fields: ["error": .object(error)])
        return history.enqueue(.event(EventRecord(connectionID: id, at: now, type: "error", detail: Self.json(error))))
    }

    /// A socket closed, with its final counts: `close`.
    @discardableResult
    func closed(_ id: Int64, owner: Owner, hadError: Bool, read: Int64 = 0, written: Int64 = 0) -> UInt64 {
        let now = Self.now()
        history.enqueue(.update(id: id, .socketClosed(at: now, bytesRead: read, bytesWritten: written)))
        events.publish(type: "close", id: id, owner: owner, at: now, fields: ["hadError": .bool(hadError)])
        return history.enqueue(.event(EventRecord(connectionID: id, at: now, type: "close", detail: Self.json(["hadError": .bool(hadError)]))))
    }

    /// A connect that never got through: the error, then `close`.
    func connectFailed(_ id: Int64, owner: Owner, _ failure: SocketFailure) -> UInt64 {
        failed(id, owner: owner, failure)
        return closed(id, owner: owner, hadError: true)
    }

    /// A server stopped listening.
    func serverClosed(_ id: Int64, owner: Owner, accepted: Int64, at time: String) {
        history.enqueue(.update(id: id, .serverClosed(at: time, accepted: accepted)))
        history.enqueue(.event(EventRecord(connectionID: id, at: time, type: "close", detail: Self.json(["hadError": .bool(false)]))))
        events.publish(type: "close", id: id, owner: owner, at: time, fields: ["hadError": .bool(false)])
    }

    /// An event's `detail` as stored: compact JSON.
    static func json(_ object: [String: JSONValue]) -> String {
        (try? String(decoding: JSONCoding.encode(JSONValue.object(object)), as: UTF8.self)) ?? "{}"
    }
}
