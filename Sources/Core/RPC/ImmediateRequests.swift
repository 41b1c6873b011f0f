import Foundation
import NIOCore
import NetdFraming
import NetdProtocol

/// What an RPC connection's serving task receives: a decoded line, or the size of one too long.
enum RPCFrame: Sendable {
    case decoded(IncomingFrame)
    case oversized(Int)
}

/// Splits what an RPC client sends into lines (``LineFrameDecoder``: one handler, not a decoder
/// handler in front of this one), decodes each line on the event loop that read it, and answers there and then the ones
/// that never wait (`netd.ping`, `netd.status`, invalid requests, ...): no task, no thread hop,
/// and answers to pipelined requests leave in one write. Everything else goes on to the
/// connection's serving task. While the client is not reading its answers, everything goes to the
/// task too, whose writer waits for the socket (so netd never piles up answers in memory).
///
/// - Important: Event-loop confined, like every channel handler.
final class ImmediateRequests: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = RPCFrame
    typealias OutboundOut = ByteBuffer

    private let dispatcher: Dispatcher
    private let decoder = JSONDecoder()
    private let encoder = JSONCoding.encoder()
    /// Answers made during the current read, written together when it completes.
    private var answers = JSONWriter(capacity: 4096)
    /// Set once the connection is admitted and its caller known; until then all lines go on.
    var requestContext: RequestContext?

    private var lines: LineFrameDecoder
    /// Bytes of a line whose newline has not arrived yet.
    private var partial: ByteBuffer?

    init(dispatcher: Dispatcher, maximumLineBytes: Int) {
        self.dispatcher = dispatcher
        self.lines = LineFrameDecoder(maximumLineBytes: maximumLineBytes)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if var buffer = partial {
            partial = nil
            buffer.writeBuffer(&incoming)
            serveLines(in: &buffer, context: context)
        } else {
            serveLines(in: &incoming, context: context)
        }
    }

    private func serveLines(in buffer: inout ByteBuffer, context: ChannelHandlerContext) {
        while let frame = lines.next(&buffer) {
            serve(frame, context: context)
        }
        if buffer.readableBytes > 0 {
            buffer.discardReadBytes()
            partial = buffer
        }
    }

    /// The input ended (half-close) or the connection went: a last line without its newline counts.
    private func serveLastLine(context: ChannelHandlerContext) {
        var buffer = partial ?? ByteBuffer()
        partial = nil
        while let frame = lines.next(&buffer) { serve(frame, context: context) }
        if let frame = lines.last(&buffer) { serve(frame, context: context) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        serveLastLine(context: context)
        writeAnswers(context: context)
        context.fireChannelInactive()
    }

    private func serve(_ frame: LineFrame, context: ChannelHandlerContext) {
        switch frame {
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

    /// A last line without a newline is served when the input ends, with no read-complete after
    /// it: its answer must leave before the end goes on (and the connection is closed).
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { serveLastLine(context: context) }
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

    /// How many requests the line holds.
    var callCount: Int {
        switch self {
        case .single: 1
        case .batch(let calls): calls.count
        }
    }
}
