import NIOCore
import Synchronization

/// The RPC connections netd holds, so that shutdown can stop them reading and status can count them.
final class ClientTable: Sendable {
    private struct State {
        var channels: [Int: any Channel] = [:]
        var nextID = 1
        var closing = false
    }

    private let state = Mutex(State())
    let limit: Int
    /// Requests in flight across every connection, and whether they read (`netd --replace`).
    let gate = RequestGate()

    init(limit: Int) {
        self.limit = limit
    }

    enum Admission {
        case admitted(id: Int)
        case full
        case closing
    }

    /// Takes in a new connection unless netd is full or shutting down.
    func admit(_ channel: any Channel) -> Admission {
        state.withLock { state in
            if state.closing { return .closing }
            if state.channels.count >= limit { return .full }
            let id = state.nextID
            state.nextID += 1
            state.channels[id] = channel
            return .admitted(id: id)
        }
    }

    func remove(_ id: Int) {
        _ = state.withLock { $0.channels.removeValue(forKey: id) }
    }

    var count: Int { state.withLock { $0.channels.count } }

    /// Stops every connection reading new requests; those in flight finish and are answered.
    func stopReading() {
        let channels = state.withLock { state in
            state.closing = true
            return Array(state.channels.values)
        }
        for channel in channels {
            channel.close(mode: .input, promise: nil)
        }
    }

    /// Stops every connection reading new requests, for `netd --replace`: returns once each
    /// connection's loop has finished what it was reading, so that every request read so far is
    /// counted in flight (``RequestGate``).
    func pauseReading() async {
        gate.setPaused(true)
        let loops = state.withLock { state in state.channels.values.map(\.eventLoop) }
        var seen: [ObjectIdentifier: any EventLoop] = [:]
        for loop in loops { seen[ObjectIdentifier(loop)] = loop }
        for loop in seen.values { try? await loop.submit {}.get() }
    }

    /// Lets every connection read requests again.
    func resumeReading() {
        gate.setPaused(false)
        let channels = state.withLock { Array($0.channels.values) }
        for channel in channels {
            channel.pipeline.fireUserInboundEventTriggered(RequestGate.Resume())
        }
    }
}
