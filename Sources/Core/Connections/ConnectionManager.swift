import Foundation
import Logging
import NIOCore
import NIOPosix
import NetdProtocol
import NetdRelay
import NetdStore
import Synchronization

/// Every socket and server netd holds, who owns each, and their history. Sockets belong to the
/// user who opened them, not to an RPC connection: any connection of that user (or an admin) may
/// use them, and -32001 answers everyone else exactly as it answers an id that never existed.
public final class ConnectionManager: Sendable {
    public struct Limits: Sendable {
        /// Unread bytes a socket keeps before netd stops reading from the kernel.
        public var socketBufferBytes = 1 << 20
        /// Live sockets (client and accepted) one user may hold.
        public var socketsPerUser = 16384
        /// Listening servers one user may hold.
        public var serversPerUser = 1024
        /// Accepted sockets a server keeps for `server.accept` before it stops accepting.
        public var pendingPerServer = 128
        /// Relay loops (threads) that move the bytes of attached, piped and forwarded sockets.
        public var relayThreads = max(1, ProcessInfo.processInfo.activeProcessorCount)
        /// The capacity of each relay pipe (0: the kernel's default, 64 KiB); it bounds the bytes
        /// netd holds in flight per direction of a relayed pair, and never exceeds `socketBufferBytes`.
        /// 256 KiB moves a connection 30% faster than 64 KiB here (docs/BENCHMARKS.md, relay), as
        /// each splice moves four times as much.
        public var relayPipeBytes = 256 << 10

        public init() {}
    }

    /// What happens to sockets and servers, as history and events.
    let ledger: Ledger
    let store: HistoryStore
    let limits: Limits
    let logger: Logger
    let group: any EventLoopGroup
    /// The sockets and servers held, with their owners and the limits on them.
    let registry: SocketRegistry
    /// The relay loops that carry attached, piped and forwarded sockets.
    let relay: Relay
    /// The faults users added (contract section 12), and the pairs they act on.
    let faults = FaultBook()
    /// netd is being replaced (contract section 13): waits end at once, and none begin.
    private let quiescing = Atomic<Bool>(false)

    var isQuiescing: Bool { quiescing.load(ordering: .acquiring) }

    func setQuiescing(_ on: Bool) {
        quiescing.store(on, ordering: .releasing)
    }

    /// Connects by outcome and bytes of closed sockets, for `--metrics`.
    let metrics: NetdMetrics

    init(
        store: HistoryStore, history: HistoryWriter, events: EventHub, limits: Limits, metrics: NetdMetrics = NetdMetrics(), logger: Logger
    ) throws {
        self.metrics = metrics
        self.store = store
        self.ledger = Ledger(history: history, events: events)
        self.limits = limits
        self.registry = SocketRegistry(socketsPerUser: limits.socketsPerUser, serversPerUser: limits.serversPerUser)
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup.singleton
        self.relay = try Relay(threads: limits.relayThreads, pipeBytes: min(limits.relayPipeBytes, limits.socketBufferBytes))
    }

    /// A new record's id and opening time (``HistoryStore/allocate()``).
    func allocate() -> (id: Int64, openedAt: String) {
        store.allocate()
    }

    /// A socket that is no longer held in memory, from the history database.
    func archivedSocket(_ id: Int64, for context: RequestContext) async throws(NetdError) -> SocketInfo {
        guard case .socket(let socket) = try await historyRecord(id, for: context) else {
            throw NetdError.notFound("no socket \(id)")
        }
        return socket
    }

    /// A record of history in the API's shape, as it is now: from memory while netd holds it
    /// (exact counts), else from the database. -32001 if it never existed or is not the caller's.
    func historyRecord(_ id: Int64, for context: RequestContext) async throws(NetdError) -> HistoryRecord {
        if let held = await heldRecord(id), SocketRegistry.visible(held.owner, to: context) { return held.record }
        let record: ConnectionRecord?
        do {
            record = try await store.record(id: id)
        } catch {
            throw NetdError.historyUnavailable("\(error)")
        }
        guard let record, context.isAdmin || record.ownerUID == context.peer.uid else {
            throw NetdError.notFound("no record \(id)")
        }
        return HistoryRecord(record)
    }

    /// The socket or server with this id if netd still holds it, in the API's shape.
    func heldRecord(_ id: Int64) async -> (record: HistoryRecord, owner: Owner)? {
        let (socket, server) = registry.held(id)
        if let socket { return (.socket(socket.info()), socket.owner) }
        if let server { return (.server(server.info()), server.owner) }
        return nil
    }

    // MARK: Signals from sockets

    /// What a socket's handler reports, turned into history, events and bookkeeping.
    func signalHandler(id: Int64, owner: Owner, serverID: Int64?) -> @Sendable (SocketSignal) -> Void {
        { [weak self] signal in self?.handle(signal, id: id, owner: owner, serverID: serverID) }
    }

    private func handle(_ signal: SocketSignal, id: Int64, owner: Owner, serverID: Int64?) {
        switch signal {
        case .data(let bytes, let read, let written): ledger.data(id, owner: owner, bytes: bytes, read: read, written: written)
        case .wrote(let read, let written): ledger.wrote(id, read: read, written: written)
        case .peerEnded: ledger.peerEnded(id, owner: owner)
        case .failed(let failure): ledger.failed(id, owner: owner, failure)
        case .idle: ledger.idle(id, owner: owner)
        case .fault(let fault, let detail):
            if let type = faults.type(of: fault) { ledger.fault(id, owner: owner, fault: fault, type: type, detail: detail) }
        case .closed(let hadError, let read, let written):
            ledger.closed(id, owner: owner, hadError: hadError, read: read, written: written)
            metrics.closed(read: read, written: written)
            registry.socketClosed(id, owner: owner, serverID: serverID)
        }
    }

    /// Stops a server listening and records it; nothing happens if it was closed already.
    func close(_ server: ManagedServer) async {
        let now = Ledger.now()
        guard await server.close(at: now) else { return }
        registry.releaseServerPlace(for: server.owner.uid)
        ledger.serverClosed(server.id, owner: server.owner, accepted: server.acceptedCount, at: now)
    }

    // MARK: Shutdown

    /// Closes every socket and server, for netd's shutdown; their records close as usual.
    func closeAll() async {
        let (sockets, servers) = registry.all()
        for server in servers { await close(server) }
        for socket in sockets { socket.closeNow() }
        for socket in sockets { try? await socket.channel.closeFuture.get() }
        // Relayed sockets close here, their records with them.
        relay.shutdown()
    }
}

extension SocketInfo {
    /// A socket from its history record.
    init(_ record: ConnectionRecord) {
        self.init(
            id: record.id, role: record.role, kind: record.kind, state: SocketState(rawValue: record.state.rawValue) ?? .closed, local: record.localEndpoint, remote: record.remoteEndpoint,
            host: record.host, server: record.serverID, label: record.label, owner: record.owner,
            bytesRead: record.bytesRead, bytesWritten: record.bytesWritten, buffered: 0, openedAt: record.openedAt,
            closedAt: record.closedAt, error: record.failure, peer: record.peerID)
    }
}

extension ServerInfo {
    /// A server from its history record; live counts (`connections`, `pending`) are 0 there.
    init(_ record: ConnectionRecord) {
        self.init(
            id: record.id, kind: record.kind, state: ServerState(rawValue: record.state.rawValue) ?? .closed, local: record.localEndpoint,
            backlog: record.backlog ?? 0, connections: 0, accepted: record.accepted ?? 0, pending: 0,
            maxConnections: record.maxConnections, label: record.label, owner: record.owner,
            openedAt: record.openedAt, closedAt: record.closedAt, error: record.failure,
            forward: record.forward.flatMap { try? JSONDecoder().decode(ForwardTarget.self, from: Data($0.utf8)) })
    }
}

extension HistoryRecord {
    init(_ record: ConnectionRecord) {
        self = record.role == .server ? .server(ServerInfo(record)) : .socket(SocketInfo(record))
    }
}

extension ConnectionRecord {
    var localEndpoint: Endpoint? {
        localPath.map(Endpoint.unix) ?? localAddress.flatMap { address in localPort.map { .tcp(address, $0) } }
    }

    /// A connect that never got through has only the port it was asked for: `{"port": 6379}`.
    var remoteEndpoint: Endpoint? {
        if let remotePath { return .unix(remotePath) }
        guard let remotePort else { return nil }
        return remoteAddress.map { .tcp($0, remotePort) } ?? Endpoint(port: remotePort)
    }

    var owner: Owner { Owner(uid: ownerUID, pid: ownerPID ?? 0) }

    var failure: SocketFailure? { errorCode.map { SocketFailure(code: $0, message: errorMessage ?? $0) } }
}
