import NetdProtocol

/// What goes wrong in netd's own domain, thrown by the registry, the sockets, the operations and
/// the methods; the dispatcher turns each into its JSON-RPC error (``RPCErrorConvertible``).
enum NetdError: RPCErrorConvertible, Sendable {
    /// No socket, server, record or subscription with that id that the caller may see (-32001).
    case notFound(String)
    /// The object cannot do that now (-32003): closed, ended, not valid in that encoding.
    case invalidState(code: String, String)
    /// A param is wrong in a way its type cannot say (-32602).
    case invalidParams(String)
    /// The operating system refused a connect, listen, write or option on `target` (-32004, or
    /// -32005 / -32006 / -32007 for lookup failures, time-outs and exhausted descriptors);
    /// `record` is the history record it left.
    case system(SocketFailure, record: Int64?, target: String?)
    /// Refused before asking the system, as the system would have refused the caller (-32004).
    case refused(code: String, String)
    /// The caller may not do this at all (-32002): an admin's method asked by another user.
    case permissionDenied(String)
    /// A limit of netd's was reached (-32007): `data.limit` names it, `data.max` is its value.
    case limit(code: String, String, limit: NetdLimit, max: Int)
    /// The history database could not be read (-32603).
    case historyUnavailable(String)
    /// The request's client went away, or netd is shutting down (-32603).
    case cancelled
    /// netd itself failed (-32603).
    case internalFailure(String)

    var rpcCode: ErrorCode {
        switch self {
        case .notFound: .notFound
        case .permissionDenied: .permissionDenied
        case .invalidState: .invalidState
        case .invalidParams: .invalidParams
        case .system(let failure, _, _):
            switch failure.code {
            case "ETIMEDOUT": .timedOut
            case "ENOTFOUND", "EAI_AGAIN": .lookupFailed
            case "EMFILE", "ENFILE": .limitReached
            default: .systemError
            }
        case .refused: .systemError
        case .limit: .limitReached
        case .historyUnavailable, .cancelled, .internalFailure: .internalError
        }
    }

    var rpcMessage: String {
        switch self {
        case .notFound(let message), .permissionDenied(let message), .invalidState(_, let message), .invalidParams(let message), .refused(_, let message),
            .limit(_, let message, _, _), .internalFailure(let message):
            message
        case .system(let failure, _, let target):
            // A lookup failure's message names the host already.
            if let target, rpcCode != .lookupFailed { "\(failure.message) \(target)" } else { failure.message }
        case .historyUnavailable(let reason): "cannot read history: \(reason)"
        case .cancelled: "the request was cancelled: its RPC client went away, or netd is shutting down"
        }
    }

    var rpcSystemCode: String? {
        switch self {
        case .invalidState(let code, _), .refused(let code, _), .limit(let code, _, _, _): code
        case .system(let failure, _, _): failure.code
        case .notFound, .permissionDenied, .invalidParams, .historyUnavailable, .cancelled, .internalFailure: nil
        }
    }

    var rpcDetails: [String: JSONValue] {
        switch self {
        case .system(_, let record?, _): ["id": .integer(record)]
        case .limit(_, _, let limit, let max): ["limit": .string(limit.rawValue), "max": .integer(Int64(max))]
        default: [:]
        }
    }
}
