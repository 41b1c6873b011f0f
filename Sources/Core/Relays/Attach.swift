import Foundation
import NetdProtocol
import NetdRelay

#if canImport(Glibc)
import Glibc
#endif

/// A socket taken out of NIO for an attach, waiting for its RPC connection to write the answer
/// line; then ``start(client:leftover:)`` joins it to the connection's descriptor, or
/// ``abandon()`` closes it when the connection can no longer carry it.
struct PreparedStream: Sendable {
    let start: @Sendable (_ client: CInt, _ leftover: [UInt8]) -> Void
    let abandon: @Sendable () -> Void
}

/// Where a call that switches its RPC connection to a byte stream (contract section 9) leaves
/// the socket it prepared; a connection that is gone abandons it, and the socket closes, as an
/// attached socket does when its client goes away.
typealias StreamSlot = HandOverSlot<PreparedStream>

extension HandOverSlot where Value == PreparedStream {
    convenience init() {
        self.init { $0.abandon() }
    }
}

extension ConnectionManager {
    /// The refusal for a switching call that cannot switch: in a batch, or a notification.
    static func checkCanAttach(_ context: RequestContext) throws(NetdError) {
        guard context.stream != nil else {
            throw SocketErrors.invalidState(
                "ERR_ATTACH_NOT_ALONE",
                "attach turns this RPC connection into the socket's byte stream, so it must be a request of its own (with an id, not in a batch)")
        }
    }

    /// `socket.attach` (and `attach: true` on `socket.connect` and `server.accept`): takes the
    /// socket out of NIO and leaves it in the caller's ``StreamSlot``; the RPC connection joins
    /// it to itself once the answer line is written.
    func attach(_ socket: ManagedSocket, context: RequestContext) async throws(NetdError) -> SocketInfo {
        try Self.checkCanAttach(context)
        guard let slot = context.stream else { throw NetdError.cancelled }
        let released = try await socket.takeOut(as: .attached)
        let relay = self.relay
        let ledger = self.ledger
        let detached: @Sendable () -> Void = { ledger.detached(socket.id, owner: socket.owner) }
        let observer = self.observer(for: socket, detached: detached)
        let prepared = PreparedStream(
            start: { client, leftover in
                // Side 0 is the socket, side 1 the RPC connection: each gets what the other had
                // buffered first. The client's EOF ends the socket's write side; the socket's
                // peer ending ends the client's stream (and, without allowHalfOpen, the socket's
                // write side too, as in Node). A client that goes away closes the socket.
                let link = relay.join(
                    RelayEnd(
                        descriptor: released.descriptor, prefix: leftover, outputEnded: released.outputEnded,
                        endsWhenInputEnds: !released.allowHalfOpen, observer: observer),
                    RelayEnd(descriptor: client, prefix: released.unread),
                    resetPropagates: false)
                socket.joined(link, side: 0)
            },
            abandon: {
                Glibc.close(released.descriptor)
                observer.closed(hadError: false)
            })
        guard slot.fill(prepared) else { throw NetdError.cancelled }
        await ledger.committed(ledger.attached(socket.id, owner: socket.owner, client: Owner(uid: context.peer.uid, pid: context.peer.pid)))
        return socket.info()
    }
}
