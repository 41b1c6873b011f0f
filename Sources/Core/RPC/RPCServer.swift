import Foundation
import Logging
import NIOCore
import NIOPosix
import NetdFraming
import NetdProtocol
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// netd's listening socket: accepts RPC clients, reads each one's credentials, and serves them
/// until graceful shutdown, which stops accepting, stops reading, lets requests in flight finish,
/// and removes the socket file.
public final class RPCServer: Service, Sendable {
    /// An accepted RPC client: its channel, with an ``RPCConnection`` waiting to be started.
    typealias ClientChannel = any Channel

    private let listener: NIOAsyncChannel<ClientChannel, Never>
    private let socketFile: SocketFile
    private let clients: ClientTable
    private let access: AccessPolicy
    private let logger: Logger
    /// Told when an RPC connection ends, so that what it subscribed to ends with it.
    private let onDisconnect: @Sendable (Int) -> Void

    var clientCount: Int { clients.count }

    /// Whether systemd bound the listening socket (socket activation).
    let isActivated: Bool

    /// The socket file stays when netd stops: it was handed to the netd that replaced this one.
    private let keepsSocketFile = Atomic<Bool>(false)

    /// A listening socket netd did not bind itself.
    enum Inherited {
        /// From the netd this one replaced: its file is this netd's to remove when it stops.
        case handedOver(CInt)
        /// From systemd (socket activation): its file is systemd's, never removed by netd.
        case activated(CInt)
    }

    /// Binds the socket, refusing a live one or a path that is not a socket; or, with
    /// `listener`, serves on a listening descriptor it was given.
    static func bind(
        configuration: NetdConfiguration,
        dispatcher: Dispatcher,
        clients: ClientTable,
        listener inherited: Inherited? = nil,
        onDisconnect: @escaping @Sendable (Int) -> Void,
        logger: Logger
    ) async throws -> RPCServer {
        var socketFile = SocketFile(path: configuration.socketPath)
        let fd: CInt
        let adopted: CInt?
        switch inherited {
        case .handedOver(let descriptor):
            socketFile = SocketFile.adopting(configuration.socketPath)
            (fd, adopted) = (descriptor, descriptor)
        case .activated(let descriptor):
            // A SocketFile that never bound anything removes nothing.
            (fd, adopted) = (descriptor, descriptor)
        case nil:
            try socketFile.prepare(createFolder: true)
            fd = try socketFile.bindListening(mode: configuration.socketMode)
            adopted = nil
        }
        let maxMessageBytes = configuration.maxMessageBytes
        let gate = clients.gate
        let listener: NIOAsyncChannel<ClientChannel, Never>
        do {
            listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.backlog, value: 1024)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                // Nothing is read before the caller is known and admitted (RPCConnection.start).
                .childChannelOption(.autoRead, value: false)
                .bind(fd) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            RPCConnection(
                                dispatcher: dispatcher, eventLoop: channel.eventLoop,
                                maxRequests: configuration.maxRequestsPerClient, maxLineBytes: maxMessageBytes, gate: gate,
                                lineTimeout: configuration.rpcIdleTimeout.map { .nanoseconds(Int64($0.components.seconds) * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000) }))
                        return channel
                    }
                }
        } catch {
            if adopted == nil { socketFile.remove() }
            throw error
        }
        var isActivated = false
        if case .activated = inherited { isActivated = true }
        return RPCServer(
            listener: listener, isActivated: isActivated, socketFile: socketFile, clients: clients, access: configuration.access, onDisconnect: onDisconnect, logger: logger)
    }

    private init(
        listener: NIOAsyncChannel<ClientChannel, Never>, isActivated: Bool, socketFile: SocketFile, clients: ClientTable, access: AccessPolicy,
        onDisconnect: @escaping @Sendable (Int) -> Void, logger: Logger
    ) {
        self.access = access
        self.onDisconnect = onDisconnect
        self.listener = listener
        self.isActivated = isActivated
        self.socketFile = socketFile
        self.clients = clients
        self.logger = logger
    }

    public func run() async throws {
        defer { if !keepsSocketFile.load(ordering: .acquiring) { socketFile.remove() } }
        logger.info("listening", metadata: ["rpc.socket": "\(socketFile.path)"])
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await listener.executeThenClose { inbound in
                    for try await client in inbound {
                        group.addTask(executorPreference: EventLoopTaskExecutor(client.eventLoop)) {
                            await self.serve(client)
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            self.logger.info("shutting down: no new clients, finishing requests in flight")
            self.listener.channel.close(promise: nil)
            self.clients.stopReading()
        }
        logger.info("stopped listening", metadata: ["rpc.socket": "\(socketFile.path)"])
    }

    // MARK: Replace (contract section 13)

    /// Stops or starts accepting RPC clients: meanwhile they wait in the listening socket's backlog.
    func setAccepting(_ accepting: Bool) async {
        try? await listener.channel.setOption(.autoRead, value: accepting).get()
    }

    /// A close-on-exec duplicate of the listening descriptor, for the netd that replaces this one.
    func duplicateListener() async -> CInt? {
        let channel = listener.channel
        let duplicate = try? await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.withUnsafeTransportIfAvailable(of: NIOBSDSocket.Handle.self) { fcntl($0, F_DUPFD_CLOEXEC, 0) }
        }.get()
        guard let descriptor = duplicate ?? nil, descriptor >= 0 else { return nil }
        return descriptor
    }

    /// The socket file belongs to the netd that replaced this one: leave it when stopping.
    func keepSocketFile() {
        keepsSocketFile.store(true, ordering: .releasing)
    }

    /// Serves one RPC client until it hangs up or netd shuts down (then once its requests in
    /// flight are answered). Never throws: one client's trouble is never the server's.
    private func serve(_ client: ClientChannel) async {
        let peer: PeerCredentials
        do {
            peer = try await PeerCredentials.read(from: client)
        } catch {
            logger.warning("cannot read an RPC client's credentials; closing it", metadata: ["error": "\(error)"])
            try? await client.close()
            return
        }
        let groups = await PeerCredentials.groups(of: client, primary: peer.gid)
        let decision = access.decide(uid: peer.uid, groups: groups)
        guard decision != .refused else {
            await refuse(client, peer: peer)
            return
        }
        let connectionID: Int
        switch clients.admit(client, uid: peer.uid) {
        case .admitted(let id):
            connectionID = id
        case .closing:
            try? await client.close()
            return
        case .full(let limit):
            await refuseFull(client, peer: peer, limit: limit)
            return
        }
        defer {
            clients.remove(connectionID)
            onDisconnect(connectionID)
        }

        var logger = self.logger
        logger[metadataKey: "rpc.client.pid"] = "\(peer.pid)"
        logger[metadataKey: "rpc.client.uid"] = "\(peer.uid)"
        logger[metadataKey: "rpc.connection"] = "\(connectionID)"
        logger.debug("client connected")
        let loop = client.eventLoop
        do {
            let (connection, outbox) = try await loop.submit {
                let handler = try client.pipeline.syncOperations.handler(type: RPCConnection.self)
                return (NIOLoopBound(handler, eventLoop: loop), handler.outbox)
            }.get()
            var context = RequestContext(peer: peer, connectionID: connectionID, logger: logger)
            context.inAdminGroup = decision == .admin
            context.groups = groups
            context.eventLoop = loop
            context.notify = { line in try await outbox.send(line) }
            let admitted = context
            loop.execute { connection.value.start(admitted) }
            try await client.closeFuture.get()
        } catch {
            logger.debug("client connection ended with an error", metadata: ["error": "\(error)"])
            try? await client.close()
        }
        logger.debug("client disconnected")
    }

    /// One error line for a caller who may not use netd at all, a log line, and the close.
    private func refuse(_ client: ClientChannel, peer: PeerCredentials) async {
        logger.warning("refusing an RPC client: not allowed", metadata: ["rpc.client.pid": "\(peer.pid)", "rpc.client.uid": "\(peer.uid)"])
        let error = Dispatcher.responseError(.permissionDenied(access.refusal(uid: peer.uid)))
        if let line = try? ResponseMessage(id: .null, outcome: .error(error)).line() {
            try? await client.writeAndFlush(ByteBuffer(bytes: line))
        }
        try? await client.close()
    }

    private func refuseFull(_ client: ClientChannel, peer: PeerCredentials, limit: NetdLimit) async {
        let max = limit == .maxClientsPerUser ? clients.perUserLimit : clients.limit
        logger.warning(
            "refusing an RPC client: too many",
            metadata: ["rpc.client.pid": "\(peer.pid)", "rpc.client.uid": "\(peer.uid)", "rpc.limit": "\(limit.rawValue)=\(max)"])
        let message =
            limit == .maxClientsPerUser
            ? "user \(peer.uid) has \(max) RPC clients connected already (\(limit.flag)); close one"
            : "too many RPC clients connected (limit \(max), \(limit.flag))"
        let error = Dispatcher.responseError(.limit(code: "EMFILE", message, limit: limit, max: max))
        if let line = try? ResponseMessage(id: .null, outcome: .error(error)).line() {
            try? await client.writeAndFlush(ByteBuffer(bytes: line))
        }
        try? await client.close()
    }
}
