import NIOCore
import NetdProtocol
import NetdLocks

/// The part of a socket that RPC connections on any event loop read without hopping to the
/// socket's own loop: its unread bytes, its counters and its state. `socket.get` and a
/// `socket.read` of bytes already buffered are answered on the caller's loop from here.
///
/// - Important: The socket's loop (``SocketHandler``) changes it on every event; other loops read
///   it and take bytes from it. Everything is under one lock, held for a few field updates or
///   for one `take`.
final class SocketShared: Sendable {
    struct State {
        var unread = UnreadBytes()
        var bytesRead: Int64 = 0
        var bytesWritten: Int64 = 0
        var failure: SocketFailure?
        var active = false
        var inputEnded = false
        var outputEnded = false
        var closed = false
        /// `socket.close` was called: unread bytes were discarded and every later call is refused.
        var discarded = false
        var eofDelivered = false
        /// The socket's loop held a read from the kernel because the buffer was full; whoever
        /// drains it below the limit asks the loop to read again.
        var readHeld = false
        /// Counts what a waiting reader waits for (bytes, the end, the close), so that one that
        /// found nothing can tell whether something came before it began to wait.
        var changes: UInt64 = 0
        /// The socket's bytes go through a relay (part two): reads, writes and ends are refused.
        var relay: RelayRole?

        var socketState: SocketState {
            if closed || discarded { return .closed }
            if !active { return .opening }
            switch (inputEnded, outputEnded) {
            case (false, false): return .open
            case (true, false): return .writeOnly
            case (false, true): return .readOnly
            case (true, true): return .closed
            }
        }
    }

    /// What a `take` found, whether the socket's loop must read from the kernel again, and the
    /// ``State/changes`` it saw.
    struct Taken {
        var result: SocketReadMethod.Result?
        var resumeReading: Bool
        var changes: UInt64 = 0
    }

    let limit: Int
    private let state = Locked(State())

    init(limit: Int) {
        self.limit = limit
    }

    func withLock<T>(_ body: (inout State) throws -> T) rethrows -> T {
        try state.withLock { try body(&$0) }
    }

    /// The counters and state `socket.get` reports.
    var snapshot: (state: SocketState, bytesRead: Int64, bytesWritten: Int64, buffered: Int, failure: SocketFailure?) {
        state.withLock { ($0.socketState, $0.bytesRead, $0.bytesWritten, $0.unread.count, $0.failure) }
    }

    /// Takes up to `maxBytes` for `socket.read`; a nil result while there is nothing to hand out yet.
    func take(maxBytes: Int, encoding: DataEncoding, id: Int64) throws(NetdError) -> Taken {
        try state.withLock { state throws(NetdError) in
            if state.discarded {
                throw SocketErrors.invalidState("ERR_SOCKET_CLOSED", "socket \(id) is closed")
            }
            if let relay = state.relay { throw relay.refusal(id) }
            let ended = state.inputEnded || state.closed
            guard state.unread.count > 0 else {
                guard ended else { return Taken(result: nil, resumeReading: false, changes: state.changes) }
                if !state.eofDelivered || !state.closed {
                    state.eofDelivered = true
                    return Taken(result: SocketReadMethod.Result(data: "", encoding: encoding, bytes: 0, eof: true), resumeReading: false)
                }
                throw SocketErrors.invalidState("ERR_SOCKET_CLOSED", "socket \(id) is closed and everything it received has been read")
            }
            guard let (data, length) = try state.unread.take(maxBytes: maxBytes, encoding: encoding, ended: ended, id: id) else {
                return Taken(result: nil, resumeReading: false, changes: state.changes)
            }
            let resume = state.readHeld && state.unread.count < limit
            if resume { state.readHeld = false }
            let eof = ended && state.unread.count == 0
            if eof { state.eofDelivered = true }
            return Taken(result: SocketReadMethod.Result(data: data, encoding: encoding, bytes: length, eof: eof), resumeReading: resume)
        }
    }
}

/// How a socket's bytes travel once a relay has it (contract sections 9 and 10).
enum RelayRole: Sendable, Equatable {
    /// An RPC connection carries them (`socket.attach`).
    case attached
    /// Another socket does (`socket.pipe`, a forward).
    case piped
    /// Its descriptor went to a caller (`socket.handoff`): netd holds nothing of it any more.
    case handedOff

    /// The answer to `socket.read`, `socket.write` and `socket.end` meanwhile.
    func refusal(_ id: Int64) -> NetdError {
        switch self {
        case .attached:
            SocketErrors.invalidState("ERR_SOCKET_ATTACHED", "socket \(id) is attached: an RPC connection carries its bytes")
        case .piped:
            SocketErrors.invalidState("ERR_SOCKET_PIPED", "socket \(id) is piped to another socket, which carries its bytes")
        case .handedOff:
            SocketErrors.invalidState("ERR_SOCKET_CLOSED", "socket \(id) was handed off: its descriptor belongs to the process that took it")
        }
    }
}
