import Foundation
import NetdProtocol
import NetdRelay

#if canImport(Glibc)
import Glibc
#endif

extension ConnectionManager {
    /// `socket.pipe`: joins two open sockets of the caller.
    func pipe(_ params: SocketPipeMethod.Params, context: RequestContext) async throws(NetdError) -> SocketPipeMethod.Result {
        let first = try registry.socket(params.id, for: context)
        let second = try registry.socket(params.to, for: context)
        try await join(first, second)
        return SocketPipeMethod.Result(socket: first.info(), to: second.info())
    }

    /// Joins two sockets into a relayed pair (a pipe, or a forward's two sides): both leave NIO,
    /// each one's unread bytes go to the other first, and a relay loop moves the rest with splice.
    /// Each side's end is passed on whatever `allowHalfOpen` says, as socat does; a reset on one
    /// side resets the other.
    ///
    /// - Throws: -32003 when either is closed or relayed already; neither changes then.
    ///
    /// - Parameter forward: the forwarding server whose connection this is: its faults are drawn
    ///   for the pair just before it is made, and act from its first byte.
    func join(_ first: ManagedSocket, _ second: ManagedSocket, forward: ManagedServer? = nil) async throws(NetdError) {
        try first.claimRelay(.piped)
        do {
            try second.claimRelay(.piped)
        } catch {
            first.unclaimRelay()
            throw error
        }
        let releasedFirst: ReleasedSocket
        do {
            releasedFirst = try await first.release()
        } catch {
            first.unclaimRelay()
            second.unclaimRelay()
            throw error
        }
        let releasedSecond: ReleasedSocket
        do {
            releasedSecond = try await second.release()
        } catch {
            // The second closed while the first was being handed over. The first has left NIO
            // already and cannot go back: it closes, as its pair would have.
            second.unclaimRelay()
            Glibc.close(releasedFirst.descriptor)
            observer(for: first).closed(hadError: false)
            throw error
        }
        let (acting, met) = forward.map(faultsForNewPair) ?? ([], [])
        let link = relay.join(
            RelayEnd(descriptor: releasedFirst.descriptor, prefix: releasedSecond.unread, outputEnded: releasedFirst.outputEnded, observer: observer(for: first)),
            RelayEnd(descriptor: releasedSecond.descriptor, prefix: releasedFirst.unread, outputEnded: releasedSecond.outputEnded, observer: observer(for: second)),
            resetPropagates: true,
            faults: FaultBook.relayFaults(acting, flows: [0, 1], timers: acting.compactMap(\.fault.timer)))
        faults.note(acting, met: met, on: link, sockets: [first.id, second.id])
        first.joined(link, side: 0)
        second.joined(link, side: 1)
        first.setPeer(second.id)
        second.setPeer(first.id)
        if let forward { await catchUp(link, server: forward, sockets: [first.id, second.id]) }
        await ledger.committed(max(ledger.piped(first.id, peer: second.id, owner: first.owner), ledger.piped(second.id, peer: first.id, owner: second.owner)))
    }

    /// The relay's reports about `socket`, into its state, history and events.
    func observer(for socket: ManagedSocket, detached: (@Sendable () -> Void)? = nil) -> RelayedSocket {
        // A forward's outgoing socket is not one of the forward's accepted connections.
        let serverID = socket.role == .accepted ? socket.serverID : nil
        return RelayedSocket(shared: socket.shared, signal: signalHandler(id: socket.id, owner: socket.owner, serverID: serverID), detached: detached)
    }

    /// A forwarding server accepted `accepted`: connect to the target for the server's owner and
    /// join the two. A target that cannot be reached leaves its failed connect on record, and
    /// the accepted connection is reset.
    func forward(_ accepted: ManagedSocket, to target: ForwardTarget, server: ManagedServer) async {
        if let refusal = refusal(on: server) {
            ledger.fault(accepted.id, owner: accepted.owner, fault: refusal.id, type: .refuse, detail: "refused")
            await accepted.close(reset: true)
            return
        }
        let params = SocketConnectMethod.Params(
            port: target.port, host: target.path == nil ? (target.host ?? "localhost") : nil, family: target.family,
            path: target.path, noDelay: server.options.noDelay ? true : nil, allowHalfOpen: true, label: server.label)
        let outgoing: ManagedSocket
        do {
            outgoing = try await openClient(params, owner: server.owner, serverID: server.id, loop: accepted.channel.eventLoop)
        } catch {
            logger.debug("forward target unreachable", metadata: ["server.id": "\(server.id)", "forward.target": "\(target.description)", "error": "\(error)"])
            await accepted.close(reset: true)
            return
        }
        do {
            try await join(accepted, outgoing, forward: server)
        } catch {
            // One side closed before the pair could be joined: the other goes too.
            await accepted.close(reset: true)
            await outgoing.close(reset: true)
        }
    }
}
