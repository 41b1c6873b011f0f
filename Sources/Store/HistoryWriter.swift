import Foundation
import GRDB
import Logging
import NetdProtocol
import NetdLocks

/// The one writer of the history database. Callers queue changes and return at once; the writer
/// applies everything queued so far in one transaction, so the data path never waits on SQLite.
/// Byte counts are coalesced per record and written at most once a second, and exactly at close.
///
/// When the database cannot be written (disk full, file made read-only), nothing waits on it:
/// changes stay queued and are retried every second until they land, and callers waiting for a
/// commit are let go. Only if the queue reaches its limit are further changes given up, and
/// counted (``health``).
///
/// The writer runs on a thread of its own and writes with GRDB's synchronous API: a change queued
/// wakes that one thread, which commits and lets the waiting calls go, with no hop through the task
/// pool or GRDB's queue in between (a `socket.connect` waits for its record's commit).
///
/// - Important: Every method may be called from any thread. ``run()`` must be running for changes to land.
public final class HistoryWriter: Sendable {
    public typealias Change = HistoryChange

    private struct Counters: Sendable {
        var read: Int64
        var written: Int64
        /// Formatted when written: counts change on every read and write, and most never reach the database.
        var at: Date
    }

    private struct State: Sendable {
        var queued: [HistoryChange] = []
        var counters: [Int64: Counters] = [:]
        /// The sequence number of the last change queued, and of the last one committed.
        var queuedSequence: UInt64 = 0
        var committedSequence: UInt64 = 0
        /// Calls waiting for their record, by token: the sequence they wait for and how to resume them.
        var waiters: [UInt64: (sequence: UInt64, deadline: ContinuousClock.Instant, continuation: CheckedContinuation<Void, Never>)] = [:]
        var nextWaiter: UInt64 = 0
        var failures: Int = 0
        var lastFailure: String?
        var lastFailureAt: Date?
        var lastCommitAt: Date?
        /// The last attempt failed; cleared by the next success.
        var failing = false
        /// Changes given up because the queue was full, and changes the database refused
        /// (a constraint, such as an event for a record pruned meanwhile).
        var dropped: Int = 0
        var rejected: Int = 0
        var stopping = false
        /// Something was queued since the writer last looked; the doorbell is rung once per such spell.
        var rung = false
        /// A task lets waiters go after their bound while the writer is held up (``waitUntilCommitted(_:atMost:)``).
        var watchdog = false
    }

    private let pool: DatabasePool
    private let logger: Logger
    private let queueLimit: Int
    private let retryInterval: Duration
    private let onCommit: (@Sendable (Duration, Int) -> Void)?
    private let state = Locked(State())
    /// Wakes the writer's thread: signalled when the first change of a spell is queued, or to stop.
    private let doorbell = DispatchSemaphore(value: 0)

    /// - Parameters:
    ///   - queueLimit: changes held while the database cannot be written; beyond it they are given up.
    ///   - retryInterval: how long to wait after a failed write before trying again.
    ///   - onCommit: told how long each batch took to write and how many changes it held (metrics).
    public init(
        store: HistoryStore, logger: Logger, queueLimit: Int, retryInterval: Duration = .seconds(1),
        onCommit: (@Sendable (Duration, Int) -> Void)? = nil
    ) {
        self.onCommit = onCommit
        self.pool = store.pool
        self.logger = logger
        self.queueLimit = queueLimit
        self.retryInterval = retryInterval
    }

    /// Queues a change; returns its sequence number, for ``waitUntilCommitted(_:)``.
    @discardableResult
    public func enqueue(_ change: HistoryChange) -> UInt64 {
        let (sequence, ring) = state.withLock { state -> (UInt64, Bool) in
            state.queuedSequence += 1
            if state.queued.count >= queueLimit {
                state.dropped += 1
            } else {
                state.queued.append(change)
            }
            defer { state.rung = true }
            return (state.queuedSequence, !state.rung)
        }
        if ring { doorbell.signal() }
        return sequence
    }

    /// Notes a record's byte counts; the latest values are written within a second.
    public func counters(id: Int64, read: Int64, written: Int64, at: Date) {
        state.withLock { $0.counters[id] = Counters(read: read, written: written, at: at) }
    }

    /// Waits until the change with this sequence number (and all before it) is committed or given
    /// up, but never longer than `limit`: a database that another program holds locked, or a slow
    /// disk, may delay the record, never the call (the change lands later, in order). Returns at
    /// once while the database cannot be written.
    public func waitUntilCommitted(_ sequence: UInt64, atMost limit: Duration = .milliseconds(250)) async {
        await withCheckedContinuation { continuation in
            let (waiting, startWatchdog) = state.withLock { state -> (Bool, Bool) in
                // While the database cannot be written nobody waits on it: the change lands later.
                if state.committedSequence >= sequence || state.stopping || state.failing { return (false, false) }
                state.nextWaiter += 1
                state.waiters[state.nextWaiter] = (sequence, .now + limit, continuation)
                defer { state.watchdog = true }
                return (true, !state.watchdog)
            }
            guard waiting else { return continuation.resume() }
            if startWatchdog { Task { await watchWaiters() } }
        }
    }

    /// Writes everything queued so far, byte counts included, and returns once it is in the
    /// database: true then, false if it could not be written within `limit` (`netd --replace`
    /// hands over only a history that is written, so that the next netd's updates find their rows).
    public func settle(atMost limit: Duration) async -> Bool {
        let (sequence, ring) = state.withLock { state -> (UInt64, Bool) in
            // An empty change of its own: the flush that passes it has written the counts noted before it.
            state.queuedSequence += 1
            defer { state.rung = true }
            return (state.queuedSequence, !state.rung)
        }
        if ring { doorbell.signal() }
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            await waitUntilCommitted(sequence, atMost: deadline - ContinuousClock.now)
            let done = state.withLock { $0.committedSequence >= sequence && !$0.failing }
            if done { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// Lets go the calls that waited past their bound, while any wait: one task for all of them,
    /// sleeping until the earliest bound.
    private func watchWaiters() async {
        // The flag is cleared under the same lock that finds no waiter left, so a waiter that
        // comes after starts a new watch.
        while let next = state.withLock({ state in
            let next = state.waiters.values.map(\.deadline).min()
            if next == nil { state.watchdog = false }
            return next
        }) {
            try? await Task.sleep(until: next, clock: .continuous)
            let overdue = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                let now = ContinuousClock.now
                let overdue = state.waiters.filter { $0.value.deadline <= now }
                for token in overdue.keys { state.waiters[token] = nil }
                return overdue.values.map(\.continuation)
            }
            for continuation in overdue { continuation.resume() }
        }
    }

    /// Whether history is being written, how far behind it is, and what it has lost.
    public var health: Health {
        state.withLock {
            Health(
                healthy: !$0.failing, queued: $0.queued.count, failures: $0.failures,
                lastFailure: $0.lastFailure, lastFailureAt: $0.lastFailureAt, lastCommitAt: $0.lastCommitAt,
                dropped: $0.dropped, rejected: $0.rejected)
        }
    }

    /// Writes until ``stop()``, on a thread of its own; byte counts are written at least once a second.
    public func run() async {
        await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
            let thread = Thread { [self] in
                writeUntilStopped()
                finished.resume()
            }
            thread.name = "netd-history"
            thread.start()
        }
    }

    private func writeUntilStopped() {
        while true {
            _ = doorbell.wait(timeout: .now() + .seconds(1))
            state.withLock { $0.rung = false }
            let written = flush()
            if state.withLock({ $0.stopping && ($0.queued.isEmpty || $0.failing) }) { break }
            if !written {
                // Give the disk a moment instead of failing again on every change queued; a stop cuts it short.
                let (seconds, attoseconds) = retryInterval.components
                _ = doorbell.wait(timeout: .now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)))
            }
        }
        if !state.withLock({ $0.failing }) { flush() }
        let lost = state.withLock { state -> Int in
            guard state.failing else { return 0 }
            let count = state.queued.count
            state.dropped += count
            state.queued.removeAll()
            return count
        }
        if lost > 0 {
            logger.error("stopping with history unwritten; these changes are lost", metadata: ["history.lost": "\(lost)"])
        }
        release(upTo: state.withLock { $0.queuedSequence })
    }

    /// Writes what is queued, then ends ``run()``.
    public func stop() {
        state.withLock { $0.stopping = true }
        doorbell.signal()
    }

    /// Writes what is queued; false if the database refused the transaction.
    @discardableResult
    private func flush() -> Bool {
        let (changes, counters, sequence) = state.withLock { state in
            defer {
                state.queued.removeAll(keepingCapacity: true)
                state.counters.removeAll(keepingCapacity: true)
            }
            return (state.queued, state.counters, state.queuedSequence)
        }
        if !changes.isEmpty || !counters.isEmpty {
            do {
                let merged = BatchedChange.fold(changes)
                let began = ContinuousClock.now
                let rejected = try pool.write { db -> Int in
                    var rejected = 0
                    for change in merged {
                        do {
                            try change.apply(db)
                        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                            // One bad change must not hold back the rest forever.
                            rejected += 1
                        }
                    }
                    for (id, counts) in counters {
                        try db.cachedStatement(sql: Self.countersSQL).execute(arguments: [counts.read, counts.written, Timestamp.format(counts.at), id])
                    }
                    return rejected
                }
                onCommit?(ContinuousClock.now - began, changes.count + counters.count)
                let recovered = state.withLock { state in
                    defer {
                        state.failing = false
                        state.lastCommitAt = Date()
                        state.rejected += rejected
                    }
                    return state.failing
                }
                if recovered {
                    logger.notice("history is being written again", metadata: ["history.changes": "\(changes.count)"])
                }
                if rejected > 0 {
                    logger.warning("history refused changes", metadata: ["history.rejected": "\(rejected)"])
                }
            } catch {
                // The changes are kept and tried again, in order, ahead of newer ones.
                let first = state.withLock { state in
                    defer {
                        state.failing = true
                        state.failures += 1
                        state.lastFailure = Self.reason(error)
                        state.lastFailureAt = Date()
                        state.queued.insert(contentsOf: changes, at: 0)
                        // Changes queued meanwhile may not take the queue past its limit.
                        let excess = state.queued.count - queueLimit
                        if excess > 0 {
                            state.queued.removeLast(excess)
                            state.dropped += excess
                        }
                        for (id, counts) in counters where state.counters[id] == nil { state.counters[id] = counts }
                    }
                    return !state.failing
                }
                logger.log(
                    level: first ? .error : .debug, "cannot write history; retrying every \(retryInterval)",
                    metadata: ["error": "\(Self.reason(error))", "history.queued": "\(changes.count)"])
                // Nobody waits on a database that cannot be written: the records land when it can be.
                release(upTo: sequence)
                return false
            }
        }
        release(upTo: sequence)
        return true
    }

    private static func reason(_ error: any Error) -> String {
        if let error = error as? DatabaseError {
            return "\(error.resultCode): \(error.message ?? "")"
        }
        return String(describing: error)
    }

    private func release(upTo sequence: UInt64) {
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.committedSequence = max(state.committedSequence, sequence)
            let done = state.waiters.filter { $0.value.sequence <= state.committedSequence || state.stopping }
            for token in done.keys { state.waiters[token] = nil }
            return done.values.map(\.continuation)
        }
        for continuation in ready { continuation.resume() }
    }

    private static let countersSQL: String = {
        typealias Column = ConnectionRecord.Column
        return """
            UPDATE \(ConnectionRecord.databaseTableName) SET \(Column.bytesRead.rawValue) = ?, \(Column.bytesWritten.rawValue) = ?,
            \(Column.lastActivityAt.rawValue) = ? WHERE \(Column.id.rawValue) = ? AND \(Column.closedAt.rawValue) IS NULL
            """
    }()
}
