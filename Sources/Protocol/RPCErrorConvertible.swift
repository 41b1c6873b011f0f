/// An error of netd's own domain that knows which JSON-RPC error it is. Code throws these (not
/// ``ResponseError``s); the dispatcher, the one place where errors become answers, turns them
/// into the `error` member with ``ResponseError/init(_:)``.
public protocol RPCErrorConvertible: Error {
    /// The JSON-RPC code: -32001 not found, -32003 invalid state, -32004 refused by the system, ...
    var rpcCode: ErrorCode { get }
    /// What happened, in words a person can act on.
    var rpcMessage: String { get }
    /// The Node.js-style name for `data.code` (`ECONNREFUSED`, `ERR_SOCKET_CLOSED`), if any.
    var rpcSystemCode: String? { get }
    /// Further members of `data`, such as the `id` of a failed connect's record.
    var rpcDetails: [String: JSONValue] { get }
}

extension RPCErrorConvertible {
    public var rpcSystemCode: String? { nil }
    public var rpcDetails: [String: JSONValue] { [:] }
}

extension ResponseError {
    /// The `error` member for a domain error.
    public init(_ error: some RPCErrorConvertible) {
        var data = error.rpcDetails
        if let code = error.rpcSystemCode { data["code"] = .string(code) }
        let prefix: String =
            switch error.rpcCode {
            case .invalidParams: "Invalid params: "
            case .invalidRequest: "Invalid Request: "
            case .internalError: "Internal error: "
            default: ""
            }
        self.init(code: error.rpcCode, message: prefix + error.rpcMessage, data: data.isEmpty ? nil : .object(data))
    }
}
