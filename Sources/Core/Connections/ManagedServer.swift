import NIOCore
import NetdProtocol

#if canImport(Glibc)
import Glibc
import NetdLocks
#endif

/// A listening server netd holds for a user, with its queue of accepted sockets no client has
/// claimed yet. While that queue is full the server stops accepting, so connections wait in the
/// kernel's backlog instead of piling up in netd.
final class ManagedServer: Sendable {
    let id: Int64
    let kind: Kind
    let owner: Owner
    let label: String?
    let openedAt: String
    let backlog: Int
    let maxConnections: Int?
    let pendingLimit: Int
    let options: AcceptedOptions
    /// Part two: every accepted connection is relayed to this target.
    let forward: ForwardTarget?
    /// Part two: the row of `persisted_listens` this server listens for, if any.
    let persistedID: Int64?

    /// What accepted sockets inherit from the server.
    struct AcceptedOptions: Sendable, Codable {
        var allowHalfOpen: Bool
        var noDelay: Bool
        var keepAlive: Bool
    }

    private struct State {
        var channel: (any Channel)?
        var local: Endpoint?
        var socketFile: SocketFile?
        var pending: [ManagedSocket] = []
        var waiters: [(token: UInt64, continuation: CheckedContinuation<ManagedSocket?, Never>)] = []
        var nextToken: UInt64 = 0
        var live = 0
        var accepted: Int64 = 0
        /// Connections taken from the kernel and not yet claimed (being set up, or in `pending`).
        var unclaimed = 0
        var paused = false
        var closedAt: String?
        var handedOff: Owner?
    }

    private let state = Locked(State())

    init(
        id: Int64, kind: Kind, owner: Owner, label: String?, openedAt: String, backlog: Int,
        maxConnections: Int?, pendingLimit: Int, options: AcceptedOptions, forward: ForwardTarget? = nil, persistedID: Int64? = nil
    ) {
        self.forward = forward
        self.persistedID = persistedID
        self.id = id
        self.kind = kind
        self.owner = owner
        self.label = label
        self.openedAt = openedAt
        self.backlog = backlog
        self.maxConnections = maxConnections
        self.pendingLimit = pendingLimit
        self.options = options
    }

    func attach(_ channel: any Channel, local: Endpoint?, socketFile: SocketFile?) {
        state.withLock {
            $0.channel = channel
            $0.local = local
            $0.socketFile = socketFile
        }
    }

    var local: Endpoint? { state.withLock { $0.local } }
    var isClosed: Bool { state.withLock { $0.closedAt != nil } }

    /// Counts a new connection in, unless `maxConnections` live ones are already open.
    func admit() -> Bool {
        state.withLock { state in
            if state.closedAt != nil { return false }
            if let maxConnections, state.live >= maxConnections { return false }
            state.live += 1
            state.accepted += 1
            return true
        }
    }

    /// The total accepted so far.
    var acceptedCount: Int64 { state.withLock { $0.accepted } }

    /// Counts a connection the kernel just handed over (on the server's event loop); true when
    /// the server now holds its limit of unclaimed ones and must stop accepting.
    func countAccepted() -> Bool {
        state.withLock { state in
            state.unclaimed += 1
            guard state.unclaimed >= pendingLimit, !state.paused else { return false }
            state.paused = true
            return true
        }
    }

    /// A counted connection was refused (`maxConnections`, the user's limit) instead of delivered.
    func dropUnclaimed() {
        state.withLock { $0.unclaimed = max(0, $0.unclaimed - 1) }
        resumeAcceptingIfRoom()
    }

    /// A forward took a newly accepted socket for itself: it is not waiting for `server.accept`.
    func forwarded() {
        dropUnclaimed()
    }

    /// Hands a newly accepted socket to the oldest waiting `server.accept`, or queues it.
    func deliver(_ socket: ManagedSocket) {
        let waiter = state.withLock { state -> CheckedContinuation<ManagedSocket?, Never>? in
            if !state.waiters.isEmpty {
                state.unclaimed = max(0, state.unclaimed - 1)
                return state.waiters.removeFirst().continuation
            }
            state.pending.append(socket)
            return nil
        }
        guard let waiter else { return }
        waiter.resume(returning: socket)
        resumeAcceptingIfRoom()
    }

    func connectionClosed() {
        state.withLock { $0.live = max(0, $0.live - 1) }
    }

    /// `server.accept`: the oldest unclaimed socket, waiting up to `wait` for one.
    func claim(wait: Duration) async -> ManagedSocket? {
        if let socket = takePending() { return socket }
        guard wait > .zero, let loop = state.withLock({ $0.channel?.eventLoop }) else { return nil }
        let token = state.withLock { state -> UInt64 in
            state.nextToken += 1
            return state.nextToken
        }
        let nanoseconds = wait.components.seconds * 1_000_000_000 + wait.components.attoseconds / 1_000_000_000
        let socket = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready: ManagedSocket? = state.withLock { state in
                    if !state.pending.isEmpty {
                        state.unclaimed = max(0, state.unclaimed - 1)
                        return state.pending.removeFirst()
                    }
                    state.waiters.append((token, continuation))
                    return nil
                }
                if let ready {
                    continuation.resume(returning: ready)
                    resumeAcceptingIfRoom()
                    return
                }
                // The task's cancelled flag is set before its handler runs: a cancellation that
                // came before the waiter was listed is seen here, one after it finds the waiter.
                if Task.isCancelled { return self.expire(token) }
                loop.scheduleTask(in: .nanoseconds(nanoseconds)) { self.expire(token) }
            }
        } onCancel: {
            self.expire(token)
        }
        // Handed a socket just as the caller went away: it goes back first in line, unclaimed.
        if let socket, Task.isCancelled {
            giveBack(socket)
            return nil
        }
        return socket
    }

    /// Puts a socket whose claimer went away back at the head of the queue, or to the next waiter.
    private func giveBack(_ socket: ManagedSocket) {
        let waiter = state.withLock { state -> CheckedContinuation<ManagedSocket?, Never>? in
            if !state.waiters.isEmpty { return state.waiters.removeFirst().continuation }
            state.unclaimed += 1
            state.pending.insert(socket, at: 0)
            return nil
        }
        waiter?.resume(returning: socket)
    }

    private func expire(_ token: UInt64) {
        let waiter = state.withLock { state -> CheckedContinuation<ManagedSocket?, Never>? in
            guard let index = state.waiters.firstIndex(where: { $0.token == token }) else { return nil }
            return state.waiters.remove(at: index).continuation
        }
        waiter?.resume(returning: nil)
    }

    private func takePending() -> ManagedSocket? {
        let socket = state.withLock { state -> ManagedSocket? in
            guard !state.pending.isEmpty else { return nil }
            state.unclaimed = max(0, state.unclaimed - 1)
            return state.pending.removeFirst()
        }
        if socket != nil { resumeAcceptingIfRoom() }
        return socket
    }

    private func resumeAcceptingIfRoom() {
        let channel = state.withLock { state -> (any Channel)? in
            guard state.paused, state.unclaimed < pendingLimit, state.closedAt == nil else { return nil }
            state.paused = false
            return state.channel
        }
        channel?.setOption(.autoRead, value: true).whenComplete { _ in }
    }

    /// `server.handoff`: a close-on-exec duplicate of the listening descriptor for `taker`, then
    /// NIO's channel closed (its own descriptor only) without removing the socket file, which
    /// belongs to the new owner now; nil if the server was closed already.
    func handOff(to taker: Owner, at time: String) async -> CInt? {
        let (channel, waiters) = state.withLock { state -> ((any Channel)?, [CheckedContinuation<ManagedSocket?, Never>]) in
            guard state.closedAt == nil else { return (nil, []) }
            state.closedAt = time
            state.handedOff = taker
            defer { state.waiters.removeAll() }
            return (state.channel, state.waiters.map(\.continuation))
        }
        for waiter in waiters { waiter.resume(returning: nil) }
        guard let channel else { return nil }
        let duplicate = try? await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.withUnsafeTransportIfAvailable(of: NIOBSDSocket.Handle.self) { fcntl($0, F_DUPFD_CLOEXEC, 0) }
        }.get()
        try? await channel.close()
        guard let descriptor = duplicate ?? nil, descriptor >= 0 else { return nil }
        return descriptor
    }

    // MARK: Replace (contract section 13)

    /// Answers every waiting `server.accept` now, with no socket, as if its wait had run out.
    func expireWaiters() {
        let waiters = state.withLock { state -> [CheckedContinuation<ManagedSocket?, Never>] in
            defer { state.waiters.removeAll() }
            return state.waiters.map(\.continuation)
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }

    /// Takes the server out for another netd: a close-on-exec duplicate of the listening
    /// descriptor, NIO's channel closed (its own descriptor only, the socket file stays), and
    /// what it holds; nil if it is closed. Nothing is recorded: the record goes on elsewhere.
    func carry() async -> (descriptor: CInt, server: CarriedServer, pending: [ManagedSocket])? {
        let taken = state.withLock { state -> ((any Channel), CarriedServer, [ManagedSocket])? in
            guard state.closedAt == nil, let channel = state.channel else { return nil }
            state.closedAt = Ledger.now()
            let carried = CarriedServer(
                id: id, kind: kind, owner: owner, label: label, openedAt: openedAt, backlog: backlog,
                maxConnections: maxConnections, options: options, forward: forward, persistedID: persistedID,
                local: state.local, socketPath: state.socketFile?.path, accepted: state.accepted, live: state.live,
                pending: state.pending.map(\.id), descriptor: -1)
            return (channel, carried, state.pending)
        }
        guard let (channel, carried, pending) = taken else { return nil }
        expireWaiters()
        let duplicate = try? await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.withUnsafeTransportIfAvailable(of: NIOBSDSocket.Handle.self) { fcntl($0, F_DUPFD_CLOEXEC, 0) }
        }.get()
        try? await channel.close()
        guard let descriptor = duplicate ?? nil, descriptor >= 0 else { return nil }
        return (descriptor, carried, pending)
    }

    /// Stops or starts taking connections from the kernel's backlog; while the accept gate holds
    /// the server (its queue is full), starting waits for the gate.
    func setAccepting(_ accepting: Bool) {
        let channel = state.withLock { state -> (any Channel)? in
            guard state.closedAt == nil, !(accepting && state.paused) else { return nil }
            return state.channel
        }
        channel?.setOption(.autoRead, value: accepting).whenComplete { _ in }
    }

    /// Counts and queue as another netd left them: `pending` wait for `server.accept`, in order.
    func restore(accepted: Int64, live: Int, pending: [ManagedSocket]) {
        state.withLock { state in
            state.accepted = accepted
            state.live = live
            state.pending = pending
            state.unclaimed = pending.count
        }
    }

    /// Stops listening and removes its socket file; returns false if it was already closed.
    @discardableResult
    func close(at time: String) async -> Bool {
        let (channel, socketFile, waiters) = state.withLock { state -> ((any Channel)?, SocketFile?, [CheckedContinuation<ManagedSocket?, Never>]) in
            guard state.closedAt == nil else { return (nil, nil, []) }
            state.closedAt = time
            defer { state.waiters.removeAll() }
            return (state.channel, state.socketFile, state.waiters.map(\.continuation))
        }
        for waiter in waiters { waiter.resume(returning: nil) }
        guard let channel else { return false }
        try? await channel.close()
        socketFile?.remove()
        return true
    }

    func info() -> ServerInfo {
        state.withLock { state in
            ServerInfo(
                id: id, kind: kind, state: state.closedAt == nil ? .listening : .closed, local: state.local,
                backlog: backlog, connections: state.live, accepted: state.accepted, pending: state.pending.count,
                maxConnections: maxConnections, label: label, owner: owner, openedAt: openedAt,
                closedAt: state.closedAt, error: nil, forward: forward, persist: persistedID != nil ? true : nil,
                handedOff: state.handedOff, waiting: state.waiters.isEmpty ? nil : state.waiters.count)
        }
    }
}
