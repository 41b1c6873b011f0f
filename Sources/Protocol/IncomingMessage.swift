#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// One request object as netd received it, already checked against JSON-RPC 2.0 and the method registry.
public struct IncomingCall: Sendable {
    /// Whether a response is owed, and with which id.
    public enum Reply: Sendable, Hashable {
        /// A request: answer with this id.
        case respond(RequestID)
        /// A notification: never answered, even when it fails.
        case none
    }

    /// A request that names a known method with valid params.
    public struct Valid: Sendable {
        public var name: String
        public var method: any RPCMethod.Type
        public var params: any RPCParams
    }

    public var reply: Reply
    /// The method string as sent, or nil when there was none.
    public var methodName: String?
    public var content: Result<Valid, ResponseError>

    /// A request (with an id) after whose answer the connection carries a socket's bytes
    /// (contract section 9); its connection reads nothing more until it is answered.
    public var switchesToStream: Bool {
        guard case .respond = reply, case .success(let valid) = content else { return false }
        return (valid.params as? any StreamSwitchingParams)?.switchesToStream == true
    }

    /// A request (with an id) whose answer line carries a descriptor (contract section 11).
    public var passesDescriptor: Bool {
        guard case .respond = reply, case .success(let valid) = content else { return false }
        return (valid.params as? any DescriptorPassingParams)?.passesDescriptor == true
    }
}

/// One line as netd received it: a single request, a batch, or JSON that could not be parsed.
public enum IncomingFrame: Sendable {
    case single(IncomingCall)
    case batch([IncomingCall])

    /// Reads one line: parsed once (``JSONParser``), each request checked against JSON-RPC 2.0
    /// and the method registry, params decoded by the one decoder that also explains what is
    /// wrong. Never throws: what is wrong becomes the error to answer with.
    public static func decode(_ line: UnsafeRawBufferPointer) -> IncomingFrame {
        let json: ParsedJSON
        do {
            json = try JSONParser.parse(line)
        } catch {
            return .single(IncomingCall(reply: .respond(.null), methodName: nil, content: .failure(.parseError(error.description))))
        }
        guard case .array(let elements) = json else { return .single(IncomingCall(json)) }
        guard !elements.isEmpty else { return .single(.invalid(.null, "an empty batch")) }
        return .batch(elements.map(IncomingCall.init))
    }

    public static func decode(_ line: some Collection<UInt8>) -> IncomingFrame {
        Array(line).withUnsafeBytes { decode($0) }
    }
}

extension IncomingCall {
    static func invalid(_ id: RequestID, _ reason: String) -> IncomingCall {
        IncomingCall(reply: .respond(id), methodName: nil, content: .failure(.invalidRequest(reason)))
    }

    /// Checks one request object. Never throws, so a bad element never spoils a batch.
    init(_ json: ParsedJSON) {
        guard case .object = json else {
            self = .invalid(.null, "a request must be a JSON object")
            return
        }
        // The id comes first so that every later error can carry it.
        var reply = Reply.none
        if let id = json["id"] {
            guard let requestID = RequestID(id) else {
                self = .invalid(.null, "id must be a string, a number or null")
                return
            }
            reply = .respond(requestID)
        }
        let echo: RequestID = if case .respond(let id) = reply { id } else { .null }
        if let repeated = json.repeatedName {
            self = .invalid(repeated == "id" ? .null : echo, "member `\(ResponseError.quoting(repeated))` appears more than once in the request")
            return
        }
        guard json["jsonrpc"] == .string("2.0") else {
            self = .invalid(echo, "jsonrpc must be \"2.0\"")
            return
        }
        guard case .string(let method) = json["method"] else {
            self = .invalid(echo, "method must be a string")
            return
        }
        let params = json["params"]
        switch params {
        case nil, .object?, .array?: break
        default:
            self = .invalid(echo, "params must be an object or an array when present")
            return
        }
        guard !method.hasPrefix("rpc."), let type = MethodRegistry.method(named: method) else {
            self = IncomingCall(reply: reply, methodName: method, content: .failure(.methodNotFound(method)))
            return
        }
        self = IncomingCall(reply: reply, methodName: method, content: Self.params(of: type, params))
    }

    private static func params<M: RPCMethod>(of method: M.Type, _ json: ParsedJSON?) -> Result<IncomingCall.Valid, ResponseError> {
        do throws(ResponseError) {
            let params: M.Params
            switch json {
            case nil, .array([])?:
                params = try M.absentParams()
            case .object?:
                params = try M.decodeParams(json!)
            default:
                let names = M.Params.fields.map(\.name).joined(separator: ", ")
                throw .invalidParams("netd takes params by name: send an object with \(names.isEmpty ? "no members" : names)")
            }
            return .success(IncomingCall.Valid(name: M.name, method: method, params: params))
        } catch {
            return .failure(error)
        }
    }
}

extension RequestID {
    /// An id as JSON-RPC allows it: a string, a number or null.
    init?(_ json: ParsedJSON) {
        switch json {
        case .string(let value): self = .string(value)
        case .integer(let value): self = .number(value)
        case .double(let value): self = .fractional(value)
        case .null: self = .null
        default: return nil
        }
    }
}
