import Logging
import NIOCore
import NetdProtocol

/// Who sent a request: the kernel's word on the RPC client, plus which connection it came on.
public struct RequestContext: Sendable {
    public var peer: PeerCredentials
    /// Unique per RPC connection for the life of the process.
    public var connectionID: Int
    public var logger: Logger
    /// The event loop of the RPC connection, where its requests run; sockets it opens live there too.
    public var eventLoop: (any EventLoop)?
    /// Writes a notification line to this RPC connection; nil where there is no connection to write to.
    /// It returns once the line is with the kernel, so a subscriber's queue feels a slow reader.
    public var notify: (@Sendable (ByteBuffer) async throws -> Void)?
    /// Writes to sockets on this connection's loop wait for the end of the current read, then leave together.
    var flushes: NIOLoopBound<DeferredFlushes>?
    /// Set for a call that switches its connection to a socket's byte stream (contract section 9):
    /// where the handler leaves the socket for the connection. Nil everywhere else.
    var stream: StreamSlot?
    /// Set for a call whose answer carries a descriptor (contract section 11).
    var descriptorSlot: DescriptorSlot?

    /// A member of an `--admin-group`: an admin as root and netd's own user are.
    public var inAdminGroup = false
    /// The caller's groups (primary and supplementary) as the kernel gave them when it connected
    /// (SO_PEERGROUPS): what netd checks a caller's access to files with.
    public var groups: Set<UInt32> = []

    /// Root, netd's own user and `--admin-group` members see and touch everything (contract section 3).
    public var isAdmin: Bool { inAdminGroup || peer.uid == 0 || peer.uid == getuid() }
}

/// What a handler gives back: its answer now, a future that the event loop completes (a write
/// handed to the kernel, a read that waits for bytes), or work that suspends (a name lookup, a
/// database query), run as a task on the connection's event loop.
public enum Reply: Sendable {
    case now(ResponseMessage.Outcome)
    case future(EventLoopFuture<ResponseMessage.Outcome>)
    case task(@Sendable () async -> ResponseMessage.Outcome)
}

/// How one handler answers one call: its result now, a future that the event loop completes,
/// or work that suspends.
public enum Answer<Result: Sendable>: Sendable {
    case now(Result)
    case future(EventLoopFuture<Result>)
    case task(@Sendable () async throws -> Result)
}

/// The handlers of every method, one per ``MethodRegistry`` entry. A handler answers in one of
/// three ways (``Reply``); which one is chosen by the form of the closure registered.
public struct MethodTable: Sendable {
    typealias Handler = @Sendable (any RPCParams, RequestContext) -> Reply
    fileprivate var handlers: [String: Handler] = [:]

    public init() {}

    /// A handler that answers at once, on the event loop that read the request.
    public mutating func on<M: RPCMethod>(_ method: M.Type, _ handler: @escaping @Sendable (M.Params, RequestContext) throws -> M.Result) {
        let encode = Self.result(of: M.self)
        handlers[M.name] = { params, context in
            do {
                return .now(encode(try handler(try Self.typed(params, for: M.self), context)))
            } catch {
                return .now(Dispatcher.outcome(for: error, method: M.name, context: context))
            }
        }
    }

    /// A method whose answer never changes (`netd.ping`): encoded once, here, by the one encoder,
    /// and written as it is for every call.
    public mutating func on<M: RPCMethod>(_ method: M.Type, always result: M.Result) {
        let outcome: ResponseMessage.Outcome
        do {
            outcome = .result(try JSONCoding.EncodedOnce(result))
        } catch {
            outcome = .error(ResponseError(NetdError.internalFailure("the answer of \(M.name) cannot be encoded: \(error)")))
        }
        handlers[M.name] = { _, _ in .now(outcome) }
    }

    /// A handler that picks how to answer each call (``Answer``): at once when it can, with a
    /// future or a task when it must wait.
    public mutating func on<M: RPCMethod>(
        _ method: M.Type, _ handler: @escaping @Sendable (M.Params, RequestContext) throws -> Answer<M.Result>
    ) {
        let encode = Self.result(of: M.self)
        handlers[M.name] = { params, context in
            let fail: @Sendable (any Error) -> ResponseMessage.Outcome = { Dispatcher.outcome(for: $0, method: M.name, context: context) }
            do {
                switch try handler(try Self.typed(params, for: M.self), context) {
                case .now(let result):
                    return .now(encode(result))
                case .future(let future):
                    // One promise for the answer, whatever the future ends with.
                    let answer = future.eventLoop.makePromise(of: ResponseMessage.Outcome.self)
                    future.whenComplete { result in
                        switch result {
                        case .success(let value): answer.succeed(encode(value))
                        case .failure(let error): answer.succeed(fail(error))
                        }
                    }
                    return .future(answer.futureResult)
                case .task(let work):
                    return .task {
                        do { return encode(try await work()) } catch { return fail(error) }
                    }
                }
            } catch {
                return .now(fail(error))
            }
        }
    }

    /// A handler that suspends (lookups, connects, the database): it runs as a task on the
    /// connection's event loop, and the loop serves other requests meanwhile.
    public mutating func on<M: RPCMethod>(
        _ method: M.Type, _ handler: @escaping @Sendable (M.Params, RequestContext) async throws -> M.Result
    ) {
        let encode = Self.result(of: M.self)
        handlers[M.name] = { params, context in
            .task {
                do {
                    return encode(try await handler(try Self.typed(params, for: M.self), context))
                } catch {
                    return Dispatcher.outcome(for: error, method: M.name, context: context)
                }
            }
        }
    }

    private static func typed<M: RPCMethod>(_ params: any RPCParams, for method: M.Type) throws -> M.Params {
        guard let params = params as? M.Params else {
            throw NetdError.internalFailure("params of \(M.name) arrived as \(type(of: params))")
        }
        return params
    }

    /// A result as an answer; it becomes JSON as the connection writes it (``JSONCoding``).
    private static func result<M: RPCMethod>(of method: M.Type) -> @Sendable (M.Result) -> ResponseMessage.Outcome {
        { result in .result(result) }
    }
}

/// Turns calls into replies. This is the one place where errors become JSON-RPC errors.
public struct Dispatcher: Sendable {
    private let handlers: [String: MethodTable.Handler]
    /// Every answer counted, by method and outcome.
    let metrics: NetdMetrics

    /// - Precondition: `table` has a handler for every method in ``MethodRegistry``, and no other.
    public init(_ table: MethodTable, metrics: NetdMetrics = NetdMetrics()) {
        self.metrics = metrics
        let registered = Set(MethodRegistry.names)
        let handled = Set(table.handlers.keys)
        precondition(registered == handled, """
            dispatcher and registry disagree: no handler for \(registered.subtracting(handled).sorted()), \
            no registry entry for \(handled.subtracting(registered).sorted())
            """)
        handlers = table.handlers
    }

    /// Starts serving one call: a call that was invalid from the start is answered at once.
    ///
    /// - Important: Call it on the event loop of the RPC connection the call came on.
    public func dispatch(_ call: IncomingCall, context: RequestContext) -> Reply {
        switch call.content {
        case .failure(let error):
            return .now(.error(error))
        case .success(let valid):
            guard let handler = handlers[valid.name] else { return .now(.error(.methodNotFound(valid.name))) }
            return handler(valid.params, context)
        }
    }

    /// The JSON-RPC error for one of netd's own errors, for answers made outside a handler.
    static func responseError(_ error: NetdError) -> ResponseError {
        ResponseError(error)
    }

    /// The answer for whatever a handler threw: the one place where errors become JSON-RPC errors.
    static func outcome(for error: any Error, method: String, context: RequestContext) -> ResponseMessage.Outcome {
        switch error {
        case let error as any RPCErrorConvertible:
            return .error(ResponseError(error))
        case let error as ResponseError:
            // What the protocol layer itself refuses (params that fail their checks).
            return .error(error)
        case is CancellationError:
            return .error(ResponseError(NetdError.cancelled))
        default:
            context.logger.error("method failed", metadata: ["rpc.method": "\(method)", "error": "\(error)"])
            return .error(.internalError(String(describing: error)))
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
