/// A value that writes its own JSON: the bytes `JSONCoding.encoder()` would make for it (compact,
/// keys sorted, slashes unescaped), without going through `Encodable`'s generic containers. The
/// results netd sends most (sockets, servers, reads, writes) conform; the protocol tests check
/// each against the encoder byte for byte.
public protocol JSONWritable {
    func write(to json: inout JSONWriter)
}

extension JSONWritable {
    /// This value's JSON text.
    public var jsonBytes: [UInt8] {
        var writer = JSONWriter()
        write(to: &writer)
        return writer.bytes
    }
}

/// Appends JSON text to a byte array. The caller writes keys in the order the encoder sorts them.
public struct JSONWriter {
    public var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Text already in JSON form (punctuation, keys), written as it is.
    @inlinable
    public mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    public mutating func raw(_ text: [UInt8]) {
        bytes.append(contentsOf: text)
    }

    public mutating func null() {
        raw("null")
    }

    public mutating func bool(_ value: Bool) {
        value ? raw("true") : raw("false")
    }

    public mutating func integer<T: BinaryInteger>(_ value: T) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = UInt64(value.magnitude)
        if magnitude < 10 {
            bytes.append(UInt8(ascii: "0") &+ UInt8(magnitude))
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = 20
            while magnitude > 0 {
                start -= 1
                digits[start] = UInt8(ascii: "0") &+ UInt8(magnitude % 10)
                magnitude /= 10
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: digits[start...]))
        }
    }

    /// A JSON string, escaped as the encoder escapes: quote, backslash and control characters;
    /// everything else, slashes and non-ASCII included, as it is.
    public mutating func string(_ value: String) {
        var value = value
        value.withUTF8 { string($0) }
    }

    /// A JSON string from UTF-8 bytes that are known to be valid UTF-8.
    public mutating func string(_ utf8: UnsafeBufferPointer<UInt8>) {
        bytes.append(UInt8(ascii: "\""))
        var plain = 0
        for index in utf8.indices {
            let byte = utf8[index]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[plain..<index]))
            plain = index + 1
            switch byte {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case UInt8(ascii: "\n"): raw("\\n")
            case UInt8(ascii: "\r"): raw("\\r")
            case UInt8(ascii: "\t"): raw("\\t")
            case 0x08: raw("\\b")
            case 0x0C: raw("\\f")
            default:
                raw("\\u00")
                bytes.append(Self.hexDigits[Int(byte >> 4)])
                bytes.append(Self.hexDigits[Int(byte & 0xF)])
            }
        }
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[plain...]))
        bytes.append(UInt8(ascii: "\""))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    public mutating func string<S: RawRepresentable>(_ value: S) where S.RawValue == String {
        string(value.rawValue)
    }

    public mutating func value<T: JSONWritable>(_ value: T?) {
        if let value { value.write(to: &self) } else { null() }
    }

    public mutating func string(_ value: String?) {
        if let value { string(value) } else { null() }
    }

    public mutating func integer<T: BinaryInteger>(_ value: T?) {
        if let value { integer(value) } else { null() }
    }
}

// MARK: The results netd sends most

extension Endpoint: JSONWritable {
    /// Absent fields are left out, as the synthesized `Encodable` does.
    public func write(to json: inout JSONWriter) {
        json.raw("{")
        var first = true
        func key(_ name: StaticString, _ json: inout JSONWriter) {
            if !first { json.raw(",") }
            first = false
            json.raw(name)
        }
        if let address { key("\"address\":", &json); json.string(address) }
        if let family { key("\"family\":", &json); json.string(family) }
        if let path { key("\"path\":", &json); json.string(path) }
        if let port { key("\"port\":", &json); json.integer(port) }
        json.raw("}")
    }
}

extension Owner: JSONWritable {
    public func write(to json: inout JSONWriter) {
        json.raw("{\"pid\":")
        json.integer(pid)
        json.raw(",\"uid\":")
        json.integer(uid)
        json.raw("}")
    }
}

extension SocketFailure: JSONWritable {
    public func write(to json: inout JSONWriter) {
        json.raw("{\"code\":")
        json.string(code)
        json.raw(",\"message\":")
        json.string(message)
        json.raw("}")
    }
}

extension SocketInfo: JSONWritable {
    public func write(to json: inout JSONWriter) {
        json.raw("{\"buffered\":")
        json.integer(buffered)
        json.raw(",\"bytesRead\":")
        json.integer(bytesRead)
        json.raw(",\"bytesWritten\":")
        json.integer(bytesWritten)
        json.raw(",\"closedAt\":")
        json.string(closedAt)
        json.raw(",\"error\":")
        json.value(error)
        json.raw(",\"host\":")
        json.string(host)
        json.raw(",\"id\":")
        json.integer(id)
        json.raw(",\"kind\":")
        json.string(kind)
        json.raw(",\"label\":")
        json.string(label)
        json.raw(",\"local\":")
        json.value(local)
        json.raw(",\"openedAt\":")
        json.string(openedAt)
        json.raw(",\"owner\":")
        owner.write(to: &json)
        json.raw(",\"remote\":")
        json.value(remote)
        json.raw(",\"role\":")
        json.string(role)
        json.raw(",\"server\":")
        json.integer(server)
        json.raw(",\"state\":")
        json.string(state)
        json.raw("}")
    }
}

extension ServerInfo: JSONWritable {
    public func write(to json: inout JSONWriter) {
        json.raw("{\"accepted\":")
        json.integer(accepted)
        json.raw(",\"backlog\":")
        json.integer(backlog)
        json.raw(",\"closedAt\":")
        json.string(closedAt)
        json.raw(",\"connections\":")
        json.integer(connections)
        json.raw(",\"error\":")
        json.value(error)
        json.raw(",\"id\":")
        json.integer(id)
        json.raw(",\"kind\":")
        json.string(kind)
        json.raw(",\"label\":")
        json.string(label)
        json.raw(",\"local\":")
        json.value(local)
        json.raw(",\"maxConnections\":")
        json.integer(maxConnections)
        json.raw(",\"openedAt\":")
        json.string(openedAt)
        json.raw(",\"owner\":")
        owner.write(to: &json)
        json.raw(",\"pending\":")
        json.integer(pending)
        json.raw(",\"role\":")
        json.string(role)
        json.raw(",\"state\":")
        json.string(state)
        json.raw("}")
    }
}

extension SocketWriteMethod.Result: JSONWritable {
    public func write(to json: inout JSONWriter) {
        json.raw("{\"bytes\":")
        json.integer(bytes)
        json.raw("}")
    }
}

extension SocketReadMethod.Result: JSONWritable {
    public func write(to json: inout JSONWriter) {
        json.raw("{\"bytes\":")
        json.integer(bytes)
        json.raw(",\"data\":")
        json.string(data)
        json.raw(",\"encoding\":")
        json.string(encoding)
        json.raw(",\"eof\":")
        json.bool(eof)
        json.raw("}")
    }
}

extension ServerAcceptMethod.Result: JSONWritable {
    public func write(to json: inout JSONWriter) {
        json.raw("{\"socket\":")
        json.value(socket)
        json.raw("}")
    }
}

extension SocketListMethod.Result: JSONWritable {
    public func write(to json: inout JSONWriter) {
        json.raw("{\"sockets\":[")
        for (index, socket) in sockets.enumerated() {
            if index > 0 { json.raw(",") }
            socket.write(to: &json)
        }
        json.raw("]}")
    }
}

extension PingMethod.Result: JSONWritable {
    public func write(to json: inout JSONWriter) {
        json.raw("{\"pong\":")
        json.bool(pong)
        json.raw(",\"version\":")
        json.string(version)
        json.raw("}")
    }
}
