import Foundation
import NIOCore
import NetdProtocol
import NetdRelay

#if canImport(Glibc)
import Glibc
#endif

/// Where a call that hands a descriptor to its caller (contract section 11) leaves it, for the
/// RPC connection to send with the answer line (SCM_RIGHTS). The descriptor has one owner at a
/// time: the handler until it fills the slot, then the connection once it takes it (which closes
/// it after sending); abandoned, it is closed.
typealias DescriptorSlot = HandOverSlot<CInt>

extension HandOverSlot where Value == CInt {
    convenience init() {
        self.init { close($0) }
    }
}

extension ConnectionManager {
    /// The refusal for a handing-off call that cannot carry a descriptor: in a batch, or a notification.
    static func checkCanHandOff(_ context: RequestContext) throws(NetdError) -> DescriptorSlot {
        guard let slot = context.descriptorSlot else {
            throw SocketErrors.invalidState(
                "ERR_HANDOFF_NOT_ALONE",
                "a hand-off sends a descriptor with its answer line, so it must be a request of its own (with an id, not in a batch)")
        }
        return slot
    }

    /// `socket.handoff` (and `server.accept` with `handoff: true`): takes the socket out of NIO,
    /// leaves its descriptor in the caller's slot, and closes the socket's record with its final
    /// counts and an event `handoff`. Returns the socket as netd last saw it and its unread bytes.
    func handOff(_ socket: ManagedSocket, context: RequestContext) async throws(NetdError) -> (socket: SocketInfo, unread: [UInt8]) {
        let slot = try Self.checkCanHandOff(context)
        let released = try await socket.takeOut(as: .handedOff)
        let taker = Owner(uid: context.peer.uid, pid: context.peer.pid)
        socket.handedOff(to: taker)
        ledger.handedOff(socket.id, owner: socket.owner, to: taker)
        // Netd's part ends here: the record closes with the counts as they are. (The record
        // itself was committed when the socket opened; the answer does not wait for these.)
        observer(for: socket).closed(hadError: false)
        guard slot.fill(released.descriptor) else { throw NetdError.cancelled }
        return (socket.info(), released.unread)
    }

    /// `server.handoff`: the listening descriptor to the caller; netd stops listening (a Unix
    /// server's socket file stays, for the new owner), and its unclaimed sockets stay with netd.
    func handOff(_ server: ManagedServer, context: RequestContext) async throws(NetdError) -> ServerInfo {
        let slot = try Self.checkCanHandOff(context)
        let taker = Owner(uid: context.peer.uid, pid: context.peer.pid)
        let now = Ledger.now()
        guard let descriptor = await server.handOff(to: taker, at: now) else {
            throw SocketErrors.invalidState("ERR_SERVER_CLOSED", "server \(server.id) is not listening")
        }
        registry.releaseServerPlace(for: server.owner.uid)
        ledger.handedOff(server.id, owner: server.owner, to: taker)
        ledger.serverClosed(server.id, owner: server.owner, accepted: server.acceptedCount, at: now)
        if let row = server.persistedID { try? await store.forgetPersistedListen(row) }
        guard slot.fill(descriptor) else { throw NetdError.cancelled }
        return server.info()
    }
}
