/// JSON text as netd's request path reads it: each line parsed once, straight from its bytes,
/// into this small tree. Objects keep their members in order, duplicates included, so that the
/// request reader can refuse a repeated name where it stands (-32600 in the request object,
/// -32602 in params) instead of one silently winning.
public indirect enum ParsedJSON: Sendable, Hashable {
    case null
    case bool(Bool)
    /// A number written without fraction or exponent that fits in 64 bits.
    case integer(Int64)
    case double(Double)
    case string(String)
    case array([ParsedJSON])
    case object([(name: String, value: ParsedJSON)])

    public static func == (lhs: ParsedJSON, rhs: ParsedJSON) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.integer(let a), .integer(let b)): a == b
        case (.double(let a), .double(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a.map(\.name) == b.map(\.name) && a.map(\.value) == b.map(\.value)
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let value): hasher.combine(value)
        case .integer(let value): hasher.combine(value)
        case .double(let value): hasher.combine(value)
        case .string(let value): hasher.combine(value)
        case .array(let values): hasher.combine(values)
        case .object(let members):
            for member in members {
                hasher.combine(member.name)
                hasher.combine(member.value)
            }
        }
    }

    /// The value of the member `name`, the first if it is repeated.
    public subscript(name: String) -> ParsedJSON? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.name == name }?.value
    }

    /// A member name that stands twice in this object, if any (objects are small: a scan is cheapest).
    public var repeatedName: String? {
        guard case .object(let members) = self, members.count > 1 else { return nil }
        for index in members.indices.dropFirst() {
            let name = members[index].name
            if members[..<index].contains(where: { $0.name == name }) { return name }
        }
        return nil
    }

    /// As ``JSONValue``, for places that keep JSON without a fixed shape (a repeated name keeps its last value).
    public var value: JSONValue {
        switch self {
        case .null: .null
        case .bool(let value): .bool(value)
        case .integer(let value): .integer(value)
        case .double(let value): .double(value)
        case .string(let value): .string(value)
        case .array(let values): .array(values.map(\.value))
        case .object(let members): .object(Dictionary(members.map { ($0.name, $0.value.value) }, uniquingKeysWith: { $1 }))
        }
    }
}
