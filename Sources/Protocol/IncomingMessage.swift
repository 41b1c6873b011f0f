import Foundation

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
}

/// One line as netd received it: a single request, a batch, or JSON that could not be parsed.
public enum IncomingFrame: Sendable {
    case single(IncomingCall)
    case batch([IncomingCall])

    /// Decodes one line. Never throws: what is wrong becomes the error to answer with.
    public static func decode<Bytes: DataProtocol>(_ line: Bytes, decoder: JSONDecoder = JSONDecoder()) -> IncomingFrame {
        let data = line as? Data ?? Data(line)
        // JSON text is UTF-8; JSONDecoder would only notice bad bytes inside a string, and late.
        guard String(validating: data, as: UTF8.self) != nil else {
            return .single(IncomingCall(reply: .respond(.null), methodName: nil, content: .failure(.parseError("the message is not valid UTF-8"))))
        }
        do {
            // Look at the first byte rather than let the decoder fail its way to the right shape.
            let first = data.first { !(" \t\r\n".utf8.contains($0)) }
            if first == UInt8(ascii: "{") {
                return .single(try decoder.decode(CallDecoding.self, from: data).call)
            }
            return try decoder.decode(FrameDecoding.self, from: data).frame
        } catch {
            // FrameDecoding itself never throws, so anything thrown is the JSON text itself.
            return .single(IncomingCall(reply: .respond(.null), methodName: nil, content: .failure(.parseError(parseErrorReason(error)))))
        }
    }
}

private func parseErrorReason(_ error: any Error) -> String {
    if case DecodingError.dataCorrupted(let context) = error {
        var reason = context.debugDescription
        if let underlying = context.underlyingError {
            reason += " (\(String(describing: underlying)))"
        }
        return reason
    }
    return String(describing: error)
}

/// Reads the top level of a line: an array is a batch, anything else one message.
private struct FrameDecoding: Decodable {
    var frame: IncomingFrame

    init(from decoder: any Decoder) throws {
        if var array = try? decoder.unkeyedContainer() {
            if array.count == 0 {
                frame = .single(.invalid(.null, "an empty batch"))
                return
            }
            var calls: [IncomingCall] = []
            while !array.isAtEnd {
                guard let element = try? array.decode(CallDecoding.self) else { break }
                calls.append(element.call)
            }
            frame = .batch(calls)
        } else {
            frame = .single(CallDecoding(decoder).call)
        }
    }
}

/// Checks one request object. Its initialiser never throws, so a bad element never spoils a batch.
private struct CallDecoding: Decodable {
    var call: IncomingCall

    enum Key: String, CodingKey {
        case jsonrpc, id, method, params
    }

    init(from decoder: any Decoder) throws {
        self.init(decoder)
    }

    init(_ decoder: any Decoder) {
        guard let container = try? decoder.container(keyedBy: Key.self) else {
            call = .invalid(.null, "a request must be a JSON object")
            return
        }
        // The id comes first so that every later error can carry it.
        var reply = IncomingCall.Reply.none
        if container.contains(.id) {
            guard let id = try? container.decode(RequestID.self, forKey: .id) else {
                call = .invalid(.null, "id must be a string, a number or null")
                return
            }
            reply = .respond(id)
        }
        let echo: RequestID = if case .respond(let id) = reply { id } else { .null }
        guard (try? container.decode(String.self, forKey: .jsonrpc)) == "2.0" else {
            call = .invalid(echo, "jsonrpc must be \"2.0\"")
            return
        }
        guard let method = try? container.decode(String.self, forKey: .method) else {
            call = .invalid(echo, "method must be a string")
            return
        }
        let shape = Self.paramsShape(container)
        if shape == .invalid {
            call = .invalid(echo, "params must be an object or an array when present")
            return
        }
        guard !method.hasPrefix("rpc."), let type = MethodRegistry.method(named: method) else {
            call = IncomingCall(reply: reply, methodName: method, content: .failure(.methodNotFound(method)))
            return
        }
        call = IncomingCall(reply: reply, methodName: method, content: Self.params(of: type, shape, container))
    }

    private enum ParamsShape { case absent, object, emptyArray, array, invalid }

    private static func paramsShape(_ container: KeyedDecodingContainer<Key>) -> ParamsShape {
        guard container.contains(.params) else { return .absent }
        if (try? container.nestedContainer(keyedBy: AnyCodingKey.self, forKey: .params)) != nil { return .object }
        if let array = try? container.nestedUnkeyedContainer(forKey: .params) {
            return array.count == 0 ? .emptyArray : .array
        }
        return .invalid
    }

    private static func params<M: RPCMethod>(
        of method: M.Type,
        _ shape: ParamsShape,
        _ container: KeyedDecodingContainer<Key>
    ) -> Result<IncomingCall.Valid, ResponseError> {
        do throws(ResponseError) {
            let params: M.Params
            switch shape {
            case .absent, .emptyArray:
                params = try M.absentParams()
            case .object:
                params = try M.decodeParams(from: container, forKey: .params)
            case .array, .invalid:
                let names = M.Params.fields.map(\.name).joined(separator: ", ")
                throw .invalidParams("netd takes params by name: send an object with \(names.isEmpty ? "no members" : names)")
            }
            return .success(IncomingCall.Valid(name: M.name, method: method, params: params))
        } catch {
            return .failure(error)
        }
    }
}

extension IncomingCall {
    static func invalid(_ id: RequestID, _ reason: String) -> IncomingCall {
        IncomingCall(reply: .respond(id), methodName: nil, content: .failure(.invalidRequest(reason)))
    }
}
