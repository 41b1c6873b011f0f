import NIOCore

/// Sockets written while one read of an RPC client's requests is served, flushed together when
/// that read completes: 32 pipelined `socket.write`s to one socket leave in one `writev`, not 32
/// `write`s. A write's answer still waits for its bytes to be with the kernel (its promise
/// completes in the flush), so `socket.write` means what the contract says.
///
/// Writes to sockets on another event loop are gathered per loop and handed to it in one task
/// when the read completes, which writes them in order and flushes each socket once: one wake-up
/// of that loop per read, not one per write.
///
/// - Important: Event-loop confined: it belongs to one ``RPCConnection`` and is used on that
///   connection's loop only.
final class DeferredFlushes {
    /// A write to run on its socket's loop: `run` returns the channel written, to flush;
    /// `abandon` fails the write if that loop no longer runs anything.
    struct RemoteWrite: Sendable {
        var run: @Sendable () -> (any Channel)?
        var abandon: @Sendable (any Error) -> Void
    }

    private(set) var isOpen = false
    private var channels: [any Channel] = []
    private var remote: [(loop: any EventLoop, writes: [RemoteWrite])] = []

    /// A read of requests starts: writes may wait for ``close()``.
    func open() {
        isOpen = true
    }

    /// Notes a channel of this loop written without a flush.
    func add(_ channel: any Channel) {
        if !channels.contains(where: { $0 === channel }) { channels.append(channel) }
    }

    /// Queues a write to a socket on another loop, to run there when the read completes.
    func add(on loop: any EventLoop, _ write: RemoteWrite) {
        if let index = remote.firstIndex(where: { $0.loop === loop }) {
            remote[index].writes.append(write)
        } else {
            remote.append((loop, [write]))
        }
    }

    /// The read is done: every channel written during it is flushed, and the writes for other
    /// loops leave for them.
    func close() {
        isOpen = false
        if !remote.isEmpty {
            let batches = remote
            remote.removeAll(keepingCapacity: true)
            for (loop, writes) in batches {
                loop.submit {
                    var written: [any Channel] = []
                    for write in writes {
                        if let channel = write.run(), !written.contains(where: { $0 === channel }) { written.append(channel) }
                    }
                    for channel in written { channel.flush() }
                }.whenFailure { error in
                    for write in writes { write.abandon(error) }
                }
            }
        }
        guard !channels.isEmpty else { return }
        let written = channels
        channels.removeAll(keepingCapacity: true)
        for channel in written { channel.flush() }
    }
}
