import NIOCore
import NIOPosix
import NetdProtocol
import NetdStore

#if canImport(Glibc)
import Glibc
#endif

extension ConnectionManager {
    /// `server.listen`: binds, listens, and records the server; accepted connections become
    /// sockets owned by the server's owner and wait for `server.accept`.
    func listen(_ params: ServerListenMethod.Params, context: RequestContext) async throws(NetdError) -> ServerInfo {
        if params.persist == true {
            return try await listenPersisted(params, context: context)
        }
        return try await listen(params, context: context, persistedID: nil).info()
    }

    /// Listens; `persistedID` is the kept listen this server serves, if any.
    func listen(_ params: ServerListenMethod.Params, context: RequestContext, persistedID: Int64?) async throws(NetdError) -> ManagedServer {
        let owner = Owner(uid: context.peer.uid, pid: context.peer.pid)
        if let path = params.path { try CallerAccess.checkCreate(path, for: context) }
        if let port = params.port { try CallerAccess.checkPort(port, for: context) }
        if let path = params.forward?.path { try CallerAccess.checkConnect(path, for: context) }
        // Before the id: a refused listen leaves no record, as a refused socket leaves none.
        try registry.reserveServerPlace(for: owner.uid)
        let (id, openedAt) = allocate()
        let kind: Kind = params.path == nil ? .tcp : .unix
        let backlog = params.backlog ?? 511
        let server = ManagedServer(
            id: id, kind: kind, owner: owner, label: params.label, openedAt: openedAt, backlog: backlog,
            maxConnections: params.maxConnections, pendingLimit: limits.pendingPerServer,
            options: .init(allowHalfOpen: params.allowHalfOpen ?? false, noDelay: params.noDelay ?? false, keepAlive: params.keepAlive ?? false),
            forward: params.forward, persistedID: persistedID)
        var record = ConnectionRecord(id: id, role: .server, kind: kind, state: .listening, ownerUID: owner.uid, ownerPID: owner.pid, openedAt: server.openedAt)
        record.label = params.label
        record.backlog = backlog
        record.maxConnections = params.maxConnections
        record.host = params.host
        record.localPath = params.path
        record.localPort = params.port
        record.forward = params.forward.map { String(decoding: (try? JSONCoding.encode($0)) ?? [], as: UTF8.self) }

        let target = params.path ?? "\(params.host ?? "::"):\(params.port ?? 0)"
        do {
            let (channel, socketFile) = try await bind(params, server: server, backlog: backlog)
            let local = Endpoint(channel.localAddress) ?? params.path.map(Endpoint.unix)
            server.attach(channel, local: local, socketFile: socketFile)
            record.localAddress = local?.address
            record.localPort = local?.port
        } catch {
            let failure: SocketFailure =
                if let refusal = error as? SocketFile.Refusal { SocketFailure(code: refusal.code == "EEXIST" ? "EADDRINUSE" : refusal.code, message: "listen \(refusal.description)") }
                else if let lookup = error as? LookupFailure { SocketFailure(code: lookup.code, message: lookup.message) }
                else { SocketErrors.failure(error, syscall: "listen") }
            record.state = .closed
            record.closedAt = Ledger.now()
            record.errorCode = failure.code
            record.errorMessage = failure.message
            registry.releaseServerPlace(for: owner.uid)
            ledger.opened(record)
            await ledger.committed(ledger.failed(id, owner: owner, failure))
            throw SocketErrors.response(failure, id: id, target: target)
        }
        registry.register(server)
        await ledger.committed(ledger.listening(record))
        return server
    }

    private func bind(_ params: ServerListenMethod.Params, server: ManagedServer, backlog: Int) async throws -> (any Channel, SocketFile?) {
        var bootstrap = serverBootstrap(for: server, backlog: backlog)
        if let path = params.path {
            var socketFile = SocketFile(path: path)
            try socketFile.prepare(createFolder: false)
            let fd = try socketFile.bindListening(mode: params.parsedMode)
            do {
                // NIO's server channel owns the descriptor from here, and closes it on failure.
                return (try await bootstrap.withBoundSocket(fd).get(), socketFile)
            } catch {
                socketFile.remove()
                throw error
            }
        }
        bootstrap = bootstrap.serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        if params.reusePort == true { bootstrap = bootstrap.serverChannelOption(ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SocketOptionName(SO_REUSEPORT)), value: 1) }
        let port = params.port ?? 0
        let address: SocketAddress
        if let host = params.host {
            let addresses = try await Lookup.resolve(host: host, port: port, family: 0)
            guard let first = addresses.v4.first ?? addresses.v6.first else {
                throw LookupFailure(code: "ENOTFOUND", message: "getaddrinfo ENOTFOUND \(host)")
            }
            address = first
        } else {
            // Node listens on every address, IPv6 and IPv4 alike, when no host is given.
            address = try SocketAddress(ipAddress: "::", port: port)
        }
        if case .v6 = address {
            let v6only = ChannelOptions.socket(SocketOptionLevel(IPPROTO_IPV6), SocketOptionName(IPV6_V6ONLY))
            bootstrap = bootstrap.serverChannelOption(v6only, value: params.ipv6Only == true ? 1 : 0)
        }
        do {
            return (try await bootstrap.bind(to: address).get(), nil)
        } catch let error as IOError where params.host == nil && error.errnoCode == EAFNOSUPPORT {
            // No IPv6 on this machine: all IPv4 addresses, as Node does.
            return (try await bootstrap.bind(to: try SocketAddress(ipAddress: "0.0.0.0", port: port)).get(), nil)
        }
    }

    /// How every server of netd is set up: the accept gate ahead of NIO's accept handler, and
    /// each accepted connection adopted as a socket (or forwarded). For `server.listen`, and for
    /// a server carried over from another netd (`netd --replace`).
    func serverBootstrap(for server: ManagedServer, backlog: Int) -> ServerBootstrap {
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: Int32(clamping: backlog))
            // One accept per wake-up, so the gate can stop accepting at exactly the limit.
            .serverChannelOption(.maxMessagesPerRead, value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptGate(server: server))
                }
            }
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            // One read per wake-up, so the unread buffer passes its limit by one read at most.
            .childChannelOption(.maxMessagesPerRead, value: 1)
            .childChannelInitializer { [weak self] child in
                guard let self else { return child.close() }
                return self.adopt(child, server: server)
            }
        guard server.kind == .tcp else { return bootstrap }
        if server.options.noDelay { bootstrap = bootstrap.childChannelOption(.tcpOption(.tcp_nodelay), value: 1) }
        if server.options.keepAlive { bootstrap = bootstrap.childChannelOption(.socketOption(.so_keepalive), value: 1) }
        return bootstrap
    }

    /// Takes in a connection a server accepted (on the child's event loop).
    private func adopt(_ child: any Channel, server: ManagedServer) -> EventLoopFuture<Void> {
        guard server.admit() else {
            server.dropUnclaimed()
            return child.close()
        }
        let owner = server.owner
        do {
            try registry.reservePlace(for: owner.uid)
        } catch {
            server.connectionClosed()
            server.dropUnclaimed()
            return child.close()
        }
        let (id, now) = allocate()
        let signal = signalHandler(id: id, owner: owner, serverID: server.id)
        // A forward passes each end on whatever allowHalfOpen says: a client's early end waits for the relay.
        let allowHalfOpen = server.forward != nil || server.options.allowHalfOpen
        let handler = SocketHandler(limit: limits.socketBufferBytes, allowHalfOpen: allowHalfOpen, signal: signal)
        let local = Endpoint(child.localAddress) ?? server.local
        let remote = Endpoint(child.remoteAddress)
        var record = ConnectionRecord(id: id, role: .accepted, kind: server.kind, state: .open, ownerUID: owner.uid, ownerPID: owner.pid, openedAt: now)
        record.serverID = server.id
        record.label = server.label
        record.localAddress = local?.address
        record.localPort = local?.port
        record.localPath = local?.path
        record.remoteAddress = remote?.address
        record.remotePort = remote?.port
        record.remotePath = remote?.path
        record.lastActivityAt = now
        let sequence = ledger.accepted(record, by: server.id, owner: owner, total: server.acceptedCount)
        return child.eventLoop.makeCompletedFuture {
            try child.pipeline.syncOperations.addHandler(handler)
            let socket = ManagedSocket(
                id: id, role: .accepted, kind: server.kind, owner: owner, host: nil, serverID: server.id, label: server.label,
                openedAt: now, local: local, remote: remote, channel: child,
                handler: NIOLoopBound(handler, eventLoop: child.eventLoop), shared: handler.shared, recordSequence: sequence)
            self.registry.register(socket)
            self.ledger.announceConnection(server: server.id, socket: id, owner: owner, at: now)
            if let target = server.forward {
                server.forwarded()
                Task { await self.forward(socket, to: target, server: server) }
            } else {
                server.deliver(socket)
            }
        }
    }
}

/// Sits in a server's pipeline ahead of NIO's accept handler and counts each connection the
/// kernel hands over; once the server holds its limit of unclaimed ones, it stops accepting on
/// the spot, so the rest wait in the kernel's backlog (contract section 6).
final class AcceptGate: ChannelInboundHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    private let server: ManagedServer

    init(server: ManagedServer) {
        self.server = server
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if server.countAccepted() {
            try? context.channel.syncOptions?.setOption(.autoRead, value: false)
        }
        context.fireChannelRead(data)
    }
}
