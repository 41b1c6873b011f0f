/// The containers ``ByteEncoder`` hands to `encode(to:)`: each writes straight into the encoder's text.

/// What `superEncoder()` hands out: writes one value where the key was just written.
struct SuperEncoder: Encoder {
    let encoder: ByteEncoder
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(KeyedContainer<Key>(encoder: encoder, frame: encoder.open(object: true)))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        UnkeyedContainer(encoder: encoder, frame: encoder.open(object: false))
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleValueContainer(encoder: encoder)
    }
}

struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: ByteEncoder
    let frame: Int
    var codingPath: [any CodingKey] { [] }

    private func key(_ key: Key) {
        encoder.key(key.stringValue, in: frame)
    }

    mutating func encodeNil(forKey key: Key) throws {
        self.key(key)
        encoder.json.null()
        encoder.wrote()
    }

    mutating func encode(_ value: Bool, forKey key: Key) throws {
        self.key(key)
        encoder.json.bool(value)
        encoder.wrote()
    }

    mutating func encode(_ value: String, forKey key: Key) throws {
        self.key(key)
        encoder.json.string(value)
        encoder.wrote()
    }

    mutating func encode(_ value: Double, forKey key: Key) throws {
        self.key(key)
        try encoder.json.double(value)
        encoder.wrote()
    }

    mutating func encode(_ value: Float, forKey key: Key) throws {
        self.key(key)
        try encoder.json.double(Double(value))
        encoder.wrote()
    }

    mutating func encode(_ value: Int, forKey key: Key) throws { integer(Int64(value), key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { integer(Int64(value), key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { integer(Int64(value), key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { integer(Int64(value), key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { integer(value, key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { integer(UInt64(value), key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { integer(UInt64(value), key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { integer(UInt64(value), key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { integer(UInt64(value), key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { integer(value, key) }

    private func integer(_ value: Int64, _ key: Key) {
        self.key(key)
        encoder.json.integer(value)
        encoder.wrote()
    }

    private func integer(_ value: UInt64, _ key: Key) {
        self.key(key)
        encoder.json.integer(value)
        encoder.wrote()
    }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        self.key(key)
        try encoder.encodeValue(value)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        self.key(key)
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(encoder: encoder, frame: encoder.open(object: true)))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        self.key(key)
        return UnkeyedContainer(encoder: encoder, frame: encoder.open(object: false))
    }

    mutating func superEncoder() -> any Encoder {
        encoder.key("super", in: frame)
        return encoder.superEncoder()
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        self.key(key)
        return encoder.superEncoder()
    }
}

struct UnkeyedContainer: UnkeyedEncodingContainer {
    let encoder: ByteEncoder
    let frame: Int
    var codingPath: [any CodingKey] { [] }
    var count = 0

    init(encoder: ByteEncoder, frame: Int) {
        self.encoder = encoder
        self.frame = frame
    }

    private mutating func next() {
        encoder.element(in: frame)
        count += 1
    }

    mutating func encodeNil() throws {
        next()
        encoder.json.null()
        encoder.wrote()
    }

    mutating func encode(_ value: Bool) throws {
        next()
        encoder.json.bool(value)
        encoder.wrote()
    }

    mutating func encode(_ value: String) throws {
        next()
        encoder.json.string(value)
        encoder.wrote()
    }

    mutating func encode(_ value: Double) throws {
        next()
        try encoder.json.double(value)
        encoder.wrote()
    }

    mutating func encode(_ value: Float) throws {
        next()
        try encoder.json.double(Double(value))
        encoder.wrote()
    }

    mutating func encode(_ value: Int) throws { integer(Int64(value)) }
    mutating func encode(_ value: Int8) throws { integer(Int64(value)) }
    mutating func encode(_ value: Int16) throws { integer(Int64(value)) }
    mutating func encode(_ value: Int32) throws { integer(Int64(value)) }
    mutating func encode(_ value: Int64) throws { integer(value) }
    mutating func encode(_ value: UInt) throws { integer(UInt64(value)) }
    mutating func encode(_ value: UInt8) throws { integer(UInt64(value)) }
    mutating func encode(_ value: UInt16) throws { integer(UInt64(value)) }
    mutating func encode(_ value: UInt32) throws { integer(UInt64(value)) }
    mutating func encode(_ value: UInt64) throws { integer(value) }

    private mutating func integer(_ value: Int64) {
        next()
        encoder.json.integer(value)
        encoder.wrote()
    }

    private mutating func integer(_ value: UInt64) {
        next()
        encoder.json.integer(value)
        encoder.wrote()
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        next()
        try encoder.encodeValue(value)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        next()
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(encoder: encoder, frame: encoder.open(object: true)))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        next()
        return UnkeyedContainer(encoder: encoder, frame: encoder.open(object: false))
    }

    mutating func superEncoder() -> any Encoder {
        next()
        return encoder.superEncoder()
    }
}

struct SingleValueContainer: SingleValueEncodingContainer {
    let encoder: ByteEncoder
    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil() throws {
        encoder.json.null()
        encoder.wrote()
    }

    mutating func encode(_ value: Bool) throws {
        encoder.json.bool(value)
        encoder.wrote()
    }

    mutating func encode(_ value: String) throws {
        encoder.json.string(value)
        encoder.wrote()
    }

    mutating func encode(_ value: Double) throws {
        try encoder.json.double(value)
        encoder.wrote()
    }

    mutating func encode(_ value: Float) throws {
        try encoder.json.double(Double(value))
        encoder.wrote()
    }

    mutating func encode(_ value: Int) throws { integer(Int64(value)) }
    mutating func encode(_ value: Int8) throws { integer(Int64(value)) }
    mutating func encode(_ value: Int16) throws { integer(Int64(value)) }
    mutating func encode(_ value: Int32) throws { integer(Int64(value)) }
    mutating func encode(_ value: Int64) throws { integer(value) }
    mutating func encode(_ value: UInt) throws { integer(UInt64(value)) }
    mutating func encode(_ value: UInt8) throws { integer(UInt64(value)) }
    mutating func encode(_ value: UInt16) throws { integer(UInt64(value)) }
    mutating func encode(_ value: UInt32) throws { integer(UInt64(value)) }
    mutating func encode(_ value: UInt64) throws { integer(value) }

    private func integer(_ value: Int64) {
        encoder.json.integer(value)
        encoder.wrote()
    }

    private func integer(_ value: UInt64) {
        encoder.json.integer(value)
        encoder.wrote()
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        try encoder.encodeValue(value)
    }
}
