import NIOCore
import NIOPosix
import NetdProtocol
import NetdStore

#if canImport(Glibc)
import Glibc
#endif

extension ConnectionManager {
    /// `socket.connect`: records the socket, looks the name up, connects (Happy Eyeballs across
    /// the addresses found), and answers once connected and recorded.
    func connect(_ params: SocketConnectMethod.Params, context: RequestContext) async throws(NetdError) -> SocketInfo {
        let owner = Owner(uid: context.peer.uid, pid: context.peer.pid)
        if let path = params.path { try CallerAccess.checkConnect(path, for: context) }
        if let localPort = params.localPort { try CallerAccess.checkPort(localPort, for: context) }
        return try await openClient(params, owner: owner, serverID: nil, loop: context.eventLoop ?? group.next()).info()
    }

    /// Opens a client socket for `owner` once the caller's access is checked: for `socket.connect`,
    /// and for a forward's outgoing side (`serverID` the forward's id, kept on its record).
    func openClient(
        _ params: SocketConnectMethod.Params, owner: Owner, serverID: Int64?, loop: any EventLoop
    ) async throws(NetdError) -> ManagedSocket {
        try registry.reservePlace(for: owner.uid)
        let (id, openedAt) = allocate()
        let kind: Kind = params.path == nil ? .tcp : .unix
        let host = params.path == nil ? (params.host ?? "localhost") : nil
        var record = ConnectionRecord(id: id, role: .client, kind: kind, state: .opening, ownerUID: owner.uid, ownerPID: owner.pid, openedAt: openedAt)
        record.host = host
        record.remotePort = params.port
        record.remotePath = params.path
        record.label = params.label
        record.serverID = serverID
        let sequence = ledger.opened(record)
        let target = params.path ?? "\(host ?? "localhost"):\(params.port ?? 0)"

        // The handler is made first, on the loop the channel will use, so that a connection that
        // closes the moment it opens still hands over what it received.
        let limit = limits.socketBufferBytes
        let allowHalfOpen = params.allowHalfOpen ?? false
        // A forward's outgoing socket is not one of the forward's accepted connections.
        let signal = signalHandler(id: id, owner: owner, serverID: nil)
        let handler: NIOLoopBound<SocketHandler>
        let shared: SocketShared
        do {
            let make: @Sendable () -> (NIOLoopBound<SocketHandler>, SocketShared) = {
                let handler = SocketHandler(limit: limit, allowHalfOpen: allowHalfOpen, signal: signal)
                return (NIOLoopBound(handler, eventLoop: loop), handler.shared)
            }
            (handler, shared) = loop.inEventLoop ? make() : try await loop.submit(make).get()
        } catch {
            registry.releasePlace(for: owner.uid)
            throw NetdError.internalFailure("cannot prepare the socket: \(error)")
        }
        let channel: any Channel
        do {
            channel = try await open(params, host: host, loop: loop, handler: handler)
        } catch {
            registry.releasePlace(for: owner.uid)
            let failure = (error as? LookupFailure).map { SocketFailure(code: $0.code, message: $0.message) }
                ?? SocketErrors.failure(error, syscall: "connect")
            metrics.connect(failure.code)
            await ledger.committed(max(sequence, ledger.connectFailed(id, owner: owner, failure)))
            throw SocketErrors.response(failure, id: id, target: target)
        }

        let local = Endpoint(channel.localAddress)
        let remote = Endpoint(channel.remoteAddress) ?? params.path.map(Endpoint.unix)
        let socket = ManagedSocket(
            id: id, role: .client, kind: kind, owner: owner, host: host, serverID: serverID, label: params.label,
            openedAt: openedAt, local: local, remote: remote, channel: channel, handler: handler, shared: shared, recordSequence: sequence)
        registry.register(socket)
        if params.keepAlive == true, let delay = params.keepAliveInitialDelayMs {
            try? await socket.setOption(ChannelOptions.socket(SocketOptionLevel(IPPROTO_TCP), SocketOptionName(TCP_KEEPIDLE)), max(1, delay / 1000))
        }
        ledger.connected(id, owner: owner, local: local, remote: remote)
        metrics.connect("ok")
        // The record was queued before the connect began, so it is usually written by now; the
        // call waits for it (the contract: a record exists before the call that opened it returns),
        // not for the connected state and addresses, which land with the next commit.
        await ledger.committed(sequence)
        return socket
    }

    private func open(
        _ params: SocketConnectMethod.Params, host: String?, loop: any EventLoop, handler: NIOLoopBound<SocketHandler>
    ) async throws -> any Channel {
        var bootstrap = ClientBootstrap(group: loop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            // One read per wake-up, so the unread buffer passes its limit by one read at most.
            .channelOption(.maxMessagesPerRead, value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(handler.value)
                }
            }
        let timeout = params.timeoutMs ?? 30_000
        bootstrap = bootstrap.connectTimeout(timeout == 0 ? .hours(24) : .milliseconds(Int64(timeout)))

        if let path = params.path {
            return try await bootstrap.connect(to: SocketFile.socketAddress(path)).get()
        }
        if params.noDelay == true { bootstrap = bootstrap.channelOption(.tcpOption(.tcp_nodelay), value: 1) }
        if params.keepAlive == true { bootstrap = bootstrap.channelOption(.socketOption(.so_keepalive), value: 1) }
        let port = params.port ?? 0
        // A local address fixes the family: only remote addresses of that family can be reached from it.
        let localFamily = params.localAddress.map { $0.contains(":") ? 6 : 4 }
        let addresses = try await Lookup.resolve(host: host ?? "localhost", port: port, family: localFamily ?? params.family ?? 0)
        if params.localAddress != nil || params.localPort != nil {
            let wantsV6 = localFamily.map { $0 == 6 } ?? addresses.v4.isEmpty
            let local = try SocketAddress(ipAddress: params.localAddress ?? (wantsV6 ? "::" : "0.0.0.0"), port: params.localPort ?? 0)
            bootstrap = bootstrap.bind(to: local)
        }
        let all = addresses.v6 + addresses.v4
        if all.count == 1 {
            return try await bootstrap.connect(to: all[0]).get()
        }
        return try await bootstrap.resolver(ResolvedAddresses(addresses: addresses, loop: loop)).connect(host: host ?? "localhost", port: port).get()
    }
}
