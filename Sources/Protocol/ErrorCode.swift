/// A JSON-RPC error code: the five of the specification and netd's own (contract section 2).
public struct ErrorCode: RawRepresentable, Codable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int

    public init(rawValue: Int) { self.rawValue = rawValue }

    public init(from decoder: any Decoder) throws {
        self.rawValue = try decoder.singleValueContainer().decode(Int.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { String(rawValue) }

    // JSON-RPC 2.0.
    public static let parseError = ErrorCode(rawValue: -32700)
    public static let invalidRequest = ErrorCode(rawValue: -32600)
    public static let methodNotFound = ErrorCode(rawValue: -32601)
    public static let invalidParams = ErrorCode(rawValue: -32602)
    public static let internalError = ErrorCode(rawValue: -32603)

    // netd.
    /// No socket or server with that id that the caller may see.
    public static let notFound = ErrorCode(rawValue: -32001)
    public static let permissionDenied = ErrorCode(rawValue: -32002)
    /// Write after end, read from a closed socket, bytes not valid in the requested encoding.
    public static let invalidState = ErrorCode(rawValue: -32003)
    /// The operating system refused; `data.code` says why.
    public static let systemError = ErrorCode(rawValue: -32004)
    public static let lookupFailed = ErrorCode(rawValue: -32005)
    public static let timedOut = ErrorCode(rawValue: -32006)
    public static let limitReached = ErrorCode(rawValue: -32007)
}

/// The `error` member of a JSON-RPC response, and the error netd's code throws to produce one.
public struct ResponseError: Error, Codable, Hashable, Sendable {
    public var code: ErrorCode
    /// For netd's own errors, an object whose `code` is the POSIX-style name Node.js would give.
    public var data: JSONValue?
    public var message: String

    public init(code: ErrorCode, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    /// The POSIX-style name in `data.code`, if any (`ECONNREFUSED`, `ENOENT`, ...).
    public var systemCode: String? { data?["code"]?.stringValue }

    public static func parseError(_ message: String) -> ResponseError {
        ResponseError(code: .parseError, message: "Parse error: \(message)")
    }

    public static func invalidRequest(_ message: String, data: JSONValue? = nil) -> ResponseError {
        ResponseError(code: .invalidRequest, message: "Invalid Request: \(message)", data: data)
    }

    public static func methodNotFound(_ method: String) -> ResponseError {
        ResponseError(code: .methodNotFound, message: "Method not found: \(quoting(method)) (netd.methods lists them)")
    }

    /// Text from a request as an error message shows it: whole up to 100 bytes, cut short beyond
    /// (a name of a megabyte is not sent back whole).
    public static func quoting(_ text: String) -> String {
        text.utf8.count <= 100 ? text : "\(text.prefix(64))... (\(text.utf8.count) bytes)"
    }

    public static func invalidParams(_ message: String) -> ResponseError {
        ResponseError(code: .invalidParams, message: "Invalid params: \(message)")
    }

    public static func internalError(_ message: String) -> ResponseError {
        ResponseError(code: .internalError, message: "Internal error: \(message)")
    }

    /// A request line over `--max-message-bytes` (contract section 1): skipped, answered with id null.
    public static func oversized(bytes: Int, limit: Int) -> ResponseError {
        invalidRequest(
            "message of \(bytes) bytes is over the \(limit)-byte limit (--max-message-bytes); it was skipped",
            data: NetdLimit.maxMessageBytes.errorData(code: "EMSGSIZE", max: limit))
    }

    /// One of netd's own errors, with the Node.js-style name in `data.code`.
    public static func netd(_ code: ErrorCode, _ systemCode: String?, _ message: String) -> ResponseError {
        ResponseError(code: code, message: message, data: systemCode.map { .object(["code": .string($0)]) })
    }
}
