#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one way netd and its clients turn values into JSON text: compact, keys of every object in
/// byte order (stable output for people and golden tests), slashes unescaped, absent optionals left
/// out (a type writes `null` by encoding nil), integral doubles without `.0`.
///
/// Values are written straight into bytes as their `encode(to:)` runs: no tree of boxed values is
/// built and read back (Foundation's encoder takes twice as long for a socket's description).
public enum JSONCoding {
    /// The JSON text of `value`.
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        var writer = JSONWriter()
        try write(value, to: &writer)
        return writer.bytes
    }

    /// Appends the JSON text of `value`.
    public static func write<T: Encodable>(_ value: T, to writer: inout JSONWriter) throws {
        try ByteEncoder().write(value, to: &writer)
    }

    /// An encoder kept for many values, one after another on one thread (an RPC connection's
    /// answers): its bookkeeping is allocated once, not per value.
    public final class Reusable {
        fileprivate let encoder = ByteEncoder()

        public init() {}

        /// Appends the JSON text of `value`, as ``JSONCoding/write(_:to:)``.
        public func write<T: Encodable>(_ value: T, to writer: inout JSONWriter) throws {
            try encoder.write(value, to: &writer)
        }
    }
}

/// Writes as `encode(to:)` asks. Objects and arrays open as frames on a stack and close when the
/// value that opened them is done (or when an outer container writes its next entry); an object
/// whose keys came out of order is put in order as it closes.
final class ByteEncoder: Encoder {
    // The encoder is used by one thread at a time and never hands out its storage, so the runtime's
    // exclusivity checks on every write (a fifth of the time of a socket's description) are off.
    @exclusivity(unchecked) var json = JSONWriter()
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    fileprivate struct Frame {
        var start: Int
        var isObject: Bool
        var count = 0
        /// The text of the last key written in this object, quotes included: the next key is
        /// compared with it as written, so no key is kept as a `String`.
        var lastKey = 0..<0
        var sorted = true
    }

    @exclusivity(unchecked) fileprivate var frames: [Frame] = []
    /// A value is due and nothing of it is written yet.
    private var expectingValue = false
    /// The container the value being encoded opened: asked for again, it is the same one.
    private var levelFrame: Int?

    func write<T: Encodable>(_ value: T, to writer: inout JSONWriter) throws {
        // What a value that threw left behind is not carried into the next one.
        frames.removeAll(keepingCapacity: true)
        levelFrame = nil
        expectingValue = false
        swap(&json, &writer)
        defer { swap(&json, &writer) }
        try encodeValue(value)
        closeFrames(above: -1)
    }

    func encodeValue<T: Encodable>(_ value: T) throws {
        let base = frames.count
        let outerLevel = levelFrame
        levelFrame = nil
        expectingValue = true
        defer { levelFrame = outerLevel }
        try value.encode(to: self)
        if expectingValue {
            // Encoded nothing at all: an empty object, as Foundation writes it.
            expectingValue = false
            json.raw("{}")
        }
        closeFrames(above: base - 1)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(KeyedContainer<Key>(encoder: self, frame: openOrReuse(object: true)))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        UnkeyedContainer(encoder: self, frame: openOrReuse(object: false))
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleValueContainer(encoder: self)
    }

    // MARK: Frames

    private func openOrReuse(object: Bool) -> Int {
        if let levelFrame, levelFrame < frames.count { return levelFrame }
        let frame = open(object: object)
        levelFrame = frame
        return frame
    }

    func open(object: Bool) -> Int {
        expectingValue = false
        frames.append(Frame(start: json.bytes.count, isObject: object))
        json.raw(object ? "{" : "[")
        return frames.count - 1
    }

    func closeFrames(above frame: Int) {
        fillMissingValue()
        while frames.count - 1 > frame {
            let closing = frames.removeLast()
            if closing.isObject {
                json.bytes.append(UInt8(ascii: "}"))
                if !closing.sorted { sortEntries(of: closing) }
            } else {
                json.bytes.append(UInt8(ascii: "]"))
            }
        }
    }

    /// Starts an entry of object `frame`: a comma after the previous one, then the key.
    func key(_ key: String, in frame: Int) {
        closeFrames(above: frame)
        if frames[frame].count > 0 { json.bytes.append(UInt8(ascii: ",")) }
        let offset = json.bytes.count
        json.string(key)
        let written = offset..<json.bytes.count
        if frames[frame].count > 0, frames[frame].sorted, !precedes(frames[frame].lastKey, written) {
            frames[frame].sorted = false
        }
        frames[frame].count += 1
        frames[frame].lastKey = written
        json.bytes.append(UInt8(ascii: ":"))
        expectingValue = true
    }

    /// Starts an element of array `frame`.
    func element(in frame: Int) {
        closeFrames(above: frame)
        if frames[frame].count > 0 { json.bytes.append(UInt8(ascii: ",")) }
        frames[frame].count += 1
        expectingValue = true
    }

    /// A key (or a super encoder) that got no value gets an empty object, as Foundation writes it.
    private func fillMissingValue() {
        guard expectingValue, !frames.isEmpty else { return }
        expectingValue = false
        json.raw("{}")
    }

    func wrote() {
        expectingValue = false
    }

    /// Text that this encoder wrote before (``JSONCoding/EncodedOnce``), as the value due now.
    func writeEncoded(_ text: [UInt8]) {
        json.raw(text)
        expectingValue = false
    }

    /// Whether the key written at `left` comes before the one at `right`: byte order of their text
    /// (for keys without escapes, of their UTF-8), as Foundation's `sortedKeys` orders them.
    private func precedes(_ left: Range<Int>, _ right: Range<Int>) -> Bool {
        // Inside the quotes.
        let (left, right) = ((left.lowerBound + 1)..<(left.upperBound - 1), (right.lowerBound + 1)..<(right.upperBound - 1))
        return json.bytes.withUnsafeBufferPointer { text in
            let common = min(left.count, right.count)
            let order = common == 0 ? 0 : memcmp(text.baseAddress! + left.lowerBound, text.baseAddress! + right.lowerBound, common)
            return order < 0 || (order == 0 && left.count < right.count)
        }
    }

    /// Rewrites a closed object's entries in key order (stable: a repeated key keeps its place).
    /// Rare (the hot results encode in key order), so the entries are found again in the text.
    private func sortEntries(of frame: Frame) {
        let end = json.bytes.count - 1
        let segments = json.bytes.withUnsafeBufferPointer { Self.entries(in: $0, from: frame.start + 1, to: end) }
        let ordered = segments.enumerated().sorted { left, right in
            // Stable: of two equal keys, the first written stays first.
            if precedes(left.element.key, right.element.key) { return true }
            if precedes(right.element.key, left.element.key) { return false }
            return left.offset < right.offset
        }
        var text: [UInt8] = []
        text.reserveCapacity(end - frame.start - 1)
        for (index, segment) in ordered.enumerated() {
            if index > 0 { text.append(UInt8(ascii: ",")) }
            text.append(contentsOf: json.bytes[segment.element.range])
        }
        json.bytes.replaceSubrange((frame.start + 1)..<end, with: text)
    }

    /// The members of an object as this encoder writes them (`"key":value` separated by commas),
    /// found in `text[start..<end]`: each one's key (quotes included) and its whole extent.
    static func entries(in text: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> [(key: Range<Int>, range: Range<Int>)] {
        var segments: [(key: Range<Int>, range: Range<Int>)] = []
        var index = start
        while index < end {
            // An entry: its key (a string), then its value up to a comma at this depth.
            let entryStart = index
            index = stringEnd(text, from: index)
            let keyEnd = index
            var depth = 0
            while index < end {
                let byte = text[index]
                if byte == UInt8(ascii: "\"") {
                    index = stringEnd(text, from: index)
                    continue
                }
                if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") { depth += 1 }
                if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") { depth -= 1 }
                if byte == UInt8(ascii: ","), depth == 0 { break }
                index += 1
            }
            segments.append((entryStart..<keyEnd, entryStart..<index))
            index += 1
        }
        return segments
    }

    /// The index just past the JSON string that starts (with its quote) at `start`.
    private static func stringEnd(_ text: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var index = start + 1
        while text[index] != UInt8(ascii: "\"") {
            index += text[index] == UInt8(ascii: "\\") ? 2 : 1
        }
        return index + 1
    }

    /// Members encoded before (``JSONCoding/EncodedMembers``), written into the object the value
    /// being encoded opened, after the members it wrote so far; false (nothing written) when the
    /// value has opened no object.
    func writeMembers(_ members: JSONCoding.EncodedMembers) -> Bool {
        guard let frame = levelFrame, frame < frames.count, frames[frame].isObject else { return false }
        guard members.count > 0 else { return true }
        closeFrames(above: frame)
        if frames[frame].count > 0 { json.bytes.append(UInt8(ascii: ",")) }
        let offset = json.bytes.count
        json.bytes.append(contentsOf: members.text)
        let first = (offset + members.firstKey.lowerBound)..<(offset + members.firstKey.upperBound)
        if frames[frame].count > 0, frames[frame].sorted, !precedes(frames[frame].lastKey, first) { frames[frame].sorted = false }
        if !members.sorted { frames[frame].sorted = false }
        frames[frame].count += members.count
        frames[frame].lastKey = (offset + members.lastKey.lowerBound)..<(offset + members.lastKey.upperBound)
        expectingValue = false
        return true
    }

    func superEncoder() -> any Encoder {
        SuperEncoder(encoder: self)
    }
}

extension KeyedEncodingContainer {
    /// The value, or `null` when absent (the contract's objects list every member). The concrete
    /// overloads keep the commonest values off the generic path.
    mutating func encodeOrNull(_ value: String?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }

    mutating func encodeOrNull(_ value: Int64?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }

    mutating func encodeOrNull(_ value: Int?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }

    mutating func encodeOrNull<T: Encodable>(_ value: T?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }

    /// A string enum as its raw value, without the generic path.
    mutating func encode<T: RawRepresentable>(raw value: T, forKey key: Key) throws where T.RawValue == String {
        try encode(value.rawValue, forKey: key)
    }
}
