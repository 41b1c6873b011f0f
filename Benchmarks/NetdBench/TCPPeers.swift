import NIOCore
import NIOPosix
import Synchronization
import NetdLocks

/// Loopback TCP servers the benchmark runs in-process as netd's peers.
final class TCPPeer: Sendable {
    enum Behaviour: Sendable {
        /// Reads and counts everything, never writes.
        case sink
        /// Writes 64 KiB chunks as fast as the connection takes them.
        case source
        /// Accepts and holds each connection until the other side closes it.
        case hold
    }

    let channel: any Channel
    /// Bytes received (sink) or connections accepted (all).
    let received = Atomic<Int>(0)
    let accepted = Atomic<Int>(0)

    private init(channel: any Channel) {
        self.channel = channel
    }

    var port: Int { channel.localAddress?.port ?? 0 }

    static func start(_ behaviour: Behaviour) async throws -> TCPPeer {
        let holder = Locked<TCPPeer?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    guard let peer = holder.withLock({ $0 }) else { return }
                    peer.accepted.add(1, ordering: .relaxed)
                    switch behaviour {
                    case .sink: try child.pipeline.syncOperations.addHandler(CountingSink(peer: peer))
                    case .source: try child.pipeline.syncOperations.addHandler(Firehose())
                    case .hold: break
                    }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let peer = TCPPeer(channel: channel)
        holder.withLock { $0 = peer }
        return peer
    }

    func close() {
        channel.close(promise: nil)
    }
}

/// Counts what arrives.
final class CountingSink: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let peer: TCPPeer

    init(peer: TCPPeer) {
        self.peer = peer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        peer.received.add(unwrapInboundIn(data).readableBytes, ordering: .relaxed)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Writes 64 KiB chunks whenever the connection can take more; counts what arrives, if asked.
final class Firehose: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 65536)

    func channelActive(context: ChannelHandlerContext) {
        pump(context: context)
        context.fireChannelActive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        pump(context: context)
    }

    private func pump(context: ChannelHandlerContext) {
        while context.channel.isActive && context.channel.isWritable {
            context.writeAndFlush(wrapOutboundOut(chunk), promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Counts bytes a client connection receives.
final class CountingReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let total: @Sendable (Int) -> Void

    init(total: @escaping @Sendable (Int) -> Void) {
        self.total = total
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        total(unwrapInboundIn(data).readableBytes)
    }
}
