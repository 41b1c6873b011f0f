/// The one way netd and its clients turn values into JSON text: compact, keys of every object in
/// byte order (stable output for people and golden tests), slashes unescaped, absent optionals left
/// out (a type writes `null` by encoding nil), integral doubles without `.0`.
///
/// Values are written straight into bytes as their `encode(to:)` runs: no tree of boxed values is
/// built and read back, so a socket's description costs about a microsecond, not twelve.
public enum JSONCoding {
    /// The JSON text of `value`.
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        var writer = JSONWriter()
        try write(value, to: &writer)
        return writer.bytes
    }

    /// Appends the JSON text of `value`.
    public static func write<T: Encodable>(_ value: T, to writer: inout JSONWriter) throws {
        let encoder = ByteEncoder()
        swap(&encoder.json, &writer)
        defer { swap(&encoder.json, &writer) }
        try encoder.encodeValue(value)
        encoder.closeFrames(above: -1)
    }

    /// `value` for people to read: two spaces of indent per level, one member or element a line.
    public static func encodePretty<T: Encodable>(_ value: T) throws -> [UInt8] {
        indented(try encode(value))
    }

    /// Compact JSON text (as ``encode(_:)`` writes it) laid out over lines.
    static func indented(_ compact: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(compact.count * 2)
        var depth = 0
        var inString = false
        var escaped = false
        func newline() {
            out.append(UInt8(ascii: "\n"))
            out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: depth * 2))
        }
        for (index, byte) in compact.enumerated() {
            if inString {
                out.append(byte)
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = true
                out.append(byte)
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                out.append(byte)
                // An empty object or array stays on its line.
                let next = index + 1 < compact.count ? compact[index + 1] : 0
                if next == UInt8(ascii: "}") || next == UInt8(ascii: "]") { continue }
                depth += 1
                newline()
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                let previous = index > 0 ? compact[index - 1] : 0
                if previous != UInt8(ascii: "{") && previous != UInt8(ascii: "[") {
                    depth -= 1
                    newline()
                }
                out.append(byte)
            case UInt8(ascii: ","):
                out.append(byte)
                newline()
            case UInt8(ascii: ":"):
                out.append(contentsOf: [UInt8(ascii: ":"), UInt8(ascii: " ")])
            default:
                out.append(byte)
            }
        }
        return out
    }
}

/// Writes as `encode(to:)` asks. Objects and arrays open as frames on a stack and close when the
/// value that opened them is done (or when an outer container writes its next entry); an object
/// whose keys came out of order is put in order as it closes.
final class ByteEncoder: Encoder {
    var json = JSONWriter()
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    private struct Frame {
        var start: Int
        var isObject: Bool
        var count = 0
        /// Where this object's entries begin in ``entries``.
        var firstEntry: Int
        var sorted = true
    }

    private var frames: [Frame] = []
    /// The keys of open objects and where each entry starts in the text.
    private var entries: [(key: String, offset: Int)] = []
    /// A value is due and nothing of it is written yet.
    private var expectingValue = false
    /// The container the value being encoded opened: asked for again, it is the same one.
    private var levelFrame: Int?

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
        frames.append(Frame(start: json.bytes.count, isObject: object, firstEntry: entries.count))
        json.raw(object ? "{" : "[")
        return frames.count - 1
    }

    func closeFrames(above frame: Int) {
        fillMissingValue()
        while frames.count - 1 > frame {
            let closing = frames.removeLast()
            if closing.isObject {
                json.raw("}")
                if !closing.sorted { sortEntries(of: closing) }
                entries.removeSubrange(closing.firstEntry...)
            } else {
                json.raw("]")
            }
        }
    }

    /// Starts an entry of object `frame`: a comma after the previous one, then the key.
    func key(_ key: String, in frame: Int) {
        closeFrames(above: frame)
        if frames[frame].count > 0 {
            json.raw(",")
            if frames[frame].sorted, let last = entries.last, !last.key.utf8.lexicographicallyPrecedes(key.utf8) {
                frames[frame].sorted = false
            }
        }
        frames[frame].count += 1
        entries.append((key, json.bytes.count))
        json.string(key)
        json.raw(":")
        expectingValue = true
    }

    /// Starts an element of array `frame`.
    func element(in frame: Int) {
        closeFrames(above: frame)
        if frames[frame].count > 0 { json.raw(",") }
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

    /// Rewrites a closed object's entries in key order (stable: a repeated key keeps its place).
    private func sortEntries(of frame: Frame) {
        let own = entries[frame.firstEntry...]
        let end = json.bytes.count - 1
        var segments: [(key: String, range: Range<Int>)] = []
        segments.reserveCapacity(own.count)
        for (index, entry) in zip(own.indices, own) {
            let next = index + 1 < entries.count ? entries[index + 1].offset - 1 : end
            segments.append((entry.key, entry.offset..<next))
        }
        let ordered = segments.enumerated().sorted { left, right in
            left.element.key == right.element.key
                ? left.offset < right.offset : left.element.key.utf8.lexicographicallyPrecedes(right.element.key.utf8)
        }
        var text: [UInt8] = []
        text.reserveCapacity(end - frame.start - 1)
        for (index, segment) in ordered.enumerated() {
            if index > 0 { text.append(UInt8(ascii: ",")) }
            text.append(contentsOf: json.bytes[segment.element.range])
        }
        json.bytes.replaceSubrange((frame.start + 1)..<end, with: text)
    }

    func superEncoder() -> any Encoder {
        SuperEncoder(encoder: self)
    }
}
