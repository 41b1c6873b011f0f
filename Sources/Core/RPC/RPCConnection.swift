import Foundation
import NIOCore
import NetdFraming
import NetdProtocol
import NetdRelay
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One RPC client's connection, on its event loop: splits what the client sends into lines,
/// reads each line once (``IncomingFrame/decode(_:)``), hands every call to the ``Dispatcher``,
/// and is the one writer of the connection, for answers and notifications alike.
///
/// Answers made while a read is being served leave together in one write when it completes;
/// answers that come later (futures, tasks) leave as they come. While the client does not read
/// its answers (the channel is not writable), nothing more is read from it, so netd never piles
/// up answers in memory. Requests still waiting when the connection closes are cancelled: a
/// `socket.read` or `server.accept` takes nothing that nobody would receive.
///
/// - Important: Event-loop confined, like every channel handler; tasks hop back here to answer.
final class RPCConnection: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let dispatcher: Dispatcher
    private let eventLoop: any EventLoop
    /// Runs this connection's waiting requests as tasks on its event loop.
    private let executor: EventLoopTaskExecutor
    private let maxRequests: Int
    private let maxLineBytes: Int
    private var lines: LineFrameDecoder
    /// Bytes of a line whose newline has not arrived yet.
    private var partial: ByteBuffer?
    /// Set when the connection is admitted and its caller known; nothing is read before.
    private var requestContext: RequestContext?
    private var channelContext: ChannelHandlerContext?

    /// Answers waiting for the end of the current read, written together.
    private var answers = AnswerLines()
    private var inRead = false
    private var readHeld = false
    /// Notification lines from other threads, written by this handler.
    let outbox: NotificationOutbox
    /// Sockets written during the current read, flushed when it completes.
    private let flushes = DeferredFlushes()

    /// Requests answered later, by token: their tasks (nil for a future), to cancel at close.
    private var inFlight: [UInt64: Task<Void, Never>?] = [:]
    private var nextToken: UInt64 = 0
    private var inputEnded = false
    /// The input ended before the connection was started.
    private var endedEarly = false
    private var closed = false

    /// A request that switches the connection to a socket's byte stream is being served
    /// (contract section 9): nothing more is read or parsed until it is answered. What the
    /// client sent after its line waits in ``partial``: the socket's first bytes on success,
    /// requests again on an error answer.
    private var switching: StreamSlot?
    /// The input ended while switching; handled once the switch is decided.
    private var endedWhileSwitching = false
    /// The switch's answer and stream, waiting for the other requests in flight to be answered first.
    private var pendingSwitch: (response: ResponseMessage, stream: PreparedStream)?

    /// Answer lines that carry a descriptor (contract section 11), in order. While any waits,
    /// later answers wait behind it, so that no byte overtakes the descriptor's line.
    private var descriptorAnswers: [(line: [UInt8], descriptor: CInt)] = []
    /// The first of ``descriptorAnswers`` is being sent.
    private var passing = false

    /// Requests in flight across netd, and whether connections read at all (`netd --replace`).
    private let gate: RequestGate

    /// How long a line may stay incomplete (`--rpc-idle-timeout`); nil: as long as it likes.
    private let lineTimeout: TimeAmount?
    /// When the line now incomplete began to arrive, and the check that closes the connection if
    /// it is still incomplete at its time.
    private var lineStartedAt: NIODeadline?
    private var lineCheck: Scheduled<Void>?

    init(dispatcher: Dispatcher, eventLoop: any EventLoop, maxRequests: Int, maxLineBytes: Int, gate: RequestGate, lineTimeout: TimeAmount? = nil) {
        self.gate = gate
        self.lineTimeout = lineTimeout
        self.dispatcher = dispatcher
        self.eventLoop = eventLoop
        self.executor = EventLoopTaskExecutor(eventLoop)
        self.outbox = NotificationOutbox(eventLoop: eventLoop)
        self.maxRequests = maxRequests
        self.maxLineBytes = maxLineBytes
        self.lines = LineFrameDecoder(maximumLineBytes: maxLineBytes)
    }

    // MARK: Life

    func handlerAdded(context: ChannelHandlerContext) {
        channelContext = context
        outbox.attach(NIOLoopBound(self, eventLoop: context.eventLoop))
    }

    /// Starts serving once the caller is known (credentials read, connection admitted).
    func start(_ requestContext: RequestContext) {
        var requestContext = requestContext
        requestContext.flushes = NIOLoopBound(flushes, eventLoop: eventLoop)
        self.requestContext = requestContext
        guard let context = channelContext else { return }
        // NIO may have read what came with an early end of input; it is served now.
        if var early = partial {
            partial = nil
            inRead = true
            flushes.open()
            serveLines(in: &early, context: context)
            flushes.close()
            inRead = false
            writeAnswers(context: context)
        }
        if endedEarly { endInput(context: context) }
        // The channel was made with autoRead off; from here it reads (see `read(context:)`).
        context.channel.setOption(.autoRead, value: true).whenComplete { _ in }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        // A stream that never started: its socket closes, as when an attached client goes away.
        switching?.abandon()
        switching = nil
        pendingSwitch?.stream.abandon()
        pendingSwitch = nil
        for (_, descriptor) in descriptorAnswers { Glibc.close(descriptor) }
        descriptorAnswers.removeAll()
        serveLastLine(context: context)
        // What the client had asked to write still goes to its sockets.
        flushes.close()
        answers = AnswerLines()
        let waiting = inFlight.values.compactMap { $0 }
        gate.ended(inFlight.count)
        inFlight.removeAll()
        for task in waiting { task.cancel() }
        outbox.close()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is RequestGate.Resume {
            if readHeld, switching == nil, !inputEnded, context.channel.isWritable {
                readHeld = false
                context.read()
            }
            return
        }
        if case ChannelEvent.inputClosed = event {
            if requestContext == nil {
                endedEarly = true
            } else if switching != nil {
                endedWhileSwitching = true
            } else {
                endInput(context: context)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// The client sent its last byte (or netd stops reading): a last line without newline
    /// counts, and the connection closes once everything is answered.
    private func endInput(context: ChannelHandlerContext) {
        guard !inputEnded else { return }
        serveLastLine(context: context)
        flushes.close()
        inputEnded = true
        writeAnswers(context: context)
        closeIfDone(context: context)
    }

    private func closeIfDone(context: ChannelHandlerContext) {
        guard inputEnded, inFlight.isEmpty, !closed else { return }
        closed = true
        context.close(promise: nil)
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        guard !inputEnded else { return }
        guard requestContext != nil, switching == nil else {
            // Not started yet: kept, and served by `start`.
            if partial == nil { partial = incoming } else { partial!.writeBuffer(&incoming) }
            return
        }
        inRead = true
        flushes.open()
        if var buffer = partial {
            partial = nil
            buffer.writeBuffer(&incoming)
            serveLines(in: &buffer, context: context)
        } else {
            serveLines(in: &incoming, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // The sockets' writes complete in this flush, and their answers join the others.
        flushes.close()
        inRead = false
        writeAnswers(context: context)
        watchIncompleteLine(context: context)
        context.fireChannelReadComplete()
    }

    /// Reads only while the client takes its answers.
    func read(context: ChannelHandlerContext) {
        guard requestContext != nil else { return }
        if switching != nil || gate.isPaused {
            readHeld = true
        } else if context.channel.isWritable {
            context.read()
        } else {
            readHeld = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            outbox.unblock()
            if readHeld, switching == nil, !gate.isPaused {
                readHeld = false
                context.read()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    private func serveLines(in buffer: inout ByteBuffer, context: ChannelHandlerContext) {
        // A switching request stops the parsing: what follows it may be the socket's bytes.
        while switching == nil, let frame = lines.next(&buffer) {
            serve(frame, context: context)
        }
        if buffer.readableBytes > 0 {
            buffer.discardReadBytes()
            partial = buffer
        }
    }

    private func serveLastLine(context: ChannelHandlerContext) {
        guard !inputEnded else { return }
        var buffer = partial ?? ByteBuffer()
        partial = nil
        while let frame = lines.next(&buffer) { serve(frame, context: context) }
        if let frame = lines.last(&buffer) { serve(frame, context: context) }
    }

    /// Starts the clock when a line stays incomplete after a read, stops it once none is; a line
    /// still incomplete when its time is up gets one error line, and the connection closes.
    private func watchIncompleteLine(context: ChannelHandlerContext) {
        guard let lineTimeout, switching == nil else { return }
        guard partial != nil, !inputEnded, !closed else {
            lineStartedAt = nil
            lineCheck?.cancel()
            lineCheck = nil
            return
        }
        guard lineStartedAt == nil else { return }
        let started = NIODeadline.now()
        lineStartedAt = started
        lineCheck = context.eventLoop.assumeIsolated().scheduleTask(deadline: started + lineTimeout) { [weak self] in
            guard let self, self.lineStartedAt == started, self.partial != nil, !self.closed, self.switching == nil else { return }
            self.lineCheck = nil
            let seconds = lineTimeout.nanoseconds / 1_000_000_000
            let error = ResponseError.invalidRequest(
                "a request line stayed incomplete for \(seconds) s (--rpc-idle-timeout); closing",
                data: .object(["limit": .string("rpc-idle-timeout")]))
            self.send(.single(ResponseMessage(id: .null, outcome: .error(error))), context: context)
            self.writeAnswers(context: context)
            // The incomplete line is not served as a last line: it is what the error is about.
            self.inputEnded = true
            self.closed = true
            context.close(promise: nil)
        }
    }

    // MARK: Serving

    private func serve(_ frame: LineFrame, context: ChannelHandlerContext) {
        guard let requestContext else { return }
        switch frame {
        case .oversized(let bytes):
            send(.single(ResponseMessage(id: .null, outcome: .error(.oversized(bytes: bytes, limit: maxLineBytes)))), context: context)
        case .line(let line):
            switch line.withUnsafeReadableBytes(IncomingFrame.decode) {
            case .single(let call) where call.switchesToStream:
                let slot = StreamSlot()
                var switchingContext = requestContext
                switchingContext.stream = slot
                switching = slot
                serve(call, context: context, requestContext: switchingContext) { response in
                    self.switchAnswered(response, slot: slot, context: context)
                }
            case .single(let call) where call.passesDescriptor:
                let slot = DescriptorSlot()
                var handingContext = requestContext
                handingContext.descriptorSlot = slot
                serve(call, context: context, requestContext: handingContext) { response in
                    guard let response else { return slot.abandon() }
                    if case .result = response.outcome, let descriptor = slot.take() {
                        self.send(response, with: descriptor, context: context)
                    } else {
                        slot.abandon()
                        self.send(.single(response), context: context)
                    }
                }
            case .single(let call):
                serve(call, context: context, requestContext: requestContext) { response in
                    if let response { self.send(.single(response), context: context) }
                }
            case .batch(let calls):
                serve(batch: calls, context: context, requestContext: requestContext)
            }
        }
    }

    private func serve(batch calls: [IncomingCall], context: ChannelHandlerContext, requestContext: RequestContext) {
        var slots = [ResponseMessage?](repeating: nil, count: calls.count)
        var remaining = calls.count
        for (index, call) in calls.enumerated() {
            serve(call, context: context, requestContext: requestContext) { response in
                slots[index] = response
                remaining -= 1
                guard remaining == 0 else { return }
                let responses = slots.compactMap { $0 }
                // A batch of notifications gets nothing back, not even an empty array.
                if !responses.isEmpty { self.send(.batch(responses), context: context) }
            }
        }
    }

    /// Serves one call and gives its response (nil for a notification) to `done`, on this loop.
    private func serve(
        _ call: IncomingCall, context: ChannelHandlerContext, requestContext: RequestContext,
        done: @escaping (ResponseMessage?) -> Void
    ) {
        func answer(_ outcome: ResponseMessage.Outcome) {
            if case .error = outcome {
                dispatcher.metrics.request(call.methodName, ok: false)
            } else {
                dispatcher.metrics.request(call.methodName, ok: true)
            }
            guard case .respond(let id) = call.reply else { return done(nil) }
            done(ResponseMessage(id: id, outcome: outcome))
        }
        let reply = dispatcher.dispatch(call, context: requestContext)
        if case .now(let outcome) = reply { return answer(outcome) }
        guard inFlight.count < maxRequests else {
            return answer(Dispatcher.outcome(
                for: NetdError.limit(
                    code: "EBUSY",
                    "this connection has \(maxRequests) requests waiting for answers already (--max-requests-per-client); wait for some",
                    limit: .maxRequestsPerClient, max: maxRequests),
                method: "", context: requestContext))
        }
        let token = nextToken
        nextToken += 1
        let loop = context.eventLoop
        let finish: (ResponseMessage.Outcome) -> Void = { outcome in
            guard self.inFlight.removeValue(forKey: token) != nil else { return }  // closed meanwhile
            self.gate.ended()
            answer(outcome)
            self.closeIfDone(context: context)
            self.switchIfReady(context: context)
        }
        switch reply {
        case .now: break
        case .future(let future):
            inFlight[token] = .some(nil)
            gate.began()
            future.hop(to: loop).assumeIsolated().whenSuccess(finish)
        case .task(let work):
            let bound = NIOLoopBound(finish, eventLoop: loop)
            gate.began()
            inFlight[token] = Task(executorPreference: executor) {
                let outcome = await work()
                loop.execute { bound.value(outcome) }
            }
        }
    }

    // MARK: Writing

    private func send(_ answer: AnswerLines.Answer, context: ChannelHandlerContext) {
        guard !closed else { return }
        answers.append(answer, logger: requestContext?.logger)
        // Inside a read, answers wait for its end and leave in one write.
        if !inRead { writeAnswers(context: context) }
    }

    private func writeAnswers(context: ChannelHandlerContext) {
        guard !answers.isEmpty, !closed, descriptorAnswers.isEmpty else { return }
        let ready = answers.take(allocator: context.channel.allocator)
        context.writeAndFlush(wrapOutboundOut(ready), promise: nil)
    }

    /// Moves the notifications queued in ``outbox`` behind the answers already made.
    func drainOutbox() {
        guard let context = channelContext else { return }
        answers.append(lines: outbox.take())
        if !inRead { writeAnswers(context: context) }
        if !context.channel.isWritable { outbox.block() }
    }

    // MARK: Switching to a byte stream (contract section 9)

    /// The switching request was answered: on success with a prepared stream, the connection
    /// becomes the socket's stream once the other requests in flight are answered; otherwise the
    /// answer goes out and the connection serves requests again, from the bytes that waited.
    private func switchAnswered(_ response: ResponseMessage?, slot: StreamSlot, context: ChannelHandlerContext) {
        guard !closed else { return slot.abandon() }
        if let response, case .result = response.outcome, let stream = slot.take() {
            pendingSwitch = (response, stream)
            switchIfReady(context: context)
            return
        }
        slot.abandon()
        switching = nil
        if let response { send(.single(response), context: context) }
        if var waiting = partial {
            partial = nil
            let wasInRead = inRead
            inRead = true
            flushes.open()
            serveLines(in: &waiting, context: context)
            flushes.close()
            inRead = wasInRead
            if !inRead { writeAnswers(context: context) }
        }
        guard switching == nil else { return }
        if endedWhileSwitching {
            endedWhileSwitching = false
            endInput(context: context)
        } else if readHeld, context.channel.isWritable, !gate.isPaused {
            readHeld = false
            context.read()
        }
    }

    /// Writes the switch's answer line last, then hands the connection's descriptor and what the
    /// client sent after its request to the prepared stream, and closes NIO's channel (which
    /// closes only NIO's descriptor: the relay owns its duplicate from here on).
    private func switchIfReady(context: ChannelHandlerContext) {
        guard let (response, stream) = pendingSwitch, inFlight.isEmpty, !closed else { return }
        pendingSwitch = nil
        answers.append(.single(response), logger: requestContext?.logger)
        answers.append(lines: outbox.take())
        let ready = answers.take(allocator: context.channel.allocator)
        closed = true
        outbox.close()
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(ready), promise: written)
        written.futureResult.assumeIsolated().whenComplete { result in
            let descriptor: CInt? =
                if case .success = result {
                    try? context.channel.pipeline.syncOperations.withUnsafeTransportIfAvailable(of: NIOBSDSocket.Handle.self) {
                        fcntl($0, F_DUPFD_CLOEXEC, 0)
                    }
                } else { nil }
            let leftover = self.partial.map { Array($0.readableBytesView) } ?? []
            self.partial = nil
            self.switching = nil
            context.close(promise: nil)
            if let descriptor, descriptor >= 0 {
                stream.start(descriptor, leftover)
            } else {
                stream.abandon()
            }
        }
    }

    // MARK: Passing descriptors (contract section 11)

    /// Queues an answer line that carries `descriptor`: the answers made before it go first,
    /// then the line with the descriptor on its first byte, then whatever came after.
    private func send(_ response: ResponseMessage, with descriptor: CInt, context: ChannelHandlerContext) {
        guard !closed, let line = try? response.line() else {
            Glibc.close(descriptor)
            return
        }
        // Blocking, as systemd hands sockets over: the flag belongs to the open file, which the
        // receiver shares, and netd's own copy is closed once it is sent.
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~O_NONBLOCK)
        if !answers.isEmpty, descriptorAnswers.isEmpty {
            let ready = answers.take(allocator: context.channel.allocator)
            context.writeAndFlush(wrapOutboundOut(ready), promise: nil)
        }
        descriptorAnswers.append((Array(line), descriptor))
        passNextDescriptor(context: context)
    }

    /// Once NIO has handed every earlier byte to the kernel, sends the first waiting line with its
    /// descriptor.
    private func passNextDescriptor(context: ChannelHandlerContext) {
        guard !passing, !closed, !descriptorAnswers.isEmpty else { return }
        passing = true
        let flushed = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: flushed)
        flushed.futureResult.assumeIsolated().whenComplete { _ in self.tryPassing(context: context, wait: .milliseconds(1)) }
    }

    /// Sends the line with its descriptor once the client has read everything before it (so the
    /// recvmsg that takes the descriptor begins with its line) and the socket takes it; retries
    /// meanwhile, waiting longer each time (up to 50 ms). What sendmsg did not take of the line
    /// follows through NIO, ahead of every later answer.
    private func tryPassing(context: ChannelHandlerContext, wait: TimeAmount) {
        guard !closed, let (line, descriptor) = descriptorAnswers.first else {
            passing = false
            return
        }
        let sent: DescriptorPassing.Sent? = try? context.channel.pipeline.syncOperations.withUnsafeTransportIfAvailable(
            of: NIOBSDSocket.Handle.self
        ) { socket in
            guard DescriptorPassing.unread(on: socket) ?? 0 == 0 else { return .wouldBlock }
            return DescriptorPassing.send(line, with: descriptor, on: socket)
        } ?? nil
        switch sent {
        case .bytes(let count):
            Glibc.close(descriptor)
            descriptorAnswers.removeFirst()
            if count < line.count {
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: line[count...])), promise: nil)
            }
            passing = false
            if descriptorAnswers.isEmpty { writeAnswers(context: context) } else { passNextDescriptor(context: context) }
        case .wouldBlock:
            let next = min(wait * 2, .milliseconds(50))
            context.eventLoop.assumeIsolated().scheduleTask(in: wait) { self.tryPassing(context: context, wait: next) }
        case .failed, nil:
            // The client cannot receive it (gone, or not a socket that can carry descriptors).
            requestContext?.logger.debug("cannot pass a descriptor; closing the connection")
            passing = false
            context.close(promise: nil)
        }
    }
}
