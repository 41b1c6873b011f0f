import Foundation
import NetdProtocol
import NetdRelay

/// `fault.*` (contract section 12): thin handlers over ``ConnectionManager``'s faults.
struct FaultMethods: Sendable {
    let manager: ConnectionManager

    func register(in table: inout MethodTable) {
        let manager = self.manager
        table.on(FaultAddMethod.self) { params, context in
            FaultAddMethod.Result(fault: try await manager.addFault(params, context: context))
        }
        table.on(FaultRemoveMethod.self) { params, context in
            FaultRemoveMethod.Result(fault: try await manager.removeFault(params.id, context: context))
        }
        table.on(FaultListMethod.self) { params, context in
            manager.pruneFaults()
            let faults = manager.faults.all.filter { fault in
                SocketRegistry.visible(fault.owner, to: context) && (params.target.map { fault.target == $0 } ?? true)
            }
            return FaultListMethod.Result(faults: faults.map(\.info))
        }
    }
}

extension ConnectionManager {
    /// `fault.add`: on a forwarding server (its relayed connections now and every new one), or
    /// on the pair of one piped or forwarded socket.
    func addFault(_ params: FaultAddMethod.Params, context: RequestContext) async throws(NetdError) -> FaultInfo {
        pruneFaults()
        let (socket, server) = registry.held(params.target)
        var pairs: [(link: RelayLink, sockets: [Int64])] = []
        if let server, SocketRegistry.visible(server.owner, to: context) {
            guard server.forward != nil, !server.isClosed else {
                throw SocketErrors.invalidState(
                    "ERR_FAULT_TARGET", "server \(server.id) is not a listening forward; faults act on forwards and on the sockets of pipes and forward pairs")
            }
            for accepted in registry.all().sockets where accepted.serverID == server.id && accepted.role == .accepted && accepted.closedTime == nil {
                if let (link, side) = accepted.relayed, side == 0 { pairs.append((link, [accepted.id, accepted.peer ?? 0])) }
            }
        } else if let socket, SocketRegistry.visible(socket.owner, to: context) {
            guard params.type != .refuse else {
                throw SocketErrors.invalidState("ERR_FAULT_TARGET", "refuse acts on the new connections of a forwarding server, not on one socket")
            }
            guard socket.relayRole == .piped, socket.closedTime == nil, let (link, side) = socket.relayed else {
                throw SocketErrors.invalidState("ERR_FAULT_TARGET", "socket \(socket.id) is not in a pipe or forward pair; faults act on relayed connections")
            }
            let peer = socket.peer ?? 0
            pairs.append((link, side == 0 ? [socket.id, peer] : [peer, socket.id]))
        } else {
            throw NetdError.notFound("no server or socket \(params.target)")
        }
        let info = FaultInfo(
            id: faults.allocateID(), target: params.target, type: params.type, direction: params.direction ?? .both,
            probability: params.probability ?? 1, seed: params.seed ?? Int64.random(in: 0...((1 << 53) - 1)),
            ms: params.ms, jitterMs: params.type == .latency ? (params.jitterMs ?? 0) : nil, bytesPerSecond: params.bytesPerSecond,
            averageBytes: params.averageBytes, delayMs: params.delayMs, bytes: params.bytes, afterMs: params.afterMs,
            owner: Owner(uid: context.peer.uid, pid: context.peer.pid), addedAt: Ledger.now())
        let fault = Fault(info)
        faults.add(fault)
        for (link, sockets) in pairs { await apply(fault, to: link, sockets: sockets) }
        if let server, server.forward != nil {
            // Connections still being joined meet the fault as their pair is made (catchUp); the
            // answer waits for them (a second at most), so that its counts include them.
            for _ in 0..<500 where joining(through: server) { try? await Task.sleep(for: .milliseconds(2)) }
        }
        return fault.info
    }

    /// The fault meets one open pair (once): if its draw says so, it acts on it from now on.
    func apply(_ fault: Fault, to link: RelayLink, sockets: [Int64]) async {
        guard let (acts, ordinal, pair) = faults.meet(fault, on: link, sockets: sockets), acts else { return }
        let flows: Set<Int> = fault.shaping(ordinal: ordinal) == nil ? [] : Set(fault.flows)
        await link.setFaults(FaultBook.relayFaults(pair.faults, flows: flows, timers: fault.timer.map { [$0] } ?? []))
    }

    /// A forward's pair has just been made with the faults drawn for it (`met`): any fault added
    /// to the server meanwhile, which could not see the pair yet, meets it now.
    func catchUp(_ link: RelayLink, server: ManagedServer, sockets: [Int64]) async {
        for fault in faults.faults(targeting: server.id) where fault.type != .refuse {
            await apply(fault, to: link, sockets: sockets)
        }
    }

    /// `fault.remove`: every pair it acted on goes back to what its other faults make it.
    func removeFault(_ id: Int64, context: RequestContext) async throws(NetdError) -> FaultInfo {
        guard let fault = faults.fault(id), SocketRegistry.visible(fault.owner, to: context),
            let (removed, touched) = faults.remove(id)
        else {
            throw NetdError.notFound("no fault \(id)")
        }
        let flows: Set<Int> = removed.shaping(ordinal: 0) == nil ? [] : Set(removed.flows)
        for (link, pair) in touched {
            await link.setFaults(FaultBook.relayFaults(pair.faults, flows: flows, removing: [UInt64(bitPattern: id)]))
        }
        return removed.info
    }

    /// Whether a `refuse` of the forwarding server turns a new connection away (each draws once).
    func refusal(on server: ManagedServer) -> Fault? {
        for fault in faults.faults(targeting: server.id) where fault.type == .refuse {
            if fault.meet().acts { return fault }
        }
        return nil
    }

    /// The faults of a forwarding server drawn for one new pair, just before it is made: those
    /// that act, and all that drew.
    func faultsForNewPair(on server: ManagedServer) -> (acting: [(fault: Fault, ordinal: Int)], met: Set<Int64>) {
        var acting: [(fault: Fault, ordinal: Int)] = []
        var met: Set<Int64> = []
        for fault in faults.faults(targeting: server.id) where fault.type != .refuse {
            let (acts, ordinal) = fault.meet()
            met.insert(fault.id)
            if acts { acting.append((fault, ordinal)) }
        }
        return (acting, met)
    }

    /// Whether a connection the forwarding server accepted is still being joined to its target.
    private func joining(through server: ManagedServer) -> Bool {
        registry.all().sockets.contains { socket in
            socket.serverID == server.id && socket.role == .accepted && socket.closedTime == nil && socket.relayed == nil
                && !socket.shared.withLock { $0.closed || $0.discarded }
        }
    }

    /// Forgets the pairs faults acted on once they have closed.
    func pruneFaults() {
        let registry = self.registry
        faults.prune { pair in
            pair.sockets.contains { id in registry.held(id).0.map { $0.closedTime == nil } ?? false }
        }
    }
}
