import Foundation
import NetdProtocol
import NetdRelay
import NetdLocks

/// What a relay reports about one socket, turned into the socket's shared state (what
/// `socket.get` shows) and its signals (history and events), as its handler does on NIO.
///
/// - Important: Called on a relay thread; everything it touches is under a lock or `Sendable`.
final class RelayedSocket: RelayObserver {
    private let shared: SocketShared
    private let signal: @Sendable (SocketSignal) -> Void
    /// Said just before the close of an attached socket: its stream ends with it.
    private let detached: (@Sendable () -> Void)?
    /// When the counts last went to history: they go at most every 200 ms, and exactly at close.
    private let lastReported = Locked<ContinuousClock.Instant>(.now)

    init(shared: SocketShared, signal: @escaping @Sendable (SocketSignal) -> Void, detached: (@Sendable () -> Void)? = nil) {
        self.shared = shared
        self.signal = signal
        self.detached = detached
    }

    func moved(read: Int, written: Int) {
        let (bytesRead, bytesWritten) = shared.withLock { state in
            state.bytesRead += Int64(read)
            state.bytesWritten += Int64(written)
            return (state.bytesRead, state.bytesWritten)
        }
        let now = ContinuousClock.now
        let due = lastReported.withLock { last in
            guard now - last >= .milliseconds(200) else { return false }
            last = now
            return true
        }
        if due { signal(.wrote(bytesRead: bytesRead, bytesWritten: bytesWritten)) }
    }

    func inputEnded() {
        // NIO may have seen the peer's end before the hand-over; the relay reads it again.
        let first = shared.withLock { state -> Bool in
            guard !state.inputEnded else { return false }
            state.inputEnded = true
            state.changes &+= 1
            return true
        }
        if first { signal(.peerEnded) }
    }

    func outputEnded() {
        shared.withLock { $0.outputEnded = true }
    }

    func failed(code: String, message: String) {
        let failure = SocketFailure(code: code, message: message)
        let first = shared.withLock { state -> Bool in
            guard state.failure == nil else { return false }
            state.failure = failure
            return true
        }
        if first { signal(.failed(failure)) }
    }

    func faultActed(fault: UInt64, detail: String) {
        signal(.fault(id: Int64(bitPattern: fault), detail: detail))
    }

    func closed(hadError: Bool) {
        detached?()
        let (bytesRead, bytesWritten) = shared.withLock { state in
            state.closed = true
            state.changes &+= 1
            return (state.bytesRead, state.bytesWritten)
        }
        signal(.closed(hadError: hadError, bytesRead: bytesRead, bytesWritten: bytesWritten))
    }
}
