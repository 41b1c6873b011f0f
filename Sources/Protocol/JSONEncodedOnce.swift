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
}
