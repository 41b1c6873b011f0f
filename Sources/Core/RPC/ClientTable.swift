import NIOCore
import NetdProtocol
import NetdLocks

/// The RPC connections netd holds, so that shutdown can stop them reading and status can count them.
final class ClientTable: Sendable {
    private struct State {
        var channels: [Int: any Channel] = [:]
        /// The user of each connection, and how many each user has.
        var owners: [Int: UInt32] = [:]
        var perUser: [UInt32: Int] = [:]
        var nextID = 1
        var closing = false
    }

    private let state = Locked(State())
    /// `--max-clients`: connections at once, across all users.
    let limit: Int
    /// `--max-clients-per-user`: connections at once of one user.
    let perUserLimit: Int
    /// Requests in flight across every connection, and whether they read (`netd --replace`).
    let gate = RequestGate()

    init(limit: Int, perUserLimit: Int) {
        self.limit = limit
        self.perUserLimit = perUserLimit
    }

    enum Admission: Equatable {
        case admitted(id: Int)
        /// One limit or the other is reached; the connection is refused.
        case full(NetdLimit)
        case closing
    }

    /// Takes in a new connection of `uid` unless netd, or that user, is full, or netd is shutting down.
    func admit(_ channel: any Channel, uid: UInt32) -> Admission {
        state.withLock { state in
            if state.closing { return .closing }
            if state.channels.count >= limit { return .full(.maxClients) }
            let held = state.perUser[uid, default: 0]
            if held >= perUserLimit { return .full(.maxClientsPerUser) }
            let id = state.nextID
            state.nextID += 1
            state.channels[id] = channel
            state.owners[id] = uid
            state.perUser[uid] = held + 1
            return .admitted(id: id)
        }
    }

    func remove(_ id: Int) {
        state.withLock { state in
            state.channels[id] = nil
            guard let uid = state.owners.removeValue(forKey: id) else { return }
            state.perUser[uid, default: 1] -= 1
            if state.perUser[uid] == 0 { state.perUser[uid] = nil }
        }
    }

    var count: Int { state.withLock { $0.channels.count } }

    /// Connections held by each user.
    var perUser: [UInt32: Int] { state.withLock { $0.perUser } }

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
