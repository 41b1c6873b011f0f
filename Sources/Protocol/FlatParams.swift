/// A member of a flat `params` object as ``SimpleRequest`` reads it from the line's bytes.
enum FlatValue {
    case string(String)
    case integer(Int64)
    case bool(Bool)
    case null
}

extension RPCMethod {
    /// This method's params from a flat object (strings, integers, booleans, null), or nil for
    /// anything the full decoder should look at: an unknown name, a wrong type, a failed check.
    /// Only what the full decoder accepts gets through, and as the same value.
    static func flatParams(_ members: [(String, FlatValue)]) -> Params? {
        let known = Params.fields
        guard members.allSatisfy({ member in known.contains { $0.name == member.0 } }) else { return nil }
        guard let params = try? Params(from: FlatDecoder(members: members)), (try? params.validate()) != nil else { return nil }
        return params
    }
}

/// Decodes params straight from their flat members, without Foundation's JSON machinery. Every
/// failure is thrown as a plain error: the caller then goes to the full decoder, which explains it.
private struct FlatDecoder: Decoder {
    struct Unsupported: Error {}

    let members: [(String, FlatValue)]
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(FlatKeyedContainer<Key>(members: members))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { throw Unsupported() }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { throw Unsupported() }
}

private struct FlatKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [(String, FlatValue)]
    var codingPath: [any CodingKey] { [] }
    var allKeys: [Key] { members.compactMap { Key(stringValue: $0.0) } }

    private func value(_ key: Key) throws -> FlatValue {
        guard let member = members.first(where: { $0.0 == key.stringValue }) else { throw FlatDecoder.Unsupported() }
        return member.1
    }

    func contains(_ key: Key) -> Bool { members.contains { $0.0 == key.stringValue } }

    func decodeNil(forKey key: Key) throws -> Bool {
        if case .null = try value(key) { return true }
        return false
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool {
        guard case .bool(let bool) = try value(key) else { throw FlatDecoder.Unsupported() }
        return bool
    }

    func decode(_ type: String.Type, forKey key: Key) throws -> String {
        guard case .string(let string) = try value(key) else { throw FlatDecoder.Unsupported() }
        return string
    }

    private func integer<T: FixedWidthInteger>(_ key: Key) throws -> T {
        guard case .integer(let integer) = try value(key), let exact = T(exactly: integer) else { throw FlatDecoder.Unsupported() }
        return exact
    }

    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try integer(key) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try integer(key) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try integer(key) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try integer(key) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try integer(key) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try integer(key) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try integer(key) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try integer(key) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try integer(key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try integer(key) }

    // Fractional numbers never take this path (the reader sends them to the full decoder).
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { throw FlatDecoder.Unsupported() }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { throw FlatDecoder.Unsupported() }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        // Enums with string raw values (`encoding`, `role`, ...) read one string.
        try T(from: FlatValueDecoder(value: try value(key)))
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        throw FlatDecoder.Unsupported()
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { throw FlatDecoder.Unsupported() }
    func superDecoder() throws -> any Decoder { throw FlatDecoder.Unsupported() }
    func superDecoder(forKey key: Key) throws -> any Decoder { throw FlatDecoder.Unsupported() }
}

/// One member's value, for types that decode themselves from a single value.
private struct FlatValueDecoder: Decoder, SingleValueDecodingContainer {
    let value: FlatValue
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> { throw FlatDecoder.Unsupported() }
    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { throw FlatDecoder.Unsupported() }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    func decodeNil() -> Bool {
        if case .null = value { return true }
        return false
    }

    func decode(_ type: String.Type) throws -> String {
        guard case .string(let string) = value else { throw FlatDecoder.Unsupported() }
        return string
    }

    func decode(_ type: Bool.Type) throws -> Bool {
        guard case .bool(let bool) = value else { throw FlatDecoder.Unsupported() }
        return bool
    }

    private func integer<T: FixedWidthInteger>() throws -> T {
        guard case .integer(let integer) = value, let exact = T(exactly: integer) else { throw FlatDecoder.Unsupported() }
        return exact
    }

    func decode(_ type: Int.Type) throws -> Int { try integer() }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer() }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer() }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer() }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer() }
    func decode(_ type: UInt.Type) throws -> UInt { try integer() }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer() }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer() }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer() }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer() }
    func decode(_ type: Double.Type) throws -> Double { throw FlatDecoder.Unsupported() }
    func decode(_ type: Float.Type) throws -> Float { throw FlatDecoder.Unsupported() }

    func decode<T: Decodable>(_ type: T.Type) throws -> T { throw FlatDecoder.Unsupported() }
}
