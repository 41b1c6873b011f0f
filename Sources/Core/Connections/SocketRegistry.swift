import Foundation
import NetdProtocol
import NetdLocks

/// The sockets and servers netd holds: who owns each, the live-socket places of each user, and
/// which closed sockets stay in memory for `socket.get`. Sockets belong to the user who opened
/// them, not to an RPC connection: any connection of that user (or an admin) may use them, and
/// -32001 answers everyone else exactly as it answers an id that never existed.
final class SocketRegistry: Sendable {
    private struct Registry {
        var sockets: [Int64: ManagedSocket] = [:]
        var servers: [Int64: ManagedServer] = [:]
        var liveSockets = 0
        var livePerUser: [UInt32: Int] = [:]
        /// Listening servers of each user, and those being opened.
        var serversPerUser: [UInt32: Int] = [:]
        /// Sockets whose close was seen before they were registered.
        var closedEarly: Set<Int64> = []
        /// Closed sockets by id, so that they can be released; oldest first.
        var closedOrder: [Int64] = []
    }

    private let registry = Locked(Registry())
    private let socketsPerUser: Int
    private let serversPerUser: Int
    /// Closed sockets kept in memory for `socket.get`; older ones are answered from the database.
    private let closedKept = 4096

    init(socketsPerUser: Int, serversPerUser: Int) {
        self.socketsPerUser = socketsPerUser
        self.serversPerUser = serversPerUser
    }

    // MARK: Counts

    /// Live sockets and listening servers, across all users.
    var counts: (sockets: Int, servers: Int) {
        registry.withLock { registry in
            (registry.liveSockets, registry.servers.values.filter { !$0.isClosed }.count)
        }
    }

    /// Live sockets and listening servers of each user.
    var perUser: (sockets: [UInt32: Int], servers: [UInt32: Int]) {
        registry.withLock { ($0.livePerUser, $0.serversPerUser) }
    }

    // MARK: Ownership

    static func visible(_ owner: Owner, to context: RequestContext) -> Bool {
        context.isAdmin || owner.uid == context.peer.uid
    }

    func socket(_ id: Int64, for context: RequestContext) throws(NetdError) -> ManagedSocket {
        guard let socket = registry.withLock({ $0.sockets[id] }), Self.visible(socket.owner, to: context) else {
            throw NetdError.notFound("no socket \(id)")
        }
        return socket
    }

    func server(_ id: Int64, for context: RequestContext) throws(NetdError) -> ManagedServer {
        guard let server = registry.withLock({ $0.servers[id] }), Self.visible(server.owner, to: context) else {
            throw NetdError.notFound("no server \(id)")
        }
        return server
    }

    /// The socket or the server with this id, if held.
    func held(_ id: Int64) -> (ManagedSocket?, ManagedServer?) {
        registry.withLock { ($0.sockets[id], $0.servers[id]) }
    }

    /// Everything held, for shutdown.
    func all() -> (sockets: [ManagedSocket], servers: [ManagedServer]) {
        registry.withLock { (Array($0.sockets.values), Array($0.servers.values)) }
    }

    func sockets(for context: RequestContext) -> [ManagedSocket] {
        registry.withLock { Array($0.sockets.values) }.filter { Self.visible($0.owner, to: context) }.sorted { $0.id < $1.id }
    }

    func servers(for context: RequestContext) -> [ManagedServer] {
        registry.withLock { Array($0.servers.values) }.filter { Self.visible($0.owner, to: context) }.sorted { $0.id < $1.id }
    }

    // MARK: Registration

    /// Forgets everything at once, places included: it all went to another netd (`netd --replace`).
    func removeAll() {
        registry.withLock { $0 = Registry() }
    }

    /// A socket that came over closed, for its unread bytes alone: it holds no place.
    func registerClosed(_ socket: ManagedSocket, closedAt: String) {
        registry.withLock { registry in
            registry.sockets[socket.id] = socket
            registry.closedOrder.append(socket.id)
        }
        socket.markClosed(at: closedAt)
    }

    /// Takes one of a user's live-socket places; -32007 when they have none left.
    func reservePlace(for uid: UInt32) throws(NetdError) {
        let granted = registry.withLock { registry in
            let held = registry.livePerUser[uid, default: 0]
            guard held < socketsPerUser else { return false }
            registry.livePerUser[uid] = held + 1
            registry.liveSockets += 1
            return true
        }
        guard granted else {
            throw NetdError.limit(
                code: "EMFILE", "user \(uid) holds \(socketsPerUser) sockets already (--max-sockets-per-user)",
                limit: .maxSocketsPerUser, max: socketsPerUser)
        }
    }

    /// Takes one of a user's server places, before the server is opened; -32007 when they have none left.
    /// ``releaseServerPlace(for:)`` gives it back when the server closes or fails to open.
    func reserveServerPlace(for uid: UInt32) throws(NetdError) {
        let granted = registry.withLock { registry in
            let held = registry.serversPerUser[uid, default: 0]
            guard held < serversPerUser else { return false }
            registry.serversPerUser[uid] = held + 1
            return true
        }
        guard granted else {
            throw NetdError.limit(
                code: "EMFILE", "user \(uid) holds \(serversPerUser) listening servers already (--max-servers-per-user); close one",
                limit: .maxServersPerUser, max: serversPerUser)
        }
    }

    /// Takes a server place whatever the limit: a server that came over with `netd --replace`.
    func takeServerPlace(for uid: UInt32) {
        registry.withLock { $0.serversPerUser[uid, default: 0] += 1 }
    }

    func releaseServerPlace(for uid: UInt32) {
        registry.withLock { registry in
            registry.serversPerUser[uid, default: 1] -= 1
            if registry.serversPerUser[uid] == 0 { registry.serversPerUser[uid] = nil }
        }
    }

    func releasePlace(for uid: UInt32) {
        registry.withLock { registry in
            registry.livePerUser[uid, default: 1] -= 1
            if registry.livePerUser[uid] == 0 { registry.livePerUser[uid] = nil }
            registry.liveSockets -= 1
        }
    }

    func register(_ socket: ManagedSocket) {
        let closedAlready = registry.withLock { registry in
            registry.sockets[socket.id] = socket
            return registry.closedEarly.remove(socket.id) != nil
        }
        if closedAlready { socketClosed(socket.id, owner: socket.owner, serverID: socket.serverID) }
    }

    func register(_ server: ManagedServer) {
        registry.withLock { $0.servers[server.id] = server }
    }

    /// Releases the socket's place, and keeps only the newest closed sockets in memory.
    func socketClosed(_ id: Int64, owner: Owner, serverID: Int64?) {
        let (socket, evicted): (ManagedSocket?, [Int64]) = registry.withLock { registry in
            guard let socket = registry.sockets[id] else {
                registry.closedEarly.insert(id)
                return (nil, [])
            }
            registry.closedOrder.append(id)
            var evicted: [Int64] = []
            if registry.closedOrder.count > closedKept {
                evicted = Array(registry.closedOrder.prefix(registry.closedOrder.count - closedKept))
                registry.closedOrder.removeFirst(evicted.count)
            }
            return (socket, evicted)
        }
        guard let socket else { return }
        releasePlace(for: owner.uid)
        if let serverID, let server = registry.withLock({ $0.servers[serverID] }) { server.connectionClosed() }
        socket.markClosed(at: Ledger.now())
        for id in evicted { forget(id) }
    }

    /// Drops an old closed socket from memory once nothing is left to read; `socket.get` then reads history.
    private func forget(_ id: Int64) {
        guard let socket = registry.withLock({ $0.sockets[id] }) else { return }
        Task {
            if socket.isDrainedAndClosed {
                _ = registry.withLock { $0.sockets.removeValue(forKey: id) }
            }
        }
    }

    /// Drops from memory the closed sockets and servers whose records `history.prune` (or
    /// `--retain`) deleted, so that they are gone everywhere: -32001 from then on. A closed socket
    /// that still holds unread bytes stays until they are read.
    func forgetPruned(closedBefore cutoff: String, ownerUID: UInt32?) async {
        let (sockets, servers) = registry.withLock { registry in
            (
                registry.sockets.values.filter { socket in
                    (ownerUID.map { socket.owner.uid == $0 } ?? true) && socket.closedTime.map { $0 < cutoff } == true
                },
                registry.servers.values.filter { server in
                    (ownerUID.map { server.owner.uid == $0 } ?? true) && server.info().closedAt.map { $0 < cutoff } == true
                }
            )
        }
        var drained: [Int64] = []
        for socket in sockets where socket.isDrainedAndClosed { drained.append(socket.id) }
        registry.withLock { registry in
            for id in drained { registry.sockets[id] = nil }
            for server in servers { registry.servers[server.id] = nil }
        }
    }
}
