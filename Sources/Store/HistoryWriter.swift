import Foundation
import GRDB
import Logging
import Synchronization

/// The one writer of the history database. Callers queue changes and return at once; the writer
/// applies everything queued so far in one transaction, so the data path never waits on SQLite.
/// Byte counts are coalesced per record and written at most once a second, and exactly at close.
///
/// - Important: Every method may be called from any thread. ``run()`` must be running for changes to land.
public final class HistoryWriter: Sendable {
    /// A change to the history, applied in the order queued.
    public enum Change: Sendable {
        case insert(ConnectionRecord)
        /// Sets the listed columns of a record (`nil` values clear nothing: pass only what changed).
        case update(id: Int64, RecordUpdate)
        case event(EventRecord)
    }

    /// The columns a change may set on an existing record.
    public struct RecordUpdate: Sendable, Hashable {
        public var state: String?
        public var localAddress: String?
        public var localPort: Int?
        public var localPath: String?
        public var remoteAddress: String?
        public var remotePort: Int?
        public var remotePath: String?
        public var closedAt: String?
        public var lastActivityAt: String?
        public var bytesRead: Int64?
        public var bytesWritten: Int64?
        public var errorCode: String?
        public var errorMessage: String?
        public var accepted: Int64?

        public init(
            state: String? = nil, localAddress: String? = nil, localPort: Int? = nil, localPath: String? = nil,
            remoteAddress: String? = nil, remotePort: Int? = nil, remotePath: String? = nil, closedAt: String? = nil,
            lastActivityAt: String? = nil, bytesRead: Int64? = nil, bytesWritten: Int64? = nil,
            errorCode: String? = nil, errorMessage: String? = nil, accepted: Int64? = nil
        ) {
            self.state = state
            self.localAddress = localAddress
            self.localPort = localPort
            self.localPath = localPath
            self.remoteAddress = remoteAddress
            self.remotePort = remotePort
            self.remotePath = remotePath
            self.closedAt = closedAt
            self.lastActivityAt = lastActivityAt
            self.bytesRead = bytesRead
            self.bytesWritten = bytesWritten
            self.errorCode = errorCode
            self.errorMessage = errorMessage
            self.accepted = accepted
        }
    }

    private struct Counters: Sendable {
        var read: Int64
        var written: Int64
        var at: String
    }

    private struct State: Sendable {
        var queued: [Change] = []
        var counters: [Int64: Counters] = [:]
        /// The sequence number of the last change queued, and of the last one committed.
        var queuedSequence: UInt64 = 0
        var committedSequence: UInt64 = 0
        var waiters: [(UInt64, CheckedContinuation<Void, Never>)] = []
        var failures: Int = 0
        var lastFailure: String?
        var stopping = false
    }

    private let pool: DatabasePool
    private let logger: Logger
    private let state = Mutex(State())
    private let doorbell: AsyncStream<Void>.Continuation
    private let rings: AsyncStream<Void>

    public init(store: HistoryStore, logger: Logger) {
        self.pool = store.pool
        self.logger = logger
        (rings, doorbell) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues a change; returns its sequence number, for ``waitUntilCommitted(_:)``.
    @discardableResult
    public func enqueue(_ change: Change) -> UInt64 {
        let sequence = state.withLock { state in
            state.queued.append(change)
            state.queuedSequence += 1
            return state.queuedSequence
        }
        doorbell.yield()
        return sequence
    }

    /// Notes a record's byte counts; the latest values are written within a second.
    public func counters(id: Int64, read: Int64, written: Int64, at: String) {
        state.withLock { $0.counters[id] = Counters(read: read, written: written, at: at) }
    }

    /// Waits until the change with this sequence number (and all before it) is committed or given up.
    public func waitUntilCommitted(_ sequence: UInt64) async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state in
                if state.committedSequence >= sequence || state.stopping { return true }
                state.waiters.append((sequence, continuation))
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Failed transactions so far, and the last reason.
    public var health: (failures: Int, lastFailure: String?) {
        state.withLock { ($0.failures, $0.lastFailure) }
    }

    /// Writes until ``stop()``; a ticker flushes byte counts every second.
    public func run() async {
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                doorbell.yield()
            }
        }
        defer { ticker.cancel() }
        for await _ in rings {
            await flush()
            if state.withLock({ $0.stopping && $0.queued.isEmpty }) { break }
        }
        await flush()
    }

    /// Writes what is queued, then ends ``run()``.
    public func stop() {
        state.withLock { $0.stopping = true }
        doorbell.yield()
        doorbell.finish()
    }

    private func flush() async {
        let (changes, counters, sequence) = state.withLock { state in
            defer {
                state.queued.removeAll(keepingCapacity: true)
                state.counters.removeAll(keepingCapacity: true)
            }
            return (state.queued, state.counters, state.queuedSequence)
        }
        if !changes.isEmpty || !counters.isEmpty {
            do {
                try await pool.write { db in
                    for change in changes { try Self.apply(change, db) }
                    for (id, counts) in counters {
                        try db.execute(
                            sql: "UPDATE connections SET bytes_read = ?, bytes_written = ?, last_activity_at = ? WHERE id = ? AND closed_at IS NULL",
                            arguments: [counts.read, counts.written, counts.at, id])
                    }
                }
            } catch {
                // The changes are kept and tried again with the next batch, in order.
                logger.error("cannot write history; will retry", metadata: ["error": "\(error)", "history.changes": "\(changes.count)"])
                state.withLock { state in
                    state.failures += 1
                    state.lastFailure = String(describing: error)
                    state.queued.insert(contentsOf: changes, at: 0)
                    for (id, counts) in counters where state.counters[id] == nil { state.counters[id] = counts }
                }
                if state.withLock({ $0.stopping }) { release(upTo: sequence) }
                return
            }
        }
        release(upTo: sequence)
    }

    private func release(upTo sequence: UInt64) {
        let ready = state.withLock { state in
            state.committedSequence = max(state.committedSequence, sequence)
            let (done, waiting) = state.waiters.reduce(into: ([CheckedContinuation<Void, Never>](), [(UInt64, CheckedContinuation<Void, Never>)]())) {
                if $1.0 <= state.committedSequence || state.stopping { $0.0.append($1.1) } else { $0.1.append($1) }
            }
            state.waiters = waiting
            return done
        }
        for continuation in ready { continuation.resume() }
    }

    private static func apply(_ change: Change, _ db: Database) throws {
        switch change {
        case .insert(let record):
            try record.insert(db)
        case .event(let event):
            try event.insert(db)
        case .update(let id, let update):
            var assignments: [String] = []
            var arguments: StatementArguments = []
            func set(_ column: String, _ value: (any DatabaseValueConvertible)?) {
                guard let value else { return }
                assignments.append("\(column) = ?")
                arguments += [value]
            }
            set("state", update.state)
            set("local_address", update.localAddress)
            set("local_port", update.localPort)
            set("local_path", update.localPath)
            set("remote_address", update.remoteAddress)
            set("remote_port", update.remotePort)
            set("remote_path", update.remotePath)
            set("closed_at", update.closedAt)
            set("last_activity_at", update.lastActivityAt)
            set("bytes_read", update.bytesRead)
            set("bytes_written", update.bytesWritten)
            set("error_code", update.errorCode)
            set("error_message", update.errorMessage)
            set("accepted", update.accepted)
            guard !assignments.isEmpty else { return }
            arguments += [id]
            try db.execute(sql: "UPDATE connections SET \(assignments.joined(separator: ", ")) WHERE id = ?", arguments: arguments)
        }
    }
}

extension HistoryStore {
    /// One record by id, or nil.
    public func record(id: Int64) throws -> ConnectionRecord? {
        try pool.read { db in try ConnectionRecord.fetchOne(db, key: id) }
    }
}
