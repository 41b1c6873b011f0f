import Synchronization

/// The requests one RPC connection has in flight: how many (to refuse one beyond
/// `--max-requests-per-client`), and when the connection's serving task may stop waiting for them.
///
/// A request whose client has gone is cancelled, so that a `socket.read` or `server.accept`
/// waiting for it takes nothing that nobody would receive. A client that only half-closes (sends
/// EOF and keeps reading) still gets every answer.
final class RequestScope: Sendable {
    /// Why ``waitForEnd()`` returned: every request answered after the input ended, or the
    /// connection went away, in which case the requests still waiting are cancelled.
    struct ClientGone: Error {}

    private enum Event { case idle, gone }

    private struct State {
        var inFlight = 0
        var inputEnded = false
    }

    let limit: Int
    private let state = Mutex(State())
    private let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation

    init(limit: Int) {
        self.limit = limit
        (events, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(4))
    }

    /// Counts `calls` more requests in, unless that would take the connection past its limit.
    func admit(_ calls: Int) -> Bool {
        state.withLock { state in
            guard state.inFlight + calls <= limit else { return false }
            state.inFlight += calls
            return true
        }
    }

    /// `calls` requests were answered (or were notifications, done).
    func finished(_ calls: Int) {
        let idle = state.withLock { state in
            state.inFlight -= calls
            return state.inputEnded && state.inFlight == 0
        }
        if idle { continuation.yield(.idle) }
    }

    /// The client sent its last request.
    func inputEnded() {
        let idle = state.withLock { state in
            state.inputEnded = true
            return state.inFlight == 0
        }
        if idle { continuation.yield(.idle) }
    }

    /// The connection closed: whatever is still in flight has nobody to answer.
    func connectionClosed() {
        continuation.yield(.gone)
    }

    /// Returns once every request is answered after the input ended; throws ``ClientGone`` when
    /// the connection closes first, which cancels its task group's other tasks.
    func waitForEnd() async throws {
        for await event in events {
            switch event {
            case .idle: return
            case .gone: throw ClientGone()
            }
        }
    }
}
