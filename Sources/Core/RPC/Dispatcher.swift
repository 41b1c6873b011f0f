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
    public var notify: (@Sendable (ByteBuffer) async throws -> Void)?

    /// Root and netd's own user see and touch everything (contract section 3).
    public var isAdmin: Bool { peer.uid == 0 || peer.uid == getuid() }
}

/// The handlers of every method, one per ``MethodRegistry`` entry.
public struct MethodTable: Sendable {
    typealias Handler = @Sendable (any RPCParams, RequestContext) async throws -> ResponseMessage.Outcome
    typealias ImmediateHandler = @Sendable (any RPCParams, RequestContext) throws -> ResponseMessage.Outcome
    fileprivate var handlers: [String: Handler] = [:]
    fileprivate var immediate: [String: ImmediateHandler] = [:]

    public init() {}

    private static func typed<M: RPCMethod>(_ params: any RPCParams, for method: M.Type) throws -> M.Params {
        guard let params = params as? M.Params else {
            throw ResponseError.internalError("params of \(M.name) arrived as \(type(of: params))")
        }
        return params
    }

    /// Registers the handler for `method`; its params arrive typed.
    public mutating func on<M: RPCMethod>(
        _ method: M.Type,
        _ handler: @escaping @Sendable (M.Params, RequestContext) async throws -> M.Result
    ) {
        handlers[M.name] = { params, context in
            .result(try await handler(try Self.typed(params, for: M.self), context))
        }
    }

    /// As ``on(_:_:)``, for a result that writes its own JSON (no encoder involved).
    public mutating func on<M: RPCMethod>(
        _ method: M.Type,
        _ handler: @escaping @Sendable (M.Params, RequestContext) async throws -> M.Result
    ) where M.Result: JSONWritable {
        handlers[M.name] = { params, context in
            .json(try await handler(try Self.typed(params, for: M.self), context).jsonBytes)
        }
    }

    /// Registers a handler that answers at once, never waiting: netd may run it on the event loop
    /// that read the request, without a task or a thread hop (``Dispatcher/respondImmediately``).
    public mutating func onImmediate<M: RPCMethod>(
        _ method: M.Type,
        _ handler: @escaping @Sendable (M.Params, RequestContext) throws -> M.Result
    ) {
        register(immediate: M.self) { params, context in .result(try handler(try Self.typed(params, for: M.self), context)) }
    }

    /// As ``onImmediate(_:_:)``, for a result that is the same JSON every time: written once.
    public mutating func onImmediate<M: RPCMethod>(
        _ method: M.Type,
        _ handler: @escaping @Sendable (M.Params, RequestContext) throws -> M.Result
    ) where M.Result: EncodedOnce {
        register(immediate: M.self) { params, context in
            let result = try handler(try Self.typed(params, for: M.self), context)
            return .json(result.preencoded ?? result.jsonBytes)
        }
    }

    private mutating func register<M: RPCMethod>(immediate method: M.Type, _ handler: @escaping ImmediateHandler) {
        immediate[M.name] = handler
        handlers[M.name] = { params, context in try handler(params, context) }
    }
}

/// Turns decoded calls into responses. This is the one place where errors become JSON-RPC errors.
public struct Dispatcher: Sendable {
    private let handlers: [String: MethodTable.Handler]
    private let immediate: [String: MethodTable.ImmediateHandler]

    /// - Precondition: `table` has a handler for every method in ``MethodRegistry``, and no other.
    public init(_ table: MethodTable) {
        let registered = Set(MethodRegistry.names)
        let handled = Set(table.handlers.keys)
        precondition(registered == handled, """
            dispatcher and registry disagree: no handler for \(registered.subtracting(handled).sorted()), \
            no registry entry for \(handled.subtracting(registered).sorted())
            """)
        handlers = table.handlers
        immediate = table.immediate
    }

    /// A call that can be answered at once: its immediate handler, or nil when it is invalid.
    public struct ImmediateCall {
        fileprivate let call: IncomingCall
        fileprivate let handler: MethodTable.ImmediateHandler?
    }

    /// The calls of `frame` ready to be answered at once (each by an immediate handler, or because
    /// it is invalid), or nil when any of them must wait: then the whole frame goes to a task.
    public func immediateCalls(_ frame: IncomingFrame) -> [ImmediateCall]? {
        switch frame {
        case .single(let call): immediateCall(call).map { [$0] }
        case .batch(let calls):
            calls.reduce(into: [ImmediateCall]?([])) { ready, call in
                guard ready != nil, let one = immediateCall(call) else { return ready = nil }
                ready?.append(one)
            }
        }
    }

    private func immediateCall(_ call: IncomingCall) -> ImmediateCall? {
        switch call.content {
        case .failure: return ImmediateCall(call: call, handler: nil)
        case .success(let valid):
            if let handler = immediate[valid.name] { return ImmediateCall(call: call, handler: handler) }
            // A name with no handler at all is answered with its error at once, too.
            return handlers[valid.name] == nil ? ImmediateCall(call: call, handler: nil) : nil
        }
    }

    /// Serves a call from ``immediateCalls(_:)``; nil for a notification.
    public func respond(to ready: ImmediateCall, context: RequestContext) -> ResponseMessage? {
        let outcome: ResponseMessage.Outcome
        switch ready.call.content {
        case .failure(let error):
            outcome = .error(error)
        case .success(let valid):
            if let handler = ready.handler {
                do {
                    outcome = try handler(valid.params, context)
                } catch let error as ResponseError {
                    outcome = .error(error)
                } catch {
                    outcome = .error(.internalError(String(describing: error)))
                }
            } else {
                outcome = .error(.methodNotFound(valid.name))
            }
        }
        guard case .respond(let id) = ready.call.reply else { return nil }
        return ResponseMessage(id: id, outcome: outcome)
    }

    /// Serves one call. Returns nil for notifications, which are never answered.
    public func respond(to call: IncomingCall, context: RequestContext) async -> ResponseMessage? {
        let outcome: ResponseMessage.Outcome
        switch call.content {
        case .failure(let error):
            outcome = .error(error)
        case .success(let valid):
            outcome = await run(valid, context: context)
        }
        guard case .respond(let id) = call.reply else { return nil }
        return ResponseMessage(id: id, outcome: outcome)
    }

    private func run(_ call: IncomingCall.Valid, context: RequestContext) async -> ResponseMessage.Outcome {
        guard let handler = handlers[call.name] else {
            return .error(.methodNotFound(call.name))
        }
        do {
            return try await handler(call.params, context)
        } catch let error as ResponseError {
            return .error(error)
        } catch is CancellationError {
            return .error(.internalError("netd is shutting down"))
        } catch {
            context.logger.error("method failed", metadata: ["rpc.method": "\(call.name)", "error": "\(error)"])
            return .error(.internalError(String(describing: error)))
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
