import NIOCore
import NetdLocks

/// Notification lines on their way to one RPC connection, from any thread. Queuing a line never
/// waits for the event loop; lines queued before the loop gets to them leave in one write. While
/// the client does not read (the channel is not writable), senders wait, so that a subscriber's
/// own queue, with its overflow accounting, holds what a slow reader has not taken yet.
final class NotificationOutbox: Sendable {
    private struct State {
        var bytes: [UInt8] = []
        var scheduled = false
        var blocked = false
        var closed = false
        var waiters: [CheckedContinuation<Void, any Error>] = []
    }

    private let state = Locked(State())
    private let eventLoop: any EventLoop
    private let connection: Locked<NIOLoopBound<RPCConnection>?> = Locked(nil)

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func attach(_ connection: NIOLoopBound<RPCConnection>?) {
        self.connection.withLock { $0 = connection }
    }

    /// Queues `line`; returns at once unless the client has stopped reading.
    func send(_ line: ByteBuffer) async throws {
        let (schedule, blocked) = try state.withLock { state -> (Bool, Bool) in
            guard !state.closed else { throw ChannelError.ioOnClosedChannel }
            state.bytes.append(contentsOf: line.readableBytesView)
            defer { state.scheduled = true }
            return (!state.scheduled, state.blocked)
        }
        if schedule, let connection = connection.withLock({ $0 }) {
            eventLoop.execute { connection.value.drainOutbox() }
        }
        guard blocked else { return }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let now: Result<Void, any Error>? = state.withLock { state in
                if state.closed { return .failure(ChannelError.ioOnClosedChannel) }
                if !state.blocked { return .success(()) }
                state.waiters.append(continuation)
                return nil
            }
            if let now { continuation.resume(with: now) }
        }
    }

    /// What is queued, for the loop to write.
    func take() -> [UInt8] {
        state.withLock { state in
            state.scheduled = false
            defer { state.bytes.removeAll(keepingCapacity: true) }
            return state.bytes
        }
    }

    /// The client is not reading: senders wait until ``unblock()``.
    func block() {
        state.withLock { $0.blocked = true }
    }

    /// The client made room: waiting senders go on.
    func unblock() {
        let waiters = state.withLock { state in
            state.blocked = false
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func close() {
        let waiters = state.withLock { state in
            state.closed = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(throwing: ChannelError.ioOnClosedChannel) }
        attach(nil)
    }
}
