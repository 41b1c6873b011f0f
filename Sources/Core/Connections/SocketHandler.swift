import NIOCore

#if canImport(Glibc)
import Glibc
#endif
import NetdProtocol

/// What a socket tells the rest of netd about itself. Sent from its event loop.
enum SocketSignal: Sendable {
    /// `bytes` newly buffered from the peer.
    case data(bytes: Int, bytesRead: Int64, bytesWritten: Int64)
    /// Bytes handed to the kernel; only the counts change.
    case wrote(bytesRead: Int64, bytesWritten: Int64)
    case peerEnded
    case failed(SocketFailure)
    case idle
    case closed(hadError: Bool, bytesRead: Int64, bytesWritten: Int64)
    /// A fault acted on the socket's pair (from a relay).
    case fault(id: Int64, detail: String)
}

/// The data path of one socket: keeps what the peer sent until a client reads it, stops reading
/// from the kernel while that buffer is full (so the peer feels TCP backpressure), and tracks the
/// half-closes that make Node's readyState.
///
/// - Important: Everything here runs on the channel's event loop; ``ManagedSocket`` hops there.
///   What other loops read (unread bytes, counters, state) is kept in ``shared``, under its lock.
final class SocketHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let shared: SocketShared
    let allowHalfOpen: Bool
    private let signal: @Sendable (SocketSignal) -> Void

    private var context: ChannelHandlerContext?
    /// Copies of the shared flags, for this loop's own decisions without the lock.
    private var inputEnded = false
    private var outputEnded = false
    private var closed = false
    private var discarded = false
    private var failure: SocketFailure?
    /// Someone (netd, or this handler) asked for the full close; otherwise NIO closed on its own.
    private var closeRequested = false
    private var waiters: [UInt64: EventLoopPromise<Void>] = [:]
    private var nextWaiter: UInt64 = 0
    private var idleTimeout: TimeAmount?
    private var idleCheck: Scheduled<Void>?
    private var lastActivity = NIODeadline.now()
    /// The descriptor went to a relay (``release(id:)``): NIO's close that follows is not the socket's.
    private var released = false

    init(limit: Int, allowHalfOpen: Bool, signal: @escaping @Sendable (SocketSignal) -> Void) {
        self.shared = SocketShared(limit: limit)
        self.allowHalfOpen = allowHalfOpen
        self.signal = signal
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let active = context.channel.isActive
        shared.withLock { $0.active = active }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        shared.withLock { $0.active = true }
        lastActivity = .now()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let count = buffer.readableBytes
        let (bytesRead, bytesWritten) = shared.withLock { state in
            state.bytesRead += Int64(count)
            state.unread.append(&buffer)
            state.changes &+= 1
            return (state.bytesRead, state.bytesWritten)
        }
        noteActivity()
        signal(.data(bytes: count, bytesRead: bytesRead, bytesWritten: bytesWritten))
        wakeWaiters()
    }

    func read(context: ChannelHandlerContext) {
        // Decided under the lock: a reader on another loop that drains the buffer either sees
        // the held read and resumes it, or drained before and this reads.
        let full = shared.withLock { state in
            guard state.unread.count >= shared.limit else { return false }
            state.readHeld = true
            return true
        }
        if !full { context.read() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, !inputEnded {
            inputEnded = true
            shared.withLock { $0.inputEnded = true; $0.changes &+= 1 }
            signal(.peerEnded)
            wakeWaiters()
            if outputEnded {
                closeRequested = true
                context.close(promise: nil)
            } else if !allowHalfOpen {
                // Node ends its side too when the peer ends, unless allowHalfOpen.
                endOutput(promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(SocketErrors.failure(error, syscall: "read"))
        closeRequested = true
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if released {
            // A relay owns a copy of the descriptor; the socket lives on there.
            context.fireChannelInactive()
            return
        }
        if !inputEnded && outputEnded && !discarded && failure == nil {
            // Our side had ended, so NIO closed on the peer's FIN without an inputClosed event.
            inputEnded = true
            shared.withLock { $0.inputEnded = true; $0.changes &+= 1 }
            signal(.peerEnded)
        } else if !closeRequested && failure == nil {
            // NIO closes by itself on a reset it does not report as an error (EPOLLHUP or
            // EPOLLERR while nothing was being read). After the peer's FIN, Linux calls that
            // RST EPIPE (a write reached a closed socket); before it, ECONNRESET.
            let code = inputEnded ? "EPIPE" : "ECONNRESET"
            fail(SocketFailure(code: code, message: "\(inputEnded ? "write" : "read") \(code)"))
        }
        closed = true
        let (bytesRead, bytesWritten) = shared.withLock { state in
            state.closed = true
            state.changes &+= 1
            return (state.bytesRead, state.bytesWritten)
        }
        idleCheck?.cancel()
        idleCheck = nil
        wakeWaiters()
        signal(.closed(hadError: failure != nil, bytesRead: bytesRead, bytesWritten: bytesWritten))
        context.fireChannelInactive()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all { closeRequested = true }
        context.close(mode: mode, promise: promise)
    }

    /// Records the first failure; later ones are consequences of it.
    private func fail(_ failure: SocketFailure) {
        guard self.failure == nil, !closed else { return }
        self.failure = failure
        shared.withLock { $0.failure = failure }
        signal(.failed(failure))
    }

    // MARK: Operations from RPC methods

    /// A future that completes when data, end or close arrives, or at `deadline`.
    /// A reader found nothing when the socket had seen `changes` (``SocketShared/State/changes``)
    /// and came here to wait: what arrived since (bytes, the end, the close) answers at once
    /// instead of waiting for the next change.
    func waitForChange(after changes: UInt64, until deadline: NIODeadline, on loop: any EventLoop) -> EventLoopFuture<Void> {
        if shared.withLock({ $0.changes != changes }) {
            return loop.makeSucceededVoidFuture()
        }
        let promise = loop.makePromise(of: Void.self)
        let token = nextWaiter
        nextWaiter += 1
        waiters[token] = promise
        loop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            self?.waiters.removeValue(forKey: token)?.succeed()
        }
        return promise.futureResult
    }

    func wakeWaiters() {
        guard !waiters.isEmpty else { return }
        let ready = waiters.values
        waiters.removeAll()
        for promise in ready { promise.succeed() }
    }

    /// Writes `bytes` and completes `promise` with their count once they are handed to the kernel,
    /// or with the error (as netd answers it) if the write fails. Without `flush`, they go at the
    /// channel's next flush (``DeferredFlushes``). One promise per write, whoever waits for it.
    func write(_ bytes: [UInt8], id: Int64, flush: Bool, promise: EventLoopPromise<Int>) {
        do {
            try checkWritable(id)
        } catch {
            return promise.fail(error)
        }
        guard let context else {
            return promise.fail(SocketErrors.invalidState("ERR_SOCKET_CLOSED", "socket \(id) is closed"))
        }
        let count = bytes.count
        let buffer = context.channel.allocator.buffer(bytes: bytes)
        let written = context.eventLoop.makePromise(of: Void.self)
        if flush {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: written)
        } else {
            context.write(wrapOutboundOut(buffer), promise: written)
        }
        written.futureResult.assumeIsolated().whenComplete { result in
            switch result {
            case .success:
                let (bytesRead, bytesWritten) = self.shared.withLock { state in
                    state.bytesWritten += Int64(count)
                    return (state.bytesRead, state.bytesWritten)
                }
                self.noteActivity()
                self.signal(.wrote(bytesRead: bytesRead, bytesWritten: bytesWritten))
                promise.succeed(count)
            case .failure(let error):
                // A write that fails closes the channel (NIO does so without an errorCaught).
                guard error is ChannelError else {
                    self.fail(SocketErrors.failure(error, syscall: "write"))
                    return promise.fail(SocketErrors.response(SocketErrors.failure(error, syscall: "write"), id: nil, target: "on socket \(id)"))
                }
                // Still queued when the connection closed: what closed it answers (a reset is
                // ECONNRESET), or that it closed.
                guard let failure = self.failure else {
                    return promise.fail(SocketErrors.invalidState("ERR_SOCKET_CLOSED", "socket \(id) closed before these bytes were written"))
                }
                promise.fail(SocketErrors.response(SocketFailure(code: failure.code, message: "write \(failure.code)"), id: nil, target: "on socket \(id)"))
            }
        }
    }

    func checkWritable(_ id: Int64) throws(NetdError) {
        if let relay = shared.withLock({ $0.relay }) { throw relay.refusal(id) }
        if discarded || closed {
            throw SocketErrors.invalidState("ERR_SOCKET_CLOSED", "socket \(id) is closed")
        }
        if outputEnded {
            throw SocketErrors.invalidState("ERR_STREAM_WRITE_AFTER_END", "socket \(id) has ended its write side; nothing more can be written")
        }
    }

    /// Half-closes the write side (FIN); closes fully if the peer has ended too.
    func endOutput(promise: EventLoopPromise<Void>?) {
        guard let context, !outputEnded else {
            promise?.succeed()
            return
        }
        outputEnded = true
        shared.withLock { $0.outputEnded = true }
        if inputEnded {
            closeRequested = true
            context.close(promise: promise)
        } else {
            context.close(mode: .output, promise: promise)
        }
    }

    /// Closes now, discarding unread bytes; `reset` sends RST.
    func close(reset: Bool) -> EventLoopFuture<Void>? {
        discarded = true
        shared.withLock { state in
            state.discarded = true
            state.unread = UnreadBytes()
            state.changes &+= 1
        }
        wakeWaiters()
        guard let context, !closed else { return nil }
        let channel = context.channel
        if reset, let provider = channel as? any SocketOptionProvider {
            // SO_LINGER with a zero timeout makes close send RST.
            return provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).flatMap { channel.close() }
        }
        return channel.close()
    }

    /// Raises `timeout` events after `timeout` without traffic; nil turns it off.
    func setIdleTimeout(_ timeout: TimeAmount?) {
        idleTimeout = timeout
        idleCheck?.cancel()
        idleCheck = nil
        scheduleIdleCheck()
    }

    /// Traffic: the idle clock starts again, and a `timeout` already raised is armed once more.
    private func noteActivity() {
        lastActivity = .now()
        if idleTimeout != nil, idleCheck == nil { scheduleIdleCheck() }
    }

    /// Raises `timeout` once per idle spell, as Node does: after it fires, only traffic re-arms it.
    private func scheduleIdleCheck() {
        guard let idleTimeout, let context, !closed else { return }
        let due = lastActivity + idleTimeout
        idleCheck = context.eventLoop.assumeIsolated().scheduleTask(deadline: due) { [weak self] in
            guard let self, let timeout = self.idleTimeout else { return }
            self.idleCheck = nil
            if NIODeadline.now() >= self.lastActivity + timeout {
                self.signal(.idle)
            } else {
                self.scheduleIdleCheck()
            }
        }
    }

    /// The idle timeout set with `socket.configure`, in milliseconds, if any.
    var idleTimeoutMilliseconds: Int? {
        idleTimeout.map { Int($0.nanoseconds / 1_000_000) }
    }

    /// Starts from where another netd left the socket (`netd --replace`), before the channel
    /// exists: counters, unread bytes, ends and failure as they were, so that nothing is said
    /// twice (an end already seen raises no second `end`).
    func carryOver(_ carried: CarriedSocket, unread: [UInt8]) {
        inputEnded = carried.inputEnded
        outputEnded = carried.outputEnded
        failure = carried.failure
        shared.withLock { state in
            state.bytesRead = carried.bytesRead
            state.bytesWritten = carried.bytesWritten
            state.inputEnded = carried.inputEnded
            state.outputEnded = carried.outputEnded
            state.eofDelivered = carried.eofDelivered
            state.failure = carried.failure
            if !unread.isEmpty {
                var buffer = ByteBuffer(bytes: unread)
                state.unread.append(&buffer)
            }
            if carried.closed {
                state.closed = true
                state.active = true
            }
        }
        if carried.closed {
            // Only its unread bytes came over: the channel that holds them closes at once, quietly.
            closed = true
            released = true
        }
    }

    /// A client drained the buffer below the limit while a read was held (``SocketShared/take``).
    func resumeReading() {
        context?.read()
    }
}

/// A socket's descriptor and what NIO held of it, handed to a relay.
struct ReleasedSocket: Sendable {
    /// A duplicate of the channel's descriptor (close-on-exec); the relay owns it.
    let descriptor: CInt
    /// Bytes received and never read: they go to the other side first.
    let unread: [UInt8]
    /// netd had ended the write side already.
    let outputEnded: Bool
    let allowHalfOpen: Bool
}

extension SocketHandler {
    /// Hands the socket's descriptor over to a relay: once every write made so far is with the
    /// kernel, takes a duplicate of the descriptor and the unread bytes, then closes the NIO
    /// channel, which only closes NIO's own descriptor (no shutdown): the connection lives on in
    /// the duplicate, owned by the relay from here on.
    ///
    /// - Important: The caller set ``SocketShared/State/relay`` first, so no new write, read or
    ///   end slips in while the earlier writes drain.
    func release(id: Int64, on loop: any EventLoop) -> EventLoopFuture<ReleasedSocket> {
        guard let context, !closed, !discarded else {
            return loop.makeFailedFuture(SocketErrors.invalidState("ERR_SOCKET_CLOSED", "socket \(id) is closed"))
        }
        let drained = loop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: drained)
        return drained.futureResult.assumeIsolated().flatMapResult { _ -> Result<ReleasedSocket, any Error> in
            guard let context = self.context, !self.closed, !self.discarded else {
                return .failure(SocketErrors.invalidState("ERR_SOCKET_CLOSED", "socket \(id) closed before it could be joined"))
            }
            let duplicate: CInt?
            do {
                duplicate = try context.channel.pipeline.syncOperations.withUnsafeTransportIfAvailable(of: NIOBSDSocket.Handle.self) {
                    fcntl($0, F_DUPFD_CLOEXEC, 0)
                }
            } catch {
                return .failure(NetdError.internalFailure("cannot reach socket \(id)'s descriptor: \(error)"))
            }
            guard let duplicate, duplicate >= 0 else {
                return .failure(SocketErrors.response(SocketFailure(code: "EMFILE", message: "dup EMFILE"), id: nil, target: "on socket \(id)"))
            }
            let unread = self.shared.withLock { state -> [UInt8] in
                state.readHeld = false
                state.changes &+= 1
                return state.unread.takeAll()
            }
            self.released = true
            self.setIdleTimeout(nil)
            self.wakeWaiters()
            context.close(promise: nil)
            return .success(ReleasedSocket(descriptor: duplicate, unread: unread, outputEnded: self.outputEnded, allowHalfOpen: self.allowHalfOpen))
        }.nonisolated()
    }
}
