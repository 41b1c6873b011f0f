import Foundation
import NIOCore
import NIOPosix
import NetdProtocol
import NetdRelay

#if canImport(Glibc)
import Glibc
#endif

/// What a netd takes out of itself for the next one: the document's parts and the descriptors
/// they number, in order. Every descriptor here is this process's own (a duplicate, or one taken
/// out of a relay): the new netd receives copies, and this netd closes these once it is done.
struct Carried: Sendable {
    var servers: [CarriedServer] = []
    var sockets: [CarriedSocket] = []
    var pairs: [CarriedPair] = []
    var descriptors: [CInt] = []

    mutating func add(_ descriptor: CInt) -> Int {
        descriptors.append(descriptor)
        return descriptors.count - 1
    }
}

extension ConnectionManager {
    // MARK: Quiet

    /// Ends every wait now (`server.accept` and `socket.read` answer as if their wait ran out),
    /// lets none begin, and stops the servers taking connections: they wait in the backlog.
    func quiesce() {
        setQuiescing(true)
        let (sockets, servers) = registry.all()
        for server in servers {
            server.setAccepting(false)
            server.expireWaiters()
        }
        for socket in sockets { socket.wakeReaders() }
    }

    /// Undoes ``quiesce()`` when the replacement did not go ahead and nothing was taken out.
    func resumeAfterQuiesce() {
        setQuiescing(false)
        for server in registry.all().servers { server.setAccepting(true) }
    }

    /// What still moves between two states and cannot be carried as it is: a socket claimed for
    /// a relay and not joined yet, or a forwarded connection whose other side is still
    /// connecting. Nil once there is none.
    func unsettled() -> String? {
        let (sockets, servers) = registry.all()
        let forwards = Set(servers.filter { $0.forward != nil && !$0.isClosed }.map(\.id))
        for socket in sockets where socket.closedTime == nil && !socket.shared.withLock({ $0.closed || $0.discarded }) {
            switch socket.relayRole {
            case .attached?, .piped?:
                if socket.relayed == nil { return "socket \(socket.id) is being joined to a relay" }
            case .handedOff?:
                continue
            case nil:
                if let server = socket.serverID, forwards.contains(server) { return "socket \(socket.id) is being forwarded" }
            }
        }
        return nil
    }

    // MARK: Taking out

    /// Takes everything out of this netd for the next one: servers (listening descriptors and
    /// queues), relayed pairs with their bytes in flight, sockets with their unread bytes, and
    /// closed sockets that still hold unread bytes. Nothing is recorded, and the registry is
    /// emptied: the records go on in the next netd, or in this one again through ``adopt(_:descriptors:)``.
    ///
    /// - Important: Call it quiesced (``quiesce()``), with no request in flight.
    func carry() async -> Carried {
        var carried = Carried()
        let (sockets, servers) = registry.all()
        for server in servers.sorted(by: { $0.id < $1.id }) {
            guard let (descriptor, server, _) = await server.carry() else { continue }
            var entry = server
            entry.descriptor = carried.add(descriptor)
            carried.servers.append(entry)
        }

        // Relayed pairs, each once, taken out of the relay with what was in flight.
        var links: [RelayLink: [Int: ManagedSocket]] = [:]
        for socket in sockets {
            guard let (link, side) = socket.relayed else { continue }
            links[link, default: [:]][side] = socket
        }
        for (link, sides) in links.sorted(by: { ($0.value.values.map(\.id).min() ?? 0) < ($1.value.values.map(\.id).min() ?? 0) }) {
            guard let detached = await link.detach() else { continue }
            var pair = CarriedPair(
                sockets: [sides[0]?.id, sides[1]?.id], client: nil,
                bound: detached.bound.map { Data($0).base64EncodedString() },
                outputEnded: detached.outputEnded, endsWhenInputEnds: detached.endsWhenInputEnds,
                resetPropagates: detached.resetPropagates,
                faults: faults.faults(on: link).map { CarriedFaultUse(fault: $0.fault.id, ordinal: $0.ordinal) },
                timers: detached.timers)
            for side in 0..<2 {
                let index = carried.add(detached.descriptors[side])
                if let socket = sides[side] {
                    carried.sockets.append(describe(socket, unread: [], allowHalfOpen: true, idleTimeoutMs: nil, descriptor: index))
                } else {
                    pair.client = index
                }
            }
            carried.pairs.append(pair)
        }

        // Sockets on NIO: out of it with their unread bytes, side by side over the event loops;
        // closed ones only for their unread bytes.
        let taken = await withTaskGroup(of: (CarriedSocket, CInt?)?.self) { group in
            for socket in sockets where socket.relayRole == nil {
                group.addTask { await self.takeOut(socket) }
            }
            var taken: [(CarriedSocket, CInt?)] = []
            for await entry in group { if let entry { taken.append(entry) } }
            return taken
        }
        for (entry, descriptor) in taken.sorted(by: { $0.0.id < $1.0.id }) {
            var entry = entry
            entry.descriptor = descriptor.map { carried.add($0) }
            carried.sockets.append(entry)
        }
        registry.removeAll()
        return carried
    }

    /// One socket on NIO taken out for the next netd, and its descriptor; nil if there is nothing
    /// to carry (it was discarded, or closed with nothing unread).
    private func takeOut(_ socket: ManagedSocket) async -> (CarriedSocket, CInt?)? {
        let (closed, discarded, unread) = socket.shared.withLock { ($0.closed, $0.discarded, $0.unread.count) }
        if discarded { return nil }
        if closed || socket.closedTime != nil {
            guard unread > 0 else { return nil }
            let bytes = socket.shared.withLock { $0.unread.takeAll() }
            var entry = describe(socket, unread: bytes, allowHalfOpen: false, idleTimeoutMs: nil, descriptor: nil)
            entry.closed = true
            entry.closedAt = socket.closedTime ?? Ledger.now()
            return (entry, nil)
        }
        let settings = await socket.handlerSettings()
        guard let released = try? await socket.takeOut(as: .handedOff) else { return nil }
        var entry = describe(socket, unread: released.unread, allowHalfOpen: released.allowHalfOpen, idleTimeoutMs: settings.idleTimeoutMs, descriptor: nil)
        entry.outputEnded = released.outputEnded
        return (entry, released.descriptor)
    }

    private func describe(_ socket: ManagedSocket, unread: [UInt8], allowHalfOpen: Bool, idleTimeoutMs: Int?, descriptor: Int?) -> CarriedSocket {
        let state = socket.shared.withLock { $0 }
        return CarriedSocket(
            id: socket.id, role: socket.role, kind: socket.kind, owner: socket.owner, host: socket.host, server: socket.serverID,
            label: socket.label, openedAt: socket.openedAt, local: socket.local, remote: socket.remote,
            bytesRead: state.bytesRead, bytesWritten: state.bytesWritten, unread: Data(unread).base64EncodedString(),
            inputEnded: state.inputEnded, outputEnded: state.outputEnded, eofDelivered: state.eofDelivered, failure: state.failure,
            allowHalfOpen: allowHalfOpen, idleTimeoutMs: idleTimeoutMs, peer: socket.peer, closed: false, closedAt: nil,
            descriptor: descriptor)
    }

    // MARK: Taking in

    /// Checks what a handover asks of this netd before anything is taken in: every descriptor
    /// there, and every user within this netd's limits.
    func checkAdoptable(_ handover: Handover, descriptors: [CInt]) throws(NetdError) {
        guard handover.format == Handover.currentFormat else {
            throw NetdError.invalidParams("the running netd hands over format \(handover.format); this netd reads format \(Handover.currentFormat)")
        }
        let indices = handover.servers.map(\.descriptor) + handover.sockets.compactMap(\.descriptor)
            + handover.pairs.compactMap(\.client) + [handover.listener]
        guard descriptors.count == handover.descriptors, indices.allSatisfy({ $0 >= 0 && $0 < descriptors.count }) else {
            throw NetdError.invalidParams("the handover names \(handover.descriptors) descriptors and \(descriptors.count) came")
        }
        var perUser: [UInt32: Int] = [:]
        for socket in handover.sockets where !socket.closed { perUser[socket.owner.uid, default: 0] += 1 }
        if let (uid, count) = perUser.first(where: { $0.value > limits.socketsPerUser }) {
            throw NetdError.limit(
                code: "EMFILE", "user \(uid) holds \(count) sockets; this netd allows \(limits.socketsPerUser) (--max-sockets-per-user)",
                limit: .maxSocketsPerUser, max: limits.socketsPerUser)
        }
        var serversPerUser: [UInt32: Int] = [:]
        for server in handover.servers { serversPerUser[server.owner.uid, default: 0] += 1 }
        if let (uid, count) = serversPerUser.first(where: { $0.value > limits.serversPerUser }) {
            throw NetdError.limit(
                code: "EMFILE", "user \(uid) holds \(count) servers; this netd allows \(limits.serversPerUser) (--max-servers-per-user)",
                limit: .maxServersPerUser, max: limits.serversPerUser)
        }
    }

    /// Takes in what ``carry()`` took out, in this process or the next: servers listen again on
    /// their descriptors, sockets go back to NIO with their counters and unread bytes, pairs go
    /// back to a relay with their bytes in flight first. Ids, owners and labels stay; nothing is
    /// recorded, as nothing happened to the connections.
    ///
    /// - Important: ``checkAdoptable(_:descriptors:)`` first. The descriptors are this netd's from here.
    func adopt(_ handover: Handover, descriptors: [CInt]) async throws(NetdError) {
        store.continueAllocation(after: handover.nextID - 1)
        for info in handover.faults { faults.add(Fault(info)) }
        faults.continueIDs(from: handover.nextFaultID)
        var servers: [Int64: (ManagedServer, CarriedServer)] = [:]
        for carried in handover.servers {
            let server = ManagedServer(
                id: carried.id, kind: carried.kind, owner: carried.owner, label: carried.label, openedAt: carried.openedAt,
                backlog: carried.backlog, maxConnections: carried.maxConnections, pendingLimit: limits.pendingPerServer,
                options: carried.options, forward: carried.forward, persistedID: carried.persistedID)
            do {
                let channel = try await serverBootstrap(for: server, backlog: carried.backlog).withBoundSocket(descriptors[carried.descriptor]).get()
                server.attach(channel, local: carried.local, socketFile: carried.socketPath.map(SocketFile.adopting))
            } catch {
                throw NetdError.internalFailure("cannot listen again on server \(carried.id)'s descriptor: \(error)")
            }
            registry.register(server)
            registry.takeServerPlace(for: carried.owner.uid)
            servers[carried.id] = (server, carried)
        }

        // Sockets and pairs are taken in side by side, spread over the event loops: every moment
        // spent here is a moment their connections wait.
        let relayed = Set(handover.pairs.flatMap { $0.sockets.compactMap { $0 } })
        var sockets: [Int64: ManagedSocket] = [:]
        do {
            try await withThrowingTaskGroup(of: ManagedSocket.self) { group in
                for carried in handover.sockets {
                    let descriptor = carried.descriptor.map { descriptors[$0] }
                    group.addTask { try await self.adopt(carried, descriptor: descriptor, relayed: relayed.contains(carried.id)) }
                }
                for try await socket in group { sockets[socket.id] = socket }
            }
        } catch let error as NetdError {
            throw error
        } catch {
            throw NetdError.internalFailure("cannot take in the sockets: \(error)")
        }
        for (server, carried) in servers.values {
            server.restore(accepted: carried.accepted, live: carried.live, pending: carried.pending.compactMap { sockets[$0] })
        }

        let adopted = sockets
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for pair in handover.pairs {
                    group.addTask { try await self.rejoin(pair, sockets: adopted, descriptors: descriptors) }
                }
                try await group.waitForAll()
            }
        } catch let error as NetdError {
            throw error
        } catch {
            throw NetdError.internalFailure("cannot take in the relayed pairs: \(error)")
        }
    }

    /// A carried pair back in a relay, its bytes in flight first.
    private func rejoin(_ pair: CarriedPair, sockets: [Int64: ManagedSocket], descriptors: [CInt]) async throws(NetdError) {
        var ends: [RelayEnd] = []
        for side in 0..<2 {
            let prefix = [UInt8](Data(base64Encoded: pair.bound[side]) ?? Data())
            var end = RelayEnd(
                descriptor: -1, prefix: prefix, outputEnded: pair.outputEnded[side], endsWhenInputEnds: pair.endsWhenInputEnds[side])
            if let id = pair.sockets[side] {
                guard let socket = sockets[id] else { throw NetdError.internalFailure("pair names socket \(id), which was not handed over") }
                let released = try await socket.takeOut(as: pair.isAttached ? .attached : .piped)
                end.descriptor = released.descriptor
                let ledger = self.ledger
                let detached: (@Sendable () -> Void)? =
                    if pair.isAttached { { ledger.detached(socket.id, owner: socket.owner) } } else { nil }
                end.observer = observer(for: socket, detached: detached)
            } else if let client = pair.client {
                end.descriptor = descriptors[client]
            }
            ends.append(end)
        }
        let acting = pair.faults.compactMap { use in faults.fault(use.fault).map { (fault: $0, ordinal: use.ordinal) } }
        let link = relay.join(
            ends[0], ends[1], resetPropagates: pair.resetPropagates,
            faults: FaultBook.relayFaults(acting, flows: acting.isEmpty ? [] : [0, 1], timers: pair.timers))
        let ids = pair.sockets.map { $0 ?? 0 }
        faults.note(acting, met: Set(acting.map(\.fault.id)), on: link, sockets: ids)
        for side in 0..<2 {
            if let id = pair.sockets[side] { sockets[id]?.joined(link, side: side) }
        }
    }

    /// One socket back on NIO, on the next event loop, as it was.
    private func adopt(_ carried: CarriedSocket, descriptor: CInt?, relayed: Bool) async throws(NetdError) -> ManagedSocket {
        let unread = [UInt8](Data(base64Encoded: carried.unread) ?? Data())
        let loop = group.next()
        let signal = signalHandler(id: carried.id, owner: carried.owner, serverID: carried.role == .accepted ? carried.server : nil)
        let limit = limits.socketBufferBytes
        var descriptor = descriptor
        if descriptor == nil {
            // A closed socket brings only its unread bytes; one end of a fresh pair stands in
            // for its channel, and closes at once.
            var fds: [CInt] = [-1, -1]
            guard socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
                throw NetdError.internalFailure("socketpair: \(String(cString: strerror(errno)))")
            }
            Glibc.close(fds[1])
            descriptor = fds[0]
        }
        do {
            let make: @Sendable () -> (NIOLoopBound<SocketHandler>, SocketShared) = {
                let handler = SocketHandler(limit: limit, allowHalfOpen: carried.allowHalfOpen, signal: signal)
                handler.carryOver(carried, unread: unread)
                return (NIOLoopBound(handler, eventLoop: loop), handler.shared)
            }
            let (handler, shared) = try await loop.submit(make).get()
            let channel = try await ClientBootstrap(group: loop)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .channelOption(.maxMessagesPerRead, value: 1)
                // A relayed socket only passes through NIO on its way back to a relay.
                .channelOption(.autoRead, value: !relayed && !carried.closed)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler.value) }
                }
                .withConnectedSocket(descriptor!).get()
            let socket = ManagedSocket(
                id: carried.id, role: carried.role, kind: carried.kind, owner: carried.owner, host: carried.host,
                serverID: carried.server, label: carried.label, openedAt: carried.openedAt, local: carried.local, remote: carried.remote,
                channel: channel, handler: handler, shared: shared, recordSequence: 0)
            if let peer = carried.peer { socket.setPeer(peer) }
            if carried.closed {
                registry.registerClosed(socket, closedAt: carried.closedAt ?? Ledger.now())
                try? await channel.close()
                return socket
            }
            try registry.reservePlace(for: carried.owner.uid)
            registry.register(socket)
            if let idle = carried.idleTimeoutMs, idle > 0 { try? await socket.setIdleTimeout(milliseconds: idle) }
            return socket
        } catch let error as NetdError {
            throw error
        } catch {
            throw NetdError.internalFailure("cannot take in socket \(carried.id): \(error)")
        }
    }
}
