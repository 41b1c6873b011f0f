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
}

/// One line as netd received it: a single request, a batch, or JSON that could not be parsed.
public enum IncomingFrame: Sendable {
    case single(IncomingCall)
    case batch([IncomingCall])

    /// The commonest requests (no params, nothing escaped), read straight from the line's bytes
    /// with no copy; nil for everything else, which ``decode(_:decoder:)`` reads.
    public static func decodeSimple(_ bytes: UnsafeRawBufferPointer) -> IncomingFrame? {
        var reader = SimpleRequest.Reader(bytes: bytes)
        return reader.call().map(IncomingFrame.single)
    }

    /// Decodes one line. Never throws: what is wrong becomes the error to answer with.
    public static func decode<Bytes: DataProtocol>(_ line: Bytes, decoder: JSONDecoder = JSONDecoder()) -> IncomingFrame {
        let data = line as? Data ?? Data(line)
        if let simple = SimpleRequest.decode(data) { return .single(simple) }
        return decodeFully(data, decoder: decoder)
    }

    /// Decodes one line with Foundation's decoder, which explains whatever is wrong.
    static func decodeFully(_ data: Data, decoder: JSONDecoder) -> IncomingFrame {
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

/// The commonest request, `{"jsonrpc":"2.0","id":7,"method":"netd.ping"}` with no params (or
/// `"params":[]`), read straight from its bytes: Foundation's decoder costs more than the rest of
/// answering such a request. Anything else (params, escapes in strings, other members, a repeated
/// member, a fractional id, an unknown method) is left to the full decoder, which also explains
/// what is wrong; this path only ever accepts what that decoder would accept the same way.
enum SimpleRequest {
    static func decode(_ data: Data) -> IncomingCall? {
        data.withUnsafeBytes { bytes -> IncomingCall? in
            var reader = Reader(bytes: bytes)
            return reader.call()
        }
    }

    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        init(bytes: UnsafeRawBufferPointer) {
            self.bytes = bytes
        }

        mutating func call() -> IncomingCall? {
            var version: Substring?
            var id: RequestID?
            var method: String?
            var sawParams = false
            var members: [(String, FlatValue)]?
            skipSpace()
            guard take(UInt8(ascii: "{")) else { return nil }
            skipSpace()
            if take(UInt8(ascii: "}")) { return nil }
            while true {
                skipSpace()
                guard let key = string() else { return nil }
                skipSpace()
                guard take(UInt8(ascii: ":")) else { return nil }
                skipSpace()
                switch key {
                case "jsonrpc" where version == nil:
                    guard let value = string() else { return nil }
                    version = Substring(value)
                case "id" where id == nil:
                    guard let value = requestID() else { return nil }
                    id = value
                case "method" where method == nil:
                    guard let value = string() else { return nil }
                    method = value
                case "params" where !sawParams:
                    sawParams = true
                    if take(UInt8(ascii: "{")) {
                        guard let read = flatObject() else { return nil }
                        members = read
                    } else {
                        // An empty array means no params, as an absent member does.
                        guard take(UInt8(ascii: "[")) else { return nil }
                        skipSpace()
                        guard take(UInt8(ascii: "]")) else { return nil }
                    }
                default:
                    return nil
                }
                skipSpace()
                if take(UInt8(ascii: ",")) { continue }
                guard take(UInt8(ascii: "}")) else { return nil }
                break
            }
            skipSpace()
            guard index == bytes.count, version == "2.0", let method else { return nil }
            if let members {
                // Flat params of any method, when they decode and pass its checks as they are.
                guard !method.hasPrefix("rpc."), let type = MethodRegistry.method(named: method),
                    let params = type.flatParams(members)
                else { return nil }
                return IncomingCall(
                    reply: id.map { .respond($0) } ?? .none, methodName: method,
                    content: .success(IncomingCall.Valid(name: method, method: type, params: params)))
            }
            // No params: only methods that take none (the others would need them explained).
            guard let type = MethodRegistry.takingNoParams[method] else { return nil }
            return IncomingCall(
                reply: id.map { .respond($0) } ?? .none, methodName: method,
                content: .success(IncomingCall.Valid(name: method, method: type, params: NoParams())))
        }

        /// The members of a `params` object whose values are strings without escapes, integers,
        /// booleans or null, after its `{`; nil for anything else, or a name given twice.
        private mutating func flatObject() -> [(String, FlatValue)]? {
            var members: [(String, FlatValue)] = []
            skipSpace()
            if take(UInt8(ascii: "}")) { return members }
            while true {
                skipSpace()
                guard let name = string(), !members.contains(where: { $0.0 == name }) else { return nil }
                skipSpace()
                guard take(UInt8(ascii: ":")) else { return nil }
                skipSpace()
                guard index < bytes.count else { return nil }
                switch bytes[index] {
                case UInt8(ascii: "\""):
                    guard let value = string() else { return nil }
                    members.append((name, .string(value)))
                case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
                    if literal("true") {
                        members.append((name, .bool(true)))
                    } else if literal("false") {
                        members.append((name, .bool(false)))
                    } else if literal("null") {
                        members.append((name, .null))
                    } else {
                        return nil
                    }
                default:
                    guard case .number(let value) = requestID() else { return nil }
                    members.append((name, .integer(value)))
                }
                skipSpace()
                if take(UInt8(ascii: ",")) { continue }
                guard take(UInt8(ascii: "}")) else { return nil }
                return members
            }
        }

        private mutating func literal(_ word: StaticString) -> Bool {
            let count = word.utf8CodeUnitCount
            guard index + count <= bytes.count else { return false }
            let matches = word.withUTF8Buffer { bytes[index..<index + count].elementsEqual($0) }
            if matches { index += count }
            return matches
        }

        private mutating func skipSpace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        private mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        /// A string of printable ASCII without escapes; nil otherwise (so that this path never
        /// needs the line's UTF-8 checked first).
        private mutating func string() -> String? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            let start = index
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                    index += 1
                    return text
                }
                if byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x80 { return nil }
                index += 1
            }
            return nil
        }

        /// An integer id, a string id without escapes, or null.
        private mutating func requestID() -> RequestID? {
            if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                return string().map(RequestID.string)
            }
            if index + 4 <= bytes.count, bytes[index..<index + 4].elementsEqual("null".utf8) {
                index += 4
                return .null
            }
            var value: Int64 = 0
            let negative = take(UInt8(ascii: "-"))
            let start = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                let (times, overflow) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflowed) = times.addingReportingOverflow(Int64(bytes[index] - UInt8(ascii: "0")))
                guard !overflow, !overflowed else { return nil }
                value = sum
                index += 1
            }
            let digits = index - start
            // No leading zeros, and nothing that makes it a fraction or an exponent.
            guard digits > 0, digits == 1 || bytes[start] != UInt8(ascii: "0") else { return nil }
            if index < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[index]) { return nil }
            return .number(negative ? -value : value)
        }
    }
}
