extension JSONCoding {
    /// A value encoded once, for answers that never change (`netd.ping`): this encoder writes
    /// its text as it is; any other encoder encodes the value.
    public struct EncodedOnce: Encodable, Sendable {
        public let value: any Encodable & Sendable
        let text: [UInt8]

        public init<T: Encodable & Sendable>(_ value: T) throws {
            self.value = value
            self.text = try JSONCoding.encode(value)
        }

        public func encode(to encoder: any Encoder) throws {
            if let encoder = encoder as? ByteEncoder {
                encoder.writeEncoded(text)
            } else {
                try value.encode(to: encoder)
            }
        }
    }

    /// Some members of an object encoded once, for the parts of a value that never change (a
    /// socket's id, addresses, owner...): a type's `encode(to:)` hands them to this encoder with
    /// ``KeyedEncodingContainer/encode(members:else:)``, which writes them as they are.
    public struct EncodedMembers: Sendable {
        let text: [UInt8]
        let count: Int
        let firstKey: Range<Int>
        let lastKey: Range<Int>
        /// Whether the members are in key order among themselves.
        let sorted: Bool

        /// The members of the object `value` encodes to.
        public init<T: Encodable>(membersOf value: T) throws {
            let object = try JSONCoding.encode(value)
            guard object.first == UInt8(ascii: "{"), object.last == UInt8(ascii: "}") else {
                throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "\(T.self) does not encode to an object"))
            }
            let text = Array(object.dropFirst().dropLast())
            let entries = text.withUnsafeBufferPointer { ByteEncoder.entries(in: $0, from: 0, to: $0.count) }
            self.text = text
            self.count = entries.count
            self.firstKey = entries.first?.key ?? 0..<0
            self.lastKey = entries.last?.key ?? 0..<0
            // Compared inside the quotes, as the encoder compares keys.
            func name(_ key: Range<Int>) -> ArraySlice<UInt8> { text[(key.lowerBound + 1)..<(key.upperBound - 1)] }
            self.sorted = zip(entries, entries.dropFirst()).allSatisfy { left, right in
                name(left.key).lexicographicallyPrecedes(name(right.key))
            }
        }
    }
}

extension KeyedEncodingContainer {
    /// Members encoded once, written as they are by ``JSONCoding``'s encoder; any other encoder
    /// gets them from `encodeOne`, which encodes the same members one by one.
    mutating func encode(members: JSONCoding.EncodedMembers?, encoder: any Encoder, else encodeOne: (inout Self) throws -> Void) rethrows {
        if let members, let bytes = encoder as? ByteEncoder, bytes.writeMembers(members) { return }
        try encodeOne(&self)
    }
}
