/// A JSON-RPC request id: a string, a number or null, echoed back exactly as it came.
public enum RequestID: Hashable, Sendable, Codable, CustomStringConvertible {
    case string(String)
    case number(Int64)
    /// Fractional ids are discouraged by the specification but legal; they are echoed unchanged.
    case fractional(Double)
    case null

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Int64.self) {
            self = .number(value)
        } else if let value = try? container.decode(Double.self) {
            self = .fractional(value)
        } else {
            // Anything but a string here (a bool, an object, an array) makes this throw.
            self = .string(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .fractional(let value): try container.encode(value)
        case .null: try container.encodeNil()
        }
    }

    public var description: String {
        switch self {
        case .string(let value): "\"\(value)\""
        case .number(let value): String(value)
        case .fractional(let value): String(value)
        case .null: "null"
        }
    }
}
