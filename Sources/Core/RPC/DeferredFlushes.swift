import NIOCore

/// Sockets written while one read of an RPC client's requests is served, flushed together when
/// that read completes: 32 pipelined `socket.write`s to one socket leave in one `writev`, not 32
/// `write`s. A write's answer still waits for its bytes to be with the kernel (its promise
/// completes in the flush), so `socket.write` means what the contract says.
///
/// - Important: Event-loop confined: it belongs to one ``RPCConnection`` and serves only sockets
///   on that connection's loop; a socket elsewhere is flushed at once, as before.
final class DeferredFlushes {
    private(set) var isOpen = false
    private var channels: [any Channel] = []

    /// A read of requests starts: writes may wait for ``close()``.
    func open() {
        isOpen = true
    }

    /// Notes a channel written without a flush.
    func add(_ channel: any Channel) {
        if !channels.contains(where: { $0 === channel }) { channels.append(channel) }
    }

    /// The read is done: every channel written during it is flushed.
    func close() {
        isOpen = false
        guard !channels.isEmpty else { return }
        let written = channels
        channels.removeAll(keepingCapacity: true)
        for channel in written { channel.flush() }
    }
}
