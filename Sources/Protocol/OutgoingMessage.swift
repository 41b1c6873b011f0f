#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A response netd sends: a result or an error for one request id.
public struct ResponseMessage: Encodable, Sendable {
    public enum Outcome: Sendable {
        case result(any Encodable & Sendable)
        case error(ResponseError)
    }

    public var id: RequestID
    public var outcome: Outcome

    public init(id: RequestID, outcome: Outcome) {
        self.id = id
        self.outcome = outcome
    }

    private enum Key: String, CodingKey { case jsonrpc, id, result, error }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode("2.0", forKey: .jsonrpc)
        try container.encode(id, forKey: .id)
        switch outcome {
        case .result(let result): try container.encode(result, forKey: .result)
        case .error(let error): try container.encode(error, forKey: .error)
        }
    }
}

/// A request as a client sends it.
public struct RequestMessage<Params: Encodable & Sendable>: Encodable, Sendable {
    public var id: RequestID?
    public var method: String
    public var params: Params?

    public init(id: RequestID?, method: String, params: Params?) {
        self.id = id
        self.method = method
        self.params = params
    }

    private enum Key: String, CodingKey { case jsonrpc, id, method, params }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode("2.0", forKey: .jsonrpc)
        try container.encodeIfPresent(id, forKey: .id)
        try container.encode(method, forKey: .method)
        try container.encodeIfPresent(params, forKey: .params)
    }
}

/// A notification netd sends (events), or a client sends.
public struct NotificationMessage<Params: Encodable & Sendable>: Encodable, Sendable {
    public var method: String
    public var params: Params

    public init(method: String, params: Params) {
        self.method = method
        self.params = params
    }

    private enum Key: String, CodingKey { case jsonrpc, method, params }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode("2.0", forKey: .jsonrpc)
        try container.encode(method, forKey: .method)
        try container.encode(params, forKey: .params)
    }
}

extension ResponseMessage {
    /// One line as netd writes it: `{"jsonrpc":"2.0","id":...,"result":...}` in that order, keys
    /// inside sorted, then `\n`. The fixed order reads well in socat; the clients need none.
    public func line(encoder: JSONEncoder) throws -> Data {
        var data = Data(capacity: 256)
        try append(to: &data, encoder: encoder)
        data.append(UInt8(ascii: "\n"))
        return data
    }

    /// A batch's answers as one line: a JSON array of responses in request order.
    public static func line(batch: [ResponseMessage], encoder: JSONEncoder) throws -> Data {
        var data = Data("[".utf8)
        for (index, response) in batch.enumerated() {
            if index > 0 { data.append(UInt8(ascii: ",")) }
            try response.append(to: &data, encoder: encoder)
        }
        data.append(contentsOf: "]\n".utf8)
        return data
    }

    private static let head = Array(#"{"jsonrpc":"2.0","id":"#.utf8)
    private static let resultKey = Array(#","result":"#.utf8)
    private static let errorKey = Array(#","error":"#.utf8)

    private func append(to data: inout Data, encoder: JSONEncoder) throws {
        data.append(contentsOf: Self.head)
        switch id {
        // The usual ids need no encoder.
        case .number(let number): data.append(contentsOf: String(number).utf8)
        case .null: data.append(contentsOf: "null".utf8)
        default: data.append(try encoder.encode(id))
        }
        switch outcome {
        case .result(let result):
            data.append(contentsOf: Self.resultKey)
            if let ready = result as? PreencodedResult {
                data.append(ready.json)
            } else {
                data.append(try encoder.encode(result))
            }
        case .error(let error):
            data.append(contentsOf: Self.errorKey)
            data.append(try encoder.encode(error))
        }
        data.append(UInt8(ascii: "}"))
    }
}

/// What a client reads first from a line netd sent: enough to route it.
public struct ServerMessageHeader: Decodable, Sendable {
    /// Present on responses.
    public var id: RequestID?
    /// Present on notifications.
    public var method: String?
}

/// A response decoded with its result typed.
public struct TypedResponse<Result: Decodable & Sendable>: Decodable, Sendable {
    public var id: RequestID
    public var result: Result?
    public var error: ResponseError?
}

/// The encoders and decoders netd and its clients use, configured alike.
public enum JSONCoding {
    /// Compact, keys sorted (stable output for people and golden tests), slashes unescaped (paths read better).
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return encoder
    }
}

/// A result whose JSON is known in advance (the same every time), so that answering it costs a
/// copy instead of an encoding.
public protocol EncodedOnce {
    /// The JSON of this value as `JSONCoding.encoder()` writes it, or nil to encode it as usual.
    var preencoded: Data? { get }
}

/// A result already in JSON (from ``EncodedOnce``), written into a response as it is.
public struct PreencodedResult: Encodable, Sendable {
    public let json: Data

    public init(json: Data) {
        self.json = json
    }

    /// Through an encoder (not the response writer), it is decoded and encoded again.
    public func encode(to encoder: any Encoder) throws {
        try JSONDecoder().decode(JSONValue.self, from: json).encode(to: encoder)
    }
}
