import Foundation
import NIOCore
import NIOPosix
import NetdLocks

/// Real servers the tests start as netd's peers, on loopback or Unix sockets.
enum Peer {
    /// What a peer does with each connection.
    enum Behaviour: Sendable {
        /// Sends back what it receives; ends its side when the other side ends.
        case echo
        /// Sends these bytes, then ends its side; keeps reading and discarding.
        case send([UInt8])
        /// Sends these bytes and keeps the connection open, so that only TCP backpressure paces them.
        case sendAndStay([UInt8])
        /// Reads and keeps everything, never writes; `received` has it.
        case sink
        /// Closes each connection fully as soon as it is accepted.
        case closeAtOnce
        /// Answers each HTTP/1.1 request (head up to the blank line) with `200 OK`, a body naming
        /// the method and target, and `Connection: close`, then closes.
        case http
    }

    /// A running peer; `close()` stops it.
    final class Server: Sendable {
        let channel: any Channel
        let received = Locked<[UInt8]>([])
        let connections = Locked<[any Channel]>([])
        let halfClosed = Locked(0)

        init(channel: any Channel) {
            self.channel = channel
        }

        var port: Int { channel.localAddress?.port ?? 0 }

        func close() async {
            for child in connections.withLock({ $0 }) { try? await child.close() }
            try? await channel.close()
        }
    }

    static func start(_ behaviour: Behaviour, host: String = "127.0.0.1", unixPath: String? = nil) async throws -> Server {
        let holder = Locked<Server?>(nil)
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    let server = holder.withLock { $0 }!
                    server.connections.withLock { $0.append(child) }
                    try child.pipeline.syncOperations.addHandler(PeerHandler(behaviour: behaviour, server: server))
                }
            }
        let channel: any Channel =
            if let unixPath { try await bootstrap.bind(unixDomainSocketPath: unixPath).get() }
            else { try await bootstrap.bind(host: host, port: 0).get() }
        let server = Server(channel: channel)
        holder.withLock { $0 = server }
        return server
    }
}

private final class PeerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let behaviour: Peer.Behaviour
    let server: Peer.Server
    private var request: [UInt8] = []

    init(behaviour: Peer.Behaviour, server: Peer.Server) {
        self.behaviour = behaviour
        self.server = server
    }

    func channelActive(context: ChannelHandlerContext) {
        switch behaviour {
        case .send(let bytes):
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
            context.close(mode: .output, promise: nil)
        case .sendAndStay(let bytes):
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
        case .closeAtOnce:
            context.close(promise: nil)
        case .echo, .sink, .http:
            break
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        switch behaviour {
        case .echo: context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        case .sink: server.received.withLock { $0.append(contentsOf: buffer.readableBytesView) }
        case .http: answerHTTP(context: context, adding: buffer)
        case .send, .sendAndStay, .closeAtOnce: break
        }
    }

    private func answerHTTP(context: ChannelHandlerContext, adding buffer: ByteBuffer) {
        request.append(contentsOf: buffer.readableBytesView)
        let blankLine: [UInt8] = Array("\r\n\r\n".utf8)
        guard request.count >= 4, let end = (0...request.count - 4).first(where: { Array(request[$0..<$0 + 4]) == blankLine }) else { return }
        let head = String(decoding: request[..<end], as: UTF8.self)
        let requestLine = head.split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
        let parts = requestLine.split(separator: " ")
        let body = parts.count == 3 ? "you asked for \(parts[0]) \(parts[1])\n" : "bad request\n"
        let status = parts.count == 3 ? "200 OK" : "400 Bad Request"
        let response = "HTTP/1.1 \(status)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        request.removeAll()
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: response))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            server.halfClosed.withLock { $0 += 1 }
            if case .echo = behaviour { context.close(mode: .output, promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Polls `condition` every 20 ms for at most `seconds`; true once it holds.
func eventually(seconds: Double = 10, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}
