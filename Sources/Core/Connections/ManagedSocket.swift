import Foundation
import NIOCore
import NetdProtocol
import NetdRelay
import Synchronization

#if canImport(Glibc)
import Glibc
import NetdLocks
#endif

/// A socket netd holds for a user: what never changes about it, its channel, whose
/// ``SocketHandler`` runs its data path on the channel's event loop, and what that handler shares
/// with every loop (``SocketShared``): `socket.get` and reads of buffered bytes never hop.
final class ManagedSocket: Sendable {
    let id: Int64
    let role: Role
    let kind: Kind
    let owner: Owner
    let host: String?
    let serverID: Int64?
    let label: String?
    let openedAt: String
    let local: Endpoint?
    let remote: Endpoint?
    let channel: any Channel
    private let handler: NIOLoopBound<SocketHandler>
    let shared: SocketShared
    private let closedAt = Locked<String?>(nil)
    /// The sequence number of this socket's history record, for waiting until it is committed.
    let recordSequence: UInt64
    /// The socket's description with what never changes encoded once; ``info()`` fills in the rest.
    /// It changes once at most: when the socket joins a pair, its `peer` is encoded in.
    private let described: Locked<SocketInfo>
    /// The relay pair that carries the socket's bytes once it is attached or piped, and its side.
    private let relayLink = Locked<(link: RelayLink, side: Int)?>(nil)
    /// Who took the socket's descriptor, once `socket.handoff` gave it away.
    private let taker = Locked<Owner?>(nil)

    init(
        id: Int64, role: Role, kind: Kind, owner: Owner, host: String?, serverID: Int64?, label: String?,
        openedAt: String, local: Endpoint?, remote: Endpoint?, channel: any Channel, handler: NIOLoopBound<SocketHandler>,
        shared: SocketShared, recordSequence: UInt64
    ) {
        self.id = id
        self.role = role
        self.kind = kind
        self.owner = owner
        self.host = host
        self.serverID = serverID
        self.label = label
        self.openedAt = openedAt
        self.local = local
        self.remote = remote
        self.channel = channel
        self.handler = handler
        self.shared = shared
        self.recordSequence = recordSequence
        let described = SocketInfo(
            id: id, role: role, kind: kind, state: .opening, local: local, remote: remote, host: host, server: serverID,
            label: label, owner: owner, bytesRead: 0, bytesWritten: 0, buffered: 0, openedAt: openedAt, closedAt: nil, error: nil)
        // Encoding plain values cannot fail; if it ever did, each description is encoded whole.
        self.described = Locked((try? described.withIdentityEncoded()) ?? described)
    }

    /// When it closed, once it has.
    var closedTime: String? { closedAt.withLock { $0 } }

    func markClosed(at time: String) {
        closedAt.withLock { if $0 == nil { $0 = time } }
    }

    /// Runs `body` with the handler on the channel's event loop: at once when the caller is on it
    /// already (a request of the RPC connection that opened the socket), else by submitting it.
    private func onLoop<T: Sendable>(_ body: @escaping @Sendable (SocketHandler) throws -> T) async throws -> T {
        let handler = self.handler
        if channel.eventLoop.inEventLoop { return try body(handler.value) }
        return try await channel.eventLoop.submit { try body(handler.value) }.get()
    }

    private func onLoop<T: Sendable>(_ body: @escaping @Sendable (SocketHandler) throws -> EventLoopFuture<T>) async throws -> T {
        let handler = self.handler
        if channel.eventLoop.inEventLoop { return try await body(handler.value).get() }
        return try await channel.eventLoop.flatSubmit {
            do { return try body(handler.value) } catch { return self.channel.eventLoop.makeFailedFuture(error) }
        }.get()
    }

    /// `socket.read` on any loop: what is buffered now, or nil when the read must wait for bytes
    /// (then ``read(maxBytes:encoding:wait:)``). A read that drains a full buffer has the
    /// socket's loop read from the kernel again.
    func readNow(maxBytes: Int, encoding: DataEncoding, wait: Bool) throws(NetdError) -> SocketReadMethod.Result? {
        if let taken = try take(maxBytes: maxBytes, encoding: encoding) { return taken }
        return wait ? nil : SocketReadMethod.Result(data: "", encoding: encoding, bytes: 0, eof: false)
    }

    private func take(maxBytes: Int, encoding: DataEncoding) throws(NetdError) -> SocketReadMethod.Result? {
        try takeNoting(maxBytes: maxBytes, encoding: encoding).result
    }

    private func takeNoting(maxBytes: Int, encoding: DataEncoding) throws(NetdError) -> SocketShared.Taken {
        let taken = try shared.take(maxBytes: maxBytes, encoding: encoding, id: id)
        if taken.resumeReading {
            let handler = self.handler
            channel.eventLoop.execute { handler.value.resumeReading() }
        }
        return taken
    }

    /// `socket.write` as a future: complete once the bytes are with the kernel.
    ///
    /// - Parameter flushes: the caller's deferred flushes: while a read of requests is served, the
    ///   write waits for the end of that read and leaves with the others, on the socket's loop in
    ///   one task per loop however many sockets and writes there are.
    func writeFuture(_ bytes: [UInt8], flushes: NIOLoopBound<DeferredFlushes>? = nil) -> EventLoopFuture<Int> {
        let id = self.id
        let handler = self.handler
        let loop = channel.eventLoop
        let channel = self.channel
        let promise = loop.makePromise(of: Int.self)
        if let flushes, flushes.eventLoop.inEventLoop, flushes.value.isOpen {
            if loop === flushes.eventLoop {
                handler.value.write(bytes, id: id, flush: false, promise: promise)
                flushes.value.add(channel)
            } else {
                flushes.value.add(on: loop, DeferredFlushes.RemoteWrite(
                    run: {
                        handler.value.write(bytes, id: id, flush: false, promise: promise)
                        return channel
                    },
                    abandon: { promise.fail($0) }))
            }
        } else if loop.inEventLoop {
            handler.value.write(bytes, id: id, flush: true, promise: promise)
        } else {
            loop.execute { handler.value.write(bytes, id: id, flush: true, promise: promise) }
        }
        return promise.futureResult
    }

    /// The socket as contract section 3 describes it, right now, from any loop.
    func info() -> SocketInfo {
        let now = shared.snapshot
        let attached = now.state != .closed && shared.withLock { $0.relay == .attached }
        var info = described.withLock { $0 }.with(
            state: now.state, bytesRead: now.bytesRead, bytesWritten: now.bytesWritten, buffered: now.buffered,
            closedAt: now.state == .closed ? closedAt.withLock { $0 } : nil, error: now.failure, attached: attached ? true : nil)
        info.handedOff = taker.withLock { $0 }
        return info
    }

    /// The socket's descriptor went to `owner`'s process.
    func handedOff(to owner: Owner) {
        taker.withLock { $0 = owner }
    }

    // MARK: Relays (contract sections 9 and 10)

    /// Marks the socket as carried by a relay from now on, so that reads, writes and ends are
    /// refused while its descriptor changes hands; -32003 if it is closed or relayed already.
    func claimRelay(_ role: RelayRole) throws(NetdError) {
        let id = self.id
        let refusal = shared.withLock { state -> NetdError? in
            if state.closed || state.discarded { return SocketErrors.invalidState("ERR_SOCKET_CLOSED", "socket \(id) is closed") }
            if let relay = state.relay { return relay.refusal(id) }
            state.relay = role
            return nil
        }
        if let refusal { throw refusal }
    }

    /// Gives up a claim that never reached the relay (the other socket of a pipe was refused).
    func unclaimRelay() {
        shared.withLock { $0.relay = nil }
    }

    /// Takes the descriptor out of NIO for a relay (``SocketHandler/release(id:on:)``).
    func release() async throws(NetdError) -> ReleasedSocket {
        let id = self.id
        let loop = channel.eventLoop
        do {
            return try await onLoop { $0.release(id: id, on: loop) }
        } catch let error as NetdError {
            throw error
        } catch {
            throw NetdError.internalFailure("cannot hand socket \(id) to the relay: \(error)")
        }
    }

    /// Claims the socket for `role` and takes it out of NIO (``release()``); a failure leaves it as
    /// it was. For one socket at a time (attach, hand-off); a pipe claims both of its sockets first.
    func takeOut(as role: RelayRole) async throws(NetdError) -> ReleasedSocket {
        try claimRelay(role)
        do {
            return try await release()
        } catch {
            unclaimRelay()
            throw error
        }
    }

    /// The socket's bytes now travel through `link`, on `side`.
    func joined(_ link: RelayLink, side: Int) {
        relayLink.withLock { $0 = (link, side) }
    }

    /// The other socket of its pair, encoded into its identity from now on.
    func setPeer(_ peer: Int64) {
        described.withLock { described in
            var copy = described
            copy.peer = peer
            described = (try? copy.withIdentityEncoded()) ?? copy
        }
    }

    var relayRole: RelayRole? { shared.withLock { $0.relay } }

    /// The relay pair that carries the socket, and its side, once joined.
    var relayed: (link: RelayLink, side: Int)? { relayLink.withLock { $0 } }

    /// The peer socket encoded into its identity, if it was joined to one.
    var peer: Int64? { described.withLock { $0.peer } }

    /// Wakes every `socket.read` waiting on this socket, so that each looks again.
    func wakeReaders() {
        let handler = self.handler
        channel.eventLoop.execute { handler.value.wakeWaiters() }
    }

    /// The socket's allowHalfOpen and idle timeout, read on its loop.
    func handlerSettings() async -> (allowHalfOpen: Bool, idleTimeoutMs: Int?) {
        (try? await onLoop { ($0.allowHalfOpen, $0.idleTimeoutMilliseconds) }) ?? (false, nil)
    }

    /// Sets a socket option on the socket's descriptor, wherever it is: NIO's channel, or the relay's.
    func setSocketOption(level: CInt, name: CInt, value: CInt) async throws(NetdError) {
        if let (link, side) = relayLink.withLock({ $0 }) {
            let failed = Atomic<CInt>(0)
            _ = await link.withDescriptor(side: side) { descriptor in
                var value = value
                if setsockopt(descriptor, level, name, &value, socklen_t(MemoryLayout<CInt>.size)) != 0 { failed.store(errno, ordering: .relaxed) }
            }
            let code = failed.load(ordering: .relaxed)
            if code != 0 {
                let name = errnoName(code)
                throw SocketErrors.response(SocketFailure(code: name, message: "setsockopt \(name)"), id: nil, target: "on socket \(id)")
            }
            return
        }
        try await setOption(ChannelOptions.socket(SocketOptionLevel(level), SocketOptionName(name)), SocketOptionValue(value))
    }

    var isDrainedAndClosed: Bool {
        shared.withLock { ($0.closed || $0.discarded) && $0.unread.count == 0 }
    }

    /// `socket.read`: waits up to `wait` for something to hand out.
    ///
    /// A request that is cancelled (its RPC client went away, or netd is shutting down) takes
    /// nothing: what arrives stays buffered for the next reader.
    ///
    /// - Parameter interrupted: true once the wait must end early (netd is being replaced); the
    ///   read then answers as if its wait had run out.
    func read(
        maxBytes: Int, encoding: DataEncoding, wait: Duration, interrupted: @Sendable () -> Bool = { false }
    ) async throws(NetdError) -> SocketReadMethod.Result {
        let deadline = NIODeadline.now() + .nanoseconds(wait.components.seconds * 1_000_000_000 + wait.components.attoseconds / 1_000_000_000)
        let loop = channel.eventLoop
        let handler = self.handler
        while true {
            if Task.isCancelled { throw NetdError.cancelled }
            let taken = try takeNoting(maxBytes: maxBytes, encoding: encoding)
            if let result = taken.result { return result }
            let seen = taken.changes
            guard NIODeadline.now() < deadline, !interrupted() else {
                return SocketReadMethod.Result(data: "", encoding: encoding, bytes: 0, eof: false)
            }
            await withTaskCancellationHandler {
                // Registered first, then the cancellation checked: a cancellation that came
                // before the registration reached the loop is seen here, one after it wakes the waiter.
                let changed: EventLoopFuture<Void>? =
                    if loop.inEventLoop { handler.value.waitForChange(after: seen, until: deadline, on: loop) }
                    else { try? await loop.submit { handler.value.waitForChange(after: seen, until: deadline, on: loop) }.get() }
                if Task.isCancelled { loop.execute { handler.value.wakeWaiters() } }
                _ = try? await changed?.get()
            } onCancel: {
                loop.execute { handler.value.wakeWaiters() }
            }
        }
    }

    /// `socket.write`: returns once the bytes are with the kernel.
    func write(_ bytes: [UInt8]) async throws(NetdError) -> Int {
        do {
            return try await writeFuture(bytes).get()
        } catch let error as NetdError {
            throw error
        } catch {
            throw SocketErrors.response(SocketErrors.failure(error, syscall: "write"), id: nil, target: "on socket \(id)")
        }
    }

    /// `socket.end`: optional last bytes, then FIN.
    func end(_ bytes: [UInt8]?) async throws(NetdError) {
        let id = self.id
        do {
            try await onLoop { try $0.checkWritable(id) }
        } catch let error as NetdError {
            throw error
        } catch {
            throw SocketErrors.invalidState("ERR_SOCKET_CLOSED", "socket \(id) is closed")
        }
        if let bytes, !bytes.isEmpty { _ = try await write(bytes) }
        let loop = channel.eventLoop
        _ = try? await onLoop { handler -> EventLoopFuture<Void> in
            let promise = loop.makePromise(of: Void.self)
            handler.endOutput(promise: promise)
            return promise.futureResult
        }
    }

    /// `socket.close`: discards unread bytes and closes; `reset` sends RST.
    func close(reset: Bool) async {
        if let (link, side) = relayLink.withLock({ $0 }) {
            await link.close(side: side, reset: reset)
            return
        }
        let loop = channel.eventLoop
        _ = try? await onLoop { handler -> EventLoopFuture<Void> in
            handler.close(reset: reset) ?? loop.makeSucceededVoidFuture()
        }
    }

    /// Closes without the caller waiting, for shutdown.
    func closeNow() {
        channel.close(promise: nil)
    }

    func setIdleTimeout(milliseconds: Int) async throws(NetdError) {
        // Idle timeouts watch the traffic netd reads itself; a relay's traffic is the kernel's.
        if let relay = relayRole { throw relay.refusal(id) }
        _ = try? await onLoop { $0.setIdleTimeout(milliseconds > 0 ? .milliseconds(Int64(milliseconds)) : nil) }
    }

    func setOption<Option: ChannelOption>(_ option: Option, _ value: Option.Value) async throws(NetdError) where Option.Value: Sendable {
        do {
            try await channel.setOption(option, value: value).get()
        } catch {
            throw SocketErrors.response(SocketErrors.failure(error, syscall: "setsockopt"), id: nil, target: "on socket \(id)")
        }
    }
}
