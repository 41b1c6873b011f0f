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
        /// A result already in JSON, as `JSONCoding.encoder()` would write it (``JSONWritable``).
        case json([UInt8])
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
        case .json(let json):
            // Through an encoder (not the response writer), it is decoded and encoded again.
            try container.encode(try JSONDecoder().decode(JSONValue.self, from: Data(json)), forKey: .result)
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
        var json = JSONWriter()
        try write(line: &json, encoder: encoder)
        return Data(json.bytes)
    }

    /// Appends this response's line, newline included.
    public func write(line json: inout JSONWriter, encoder: JSONEncoder) throws {
        try write(to: &json, encoder: encoder)
        json.raw("\n")
    }

    /// A batch's answers as one line: a JSON array of responses in request order.
    public static func line(batch: [ResponseMessage], encoder: JSONEncoder) throws -> Data {
        var json = JSONWriter()
        try write(batch: batch, line: &json, encoder: encoder)
        return Data(json.bytes)
    }

    /// Appends a batch's line, newline included.
    public static func write(batch: [ResponseMessage], line json: inout JSONWriter, encoder: JSONEncoder) throws {
        json.raw("[")
        for (index, response) in batch.enumerated() {
            if index > 0 { json.raw(",") }
            try response.write(to: &json, encoder: encoder)
        }
        json.raw("]\n")
    }

    private func write(to json: inout JSONWriter, encoder: JSONEncoder) throws {
        json.raw(#"{"jsonrpc":"2.0","id":"#)
        switch id {
        // The usual ids need no encoder.
        case .number(let number): json.integer(number)
        case .string(let string): json.string(string)
        case .null: json.null()
        default: json.raw(Array(try encoder.encode(id)))
        }
        switch outcome {
        case .result(let result):
            json.raw(#","result":"#)
            json.raw(Array(try encoder.encode(result)))
        case .json(let written):
            json.raw(#","result":"#)
            json.raw(written)
        case .error(let error):
            json.raw(#","error":"#)
            json.raw(Array(try encoder.encode(error)))
        }
        json.raw("}")
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
/// copy instead of a writing.
public protocol EncodedOnce: JSONWritable {
    /// The JSON of this value as `JSONCoding.encoder()` writes it, or nil to write it as usual.
    var preencoded: [UInt8]? { get }
}
