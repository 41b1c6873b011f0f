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
        try container.encodeIfPresent(id, forKey: .id)
        try container.encode("2.0", forKey: .jsonrpc)
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
    public func line() throws -> [UInt8] {
        var json = JSONWriter()
        try write(line: &json)
        return json.bytes
    }

    /// Appends this response's line, newline included, through `encoder` if given (else a new one).
    public func write(line json: inout JSONWriter, encoder: JSONCoding.Reusable? = nil) throws {
        try write(to: &json, encoder: encoder)
        json.raw("\n")
    }

    /// A batch's answers as one line: a JSON array of responses in request order.
    public static func line(batch: [ResponseMessage]) throws -> [UInt8] {
        var json = JSONWriter()
        try write(batch: batch, line: &json)
        return json.bytes
    }

    /// Appends a batch's line, newline included.
    public static func write(batch: [ResponseMessage], line json: inout JSONWriter, encoder: JSONCoding.Reusable? = nil) throws {
        json.raw("[")
        for (index, response) in batch.enumerated() {
            if index > 0 { json.raw(",") }
            try response.write(to: &json, encoder: encoder)
        }
        json.raw("]\n")
    }

    private func write(to json: inout JSONWriter, encoder: JSONCoding.Reusable?) throws {
        let encoder = encoder ?? JSONCoding.Reusable()
        json.raw(#"{"jsonrpc":"2.0","id":"#)
        switch id {
        // The usual ids, written as the encoder would, without one.
        case .number(let number): json.integer(number)
        case .string(let string): json.string(string)
        case .null: json.null()
        default: try encoder.write(id, to: &json)
        }
        switch outcome {
        case .result(let result):
            json.raw(#","result":"#)
            try encoder.write(result, to: &json)
        case .error(let error):
            json.raw(#","error":"#)
            try encoder.write(error, to: &json)
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
