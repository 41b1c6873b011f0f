/// One netd method: its name, a one-line summary, and the types of its params and result.
///
/// Every method is listed in ``MethodRegistry``, which both the dispatcher and `netd.methods` read.
public protocol RPCMethod: Sendable {
    associatedtype Params: RPCParams
    associatedtype Result: Codable, Sendable

    /// The JSON-RPC method string, e.g. `netd.ping`.
    static var name: String { get }
    /// One line for `netd.methods` and `netctl`'s help.
    static var summary: String { get }
}

/// The params of one method, decoded by name from the request's `params` object.
public protocol RPCParams: Codable, Sendable {
    /// Every param this method takes, in order. Names not listed here are refused with -32602.
    static var fields: [ParamField] { get }

    /// Checks what the types alone cannot say (ranges, combinations); throws -32602 errors.
    func validate() throws(ResponseError)
}

extension RPCParams {
    public func validate() throws(ResponseError) {}
}

/// A param as `netd.methods` describes it.
public struct ParamField: Codable, Hashable, Sendable {
    public var name: String
    /// `string`, `integer`, `boolean`, `number`, `object` or `array`, with the allowed values where it helps.
    public var type: String
    public var required: Bool
    public var summary: String

    public init(_ name: String, _ type: String, required: Bool = false, _ summary: String) {
        self.name = name
        self.type = type
        self.required = required
        self.summary = summary
    }
}

/// The params of a method that takes none.
public struct NoParams: RPCParams, Hashable {
    public static let fields: [ParamField] = []
    public init() {}
}

extension RPCMethod {
    /// Decodes this method's params from the request's `params` object, refusing unknown and
    /// repeated names (anywhere inside it) before anything is decoded.
    static func decodeParams(_ json: ParsedJSON) throws(ResponseError) -> Params {
        guard case .object(let members) = json else { throw .invalidParams("params must be an object") }
        let known = Params.fields
        if let unknown = members.map(\.name).sorted().first(where: { name in !known.contains { $0.name == name } }) {
            let names = known.map(\.name)
            let takes = names.isEmpty ? "it takes none" : "it takes \(names.joined(separator: ", "))"
            throw .invalidParams("unknown param `\(ResponseError.quoting(unknown))` for \(name); \(takes)")
        }
        if let repeated = Self.repeatedName(in: json) {
            throw .invalidParams("`\(ResponseError.quoting(repeated))` is given more than once in params")
        }
        let params: Params
        do {
            params = try ParsedJSONDecoder.decode(Params.self, from: json, codingPath: [AnyCodingKey("params")])
        } catch let error as DecodingError {
            throw .invalidParams(describe(error, method: name))
        } catch {
            throw .invalidParams(String(describing: error))
        }
        try params.validate()
        return params
    }

    /// A member name repeated in `json` or in any object inside it.
    private static func repeatedName(in json: ParsedJSON) -> String? {
        switch json {
        case .object(let members): json.repeatedName ?? members.lazy.compactMap { repeatedName(in: $0.value) }.first
        case .array(let values): values.lazy.compactMap { repeatedName(in: $0) }.first
        default: nil
        }
    }

    /// The params of a request that sent none: fine for methods whose params are all optional.
    static func absentParams() throws(ResponseError) -> Params {
        // The same type, compared as types: no dynamic cast on the path of every `netd.ping`.
        if Params.self == NoParams.self { return unsafeBitCast(NoParams(), to: Params.self) }
        if let required = Params.fields.first(where: \.required) {
            throw .invalidParams("missing required param `\(required.name)` for \(name)")
        }
        return try decodeParams(.object([]))
    }
}

/// Says what was wrong with a param in words a person sending JSON by hand can act on.
func describe(_ error: DecodingError, method: String) -> String {
    func path(_ context: DecodingError.Context) -> String {
        // The first key is `params` itself; array positions read `types[1]`.
        let keys = context.codingPath.dropFirst()
        guard !keys.isEmpty else { return "params" }
        let text = keys.enumerated().map { index, key in
            key.intValue.map { "[\($0)]" } ?? (index == 0 ? key.stringValue : "." + key.stringValue)
        }.joined()
        return "`" + text + "`"
    }
    switch error {
    case .keyNotFound(let key, _):
        return "missing required param `\(key.stringValue)` for \(method)"
    case .valueNotFound(_, let context):
        return "\(path(context)) must not be null"
    case .typeMismatch(let type, let context):
        return "\(path(context)) must be \(jsonTypeName(type))"
    case .dataCorrupted(let context):
        return "\(path(context)): \(context.debugDescription)"
    @unknown default:
        return String(describing: error)
    }
}

private func jsonTypeName(_ type: Any.Type) -> String {
    switch type {
    case is String.Type: "a string"
    case is Bool.Type: "a boolean"
    case is Int.Type, is Int64.Type, is Int32.Type, is UInt16.Type, is UInt32.Type, is UInt64.Type, is UInt.Type:
        "an integer"
    case is Double.Type, is Float.Type: "a number"
    default:
        // Dictionaries and structs arrive as objects, arrays as arrays.
        String(describing: type).hasPrefix("Array") ? "an array" : "an object"
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
