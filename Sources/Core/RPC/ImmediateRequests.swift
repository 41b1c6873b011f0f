import Foundation
import NIOCore
import NetdFraming
import NetdProtocol

/// What an RPC connection's serving task receives: a decoded line, or the size of one too long.
enum RPCFrame: Sendable {
    case decoded(IncomingFrame)
    case oversized(Int)
}

/// Decodes each request line on the event loop that read it, and answers there and then the ones
/// that never wait (`netd.ping`, `netd.status`, invalid requests, ...): no task, no thread hop,
/// and answers to pipelined requests leave in one write. Everything else goes on to the
/// connection's serving task. While the client is not reading its answers, everything goes to the
/// task too, whose writer waits for the socket (so netd never piles up answers in memory).
///
/// - Important: Event-loop confined, like every channel handler.
final class ImmediateRequests: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = LineFrame
    typealias InboundOut = RPCFrame
    typealias OutboundOut = ByteBuffer

    private let dispatcher: Dispatcher
    private let decoder = JSONDecoder()
    private let encoder = JSONCoding.encoder()
    /// Answers made during the current read, written together when it completes.
    private var answers = JSONWriter(capacity: 4096)
    /// Set once the connection is admitted and its caller known; until then all lines go on.
    var requestContext: RequestContext?

    init(dispatcher: Dispatcher) {
        self.dispatcher = dispatcher
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .oversized(let bytes):
            context.fireChannelRead(wrapInboundOut(.oversized(bytes)))
        case .line(let line):
            let frame =
                line.withUnsafeReadableBytes(IncomingFrame.decodeSimple)
                ?? IncomingFrame.decode(Data(line.readableBytesView), decoder: decoder)
            guard let requestContext, context.channel.isWritable, let calls = dispatcher.immediateCalls(frame) else {
                context.fireChannelRead(wrapInboundOut(.decoded(frame)))
                return
            }
            answer(calls, batch: frame.isBatch, frame: frame, requestContext: requestContext, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        writeAnswers(context: context)
        context.fireChannelReadComplete()
    }

    private func writeAnswers(context: ChannelHandlerContext) {
        guard !answers.bytes.isEmpty else { return }
        let ready = context.channel.allocator.buffer(bytes: answers.bytes)
        answers.bytes.removeAll(keepingCapacity: true)
        context.writeAndFlush(wrapOutboundOut(ready), promise: nil)
    }

    /// A last line without a newline is decoded when the input ends, with no read-complete after
    /// it: its answer must leave before the end goes on (and the connection is closed).
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        writeAnswers(context: context)
        context.fireUserInboundEventTriggered(event)
    }

    private func answer(
        _ calls: [Dispatcher.ImmediateCall], batch: Bool, frame: IncomingFrame, requestContext: RequestContext,
        context: ChannelHandlerContext
    ) {
        let written = answers.bytes.count
        do {
            let responses = calls.compactMap { dispatcher.respond(to: $0, context: requestContext) }
            // A notification, or a batch of them, gets nothing back.
            guard !responses.isEmpty else { return }
            if batch {
                try ResponseMessage.write(batch: responses, line: &answers, encoder: encoder)
            } else {
                try responses[0].write(line: &answers, encoder: encoder)
            }
        } catch {
            // Cannot happen for these results; the serving task reports it properly if it does.
            answers.bytes.removeSubrange(written...)
            context.fireChannelRead(wrapInboundOut(.decoded(frame)))
        }
    }
}

extension IncomingFrame {
    var isBatch: Bool {
        if case .batch = self { true } else { false }
    }
}
