import Foundation
import NIOCore
import NIOPosix
import NetdFraming
import NetdProtocol
import Synchronization
import NetdLocks

/// An async client for netd over its Unix socket, for netctl, tests and any Swift program.
///
/// ```swift
/// let client = try await NetdClient.connect(socketPath: path)
/// defer { Task { await client.close() } }
/// let pong = try await client.call(PingMethod.self)
/// ```
///
/// - Important: Calls may be made from many tasks at once; responses are matched by id.
public final class NetdClient: Sendable {
    private let channel: any Channel
    private let router: ResponseRouter
    private let nextID = Atomic<Int64>(1)

    /// Notifications netd sends on this connection (events), each as the raw JSON line.
    public let notifications: AsyncStream<Data>

    /// Connects to netd's socket.
    ///
    /// - Throws: ``NetdClientError/unreachable(path:reason:)`` when nothing answers there.
    public static func connect(
        socketPath: String,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> NetdClient {
        let (notifications, continuation) = AsyncStream.makeStream(of: Data.self, bufferingPolicy: .bufferingNewest(4096))
        let router = ResponseRouter(notifications: continuation)
        do {
            let channel = try await ClientBootstrap(group: eventLoopGroup)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(LineFrameDecoder(maximumLineBytes: Int(Int32.max))))
                        try channel.pipeline.syncOperations.addHandler(router)
                    }
                }
                .connect(unixDomainSocketPath: socketPath)
                .get()
            return NetdClient(channel: channel, router: router, notifications: notifications)
        } catch {
            throw NetdClientError.unreachable(path: socketPath, reason: Self.reason(error))
        }
    }

    private init(channel: any Channel, router: ResponseRouter, notifications: AsyncStream<Data>) {
        self.channel = channel
        self.router = router
        self.notifications = notifications
    }

    /// Calls `method` and returns its typed result.
    ///
    /// - Throws: ``ResponseError`` when netd answers with an error; ``NetdClientError`` when the
    ///   connection fails or the answer cannot be read.
    public func call<M: RPCMethod>(_ method: M.Type, _ params: M.Params) async throws -> M.Result {
        let data = try await exchange(method: M.name, params: params)
        return try NetdClientError.decodeResult(M.Result.self, from: data)
    }

    /// Calls a method that takes no params.
    public func call<M: RPCMethod>(_ method: M.Type) async throws -> M.Result where M.Params == NoParams {
        let data = try await exchange(method: M.name, params: Optional<NoParams>.none)
        return try NetdClientError.decodeResult(M.Result.self, from: data)
    }

    /// Calls any method by name with any params, as `netctl call` does.
    public func call(method: String, params: JSONValue?) async throws -> JSONValue {
        let data = try await exchange(method: method, params: params)
        return try NetdClientError.decodeResult(JSONValue.self, from: data)
    }

    /// Sends a notification: netd runs it and never answers.
    public func notify(method: String, params: JSONValue?) async throws {
        let message = RequestMessage(id: nil, method: method, params: params)
        try await write(Data(try JSONCoding.encode(message)))
    }

    /// Closes the connection; calls still waiting fail with ``NetdClientError/connectionClosed``.
    public func close() async {
        try? await channel.close()
    }

    private func exchange<P: Encodable & Sendable>(method: String, params: P?) async throws -> Data {
        let id = RequestID.number(nextID.wrappingAdd(1, ordering: .relaxed).oldValue)
        let line = try JSONCoding.encode(RequestMessage(id: id, method: method, params: params))
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                guard router.expect(id, continuation) else { return }
                var buffer = channel.allocator.buffer(capacity: line.count + 1)
                buffer.writeBytes(line)
                buffer.writeInteger(UInt8(ascii: "\n"))
                channel.writeAndFlush(buffer).whenFailure { error in
                    self.router.fail(id, NetdClientError.connectionClosed(reason: Self.reason(error)))
                }
            }
        } onCancel: {
            router.fail(id, CancellationError())
        }
    }

    private func write(_ line: Data) async throws {
        var buffer = channel.allocator.buffer(capacity: line.count + 1)
        buffer.writeBytes(line)
        buffer.writeInteger(UInt8(ascii: "\n"))
        do {
            try await channel.writeAndFlush(buffer)
        } catch {
            throw NetdClientError.connectionClosed(reason: Self.reason(error))
        }
    }

    static func reason(_ error: any Error) -> String {
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)) }
        if let error = error as? NIOConnectionError, let first = error.connectionErrors.first {
            return reason(first.error)
        }
        return String(describing: error)
    }
}

/// Hands each response line to the call waiting for its id, and notifications to the stream.
final class ResponseRouter: ChannelInboundHandler, Sendable {
    typealias InboundIn = LineFrame

    private struct State {
        var waiting: [RequestID: CheckedContinuation<Data, any Error>] = [:]
        var closed: NetdClientError?
    }

    private let state = Locked(State())
    private let notifications: AsyncStream<Data>.Continuation

    init(notifications: AsyncStream<Data>.Continuation) {
        self.notifications = notifications
    }

    /// Registers a call; returns false (and fails it) when the connection is already closed.
    func expect(_ id: RequestID, _ continuation: CheckedContinuation<Data, any Error>) -> Bool {
        let closed: NetdClientError? = state.withLock { state in
            if let closed = state.closed { return closed }
            state.waiting[id] = continuation
            return nil
        }
        if let closed {
            continuation.resume(throwing: closed)
            return false
        }
        return true
    }

    func fail(_ id: RequestID, _ error: any Error) {
        state.withLock { $0.waiting.removeValue(forKey: id) }?.resume(throwing: error)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .line(let line) = unwrapInboundIn(data) else { return }
        let bytes = Data(line.readableBytesView)
        guard let header = try? JSONDecoder().decode(ServerMessageHeader.self, from: bytes) else { return }
        if header.method != nil {
            notifications.yield(bytes)
        } else if let id = header.id {
            state.withLock { $0.waiting.removeValue(forKey: id) }?.resume(returning: bytes)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closeAll(NetdClientError.connectionClosed(reason: "netd closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closeAll(NetdClientError.connectionClosed(reason: NetdClient.reason(error)))
        context.close(promise: nil)
    }

    private func closeAll(_ error: NetdClientError) {
        let waiting = state.withLock { state in
            state.closed = error
            defer { state.waiting.removeAll() }
            return Array(state.waiting.values)
        }
        for continuation in waiting { continuation.resume(throwing: error) }
        notifications.finish()
    }
}
