/// Parses one JSON text (RFC 8259) from UTF-8 bytes. Strings are checked as UTF-8 as they are
/// read, so the line needs no separate check or copy; nesting is bounded so that hostile input
/// cannot exhaust the stack.
public struct JSONParser {
    /// Why a text is not JSON, with the byte offset where the parser gave up.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var reason: String
        public var offset: Int
        public var description: String { "\(reason) at byte \(offset)" }
    }

    /// Deeper nesting than any request needs; a deeper text is refused, not recursed into.
    public static let maximumDepth = 512

    private let bytes: UnsafeRawBufferPointer
    private var index = 0
    private var depth = 0

    private init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(Failure) -> ParsedJSON {
        var parser = JSONParser(bytes)
        parser.skipSpace()
        let value = try parser.value()
        parser.skipSpace()
        guard parser.index == bytes.count else { throw parser.failure("unexpected text after the JSON value") }
        return value
    }

    public static func parse(_ bytes: some Collection<UInt8>) throws(Failure) -> ParsedJSON {
        let array = Array(bytes)
        do {
            return try array.withUnsafeBytes { raw in try parse(raw) }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(reason: "\(error)", offset: 0)
        }
    }

    private func failure(_ reason: String) -> Failure {
        Failure(reason: index < bytes.count ? reason : "unexpected end of text (\(reason))", offset: index)
    }

    private mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func value() throws(Failure) -> ParsedJSON {
        guard index < bytes.count else { throw failure("a value was expected") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw failure("a value was expected")
        }
    }

    private mutating func enter() throws(Failure) {
        depth += 1
        guard depth <= Self.maximumDepth else { throw failure("nested more than \(Self.maximumDepth) levels deep") }
    }

    private mutating func object() throws(Failure) -> ParsedJSON {
        try enter()
        defer { depth -= 1 }
        index += 1
        var members: [(name: String, value: ParsedJSON)] = []
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw failure("a member name in quotes was expected") }
            let name = try string()
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw failure("`:` was expected after a member name") }
            index += 1
            skipSpace()
            members.append((name, try value()))
            skipSpace()
            guard index < bytes.count else { throw failure("`,` or `}` was expected") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                return .object(members)
            default: throw failure("`,` or `}` was expected")
            }
        }
    }

    private mutating func array() throws(Failure) -> ParsedJSON {
        try enter()
        defer { depth -= 1 }
        index += 1
        var values: [ParsedJSON] = []
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(values)
        }
        while true {
            skipSpace()
            values.append(try value())
            skipSpace()
            guard index < bytes.count else { throw failure("`,` or `]` was expected") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                return .array(values)
            default: throw failure("`,` or `]` was expected")
            }
        }
    }

    private mutating func literal(_ word: StaticString) throws(Failure) {
        let count = word.utf8CodeUnitCount
        let matches = index + count <= bytes.count && word.withUTF8Buffer { bytes[index..<index + count].elementsEqual($0) }
        guard matches else { throw failure("a value was expected") }
        index += count
    }

    private mutating func number() throws(Failure) -> ParsedJSON {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        let digits = index
        while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
        guard index > digits else { throw failure("a digit was expected") }
        guard index - digits == 1 || bytes[digits] != UInt8(ascii: "0") else { throw failure("a number may not have leading zeros") }
        var integral = true
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            integral = false
            index += 1
            let fraction = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            guard index > fraction else { throw failure("a digit was expected after `.`") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            integral = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            let exponent = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            guard index > exponent else { throw failure("a digit was expected in the exponent") }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if integral, let value = Int64(text) { return .integer(value) }
        guard let value = Double(text), value.isFinite else {
            throw Failure(reason: "the number \(ResponseError.quoting(text)) is out of range", offset: start)
        }
        return .double(value)
    }

    /// A string after its opening quote has been seen; escapes decoded, UTF-8 checked.
    private mutating func string() throws(Failure) -> String {
        index += 1
        let start = index
        // The common case: no escapes, ASCII only, read in place.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
                index += 1
                return Self.common(raw) ?? String(decoding: raw, as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") || byte >= 0x80 { break }
            guard byte >= 0x20 else { throw failure("a control character must be escaped in a string") }
            index += 1
        }
        var scalars = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return String(decoding: scalars, as: UTF8.self)
            case UInt8(ascii: "\\"):
                index += 1
                try escape(into: &scalars)
            case 0..<0x20:
                throw failure("a control character must be escaped in a string")
            case 0x80...:
                try multibyte(into: &scalars)
            default:
                scalars.append(byte)
                index += 1
            }
        }
        throw failure("a string was not closed")
    }

    /// The strings every request repeats (member names, `"2.0"`, method names), made once:
    /// taking one of these costs a comparison of bytes instead of building a string.
    private static let commonStrings: [[(bytes: [UInt8], string: String)]] = {
        let words = ["jsonrpc", "2.0", "id", "method", "params", "data", "encoding", "maxBytes", "waitMs", "host", "port",
            "path", "label", "utf8", "base64", "hex", "reset"] + MethodRegistry.names
        var byLength = [[(bytes: [UInt8], string: String)]](repeating: [], count: 32)
        for word in words where word.utf8.count < byLength.count { byLength[word.utf8.count].append((Array(word.utf8), word)) }
        return byLength
    }()

    private static func common(_ raw: UnsafeRawBufferPointer) -> String? {
        guard raw.count < commonStrings.count else { return nil }
        for candidate in commonStrings[raw.count] where candidate.bytes.elementsEqual(raw) { return candidate.string }
        return nil
    }

    private mutating func escape(into output: inout [UInt8]) throws(Failure) {
        guard index < bytes.count else { throw failure("an escape was not finished") }
        let byte = bytes[index]
        index += 1
        switch byte {
        case UInt8(ascii: "\""): output.append(0x22)
        case UInt8(ascii: "\\"): output.append(0x5C)
        case UInt8(ascii: "/"): output.append(0x2F)
        case UInt8(ascii: "b"): output.append(0x08)
        case UInt8(ascii: "f"): output.append(0x0C)
        case UInt8(ascii: "n"): output.append(0x0A)
        case UInt8(ascii: "r"): output.append(0x0D)
        case UInt8(ascii: "t"): output.append(0x09)
        case UInt8(ascii: "u"):
            var code = try hex4()
            if (0xD800...0xDBFF).contains(code) {
                // A high surrogate must be followed by an escaped low one.
                guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                    throw failure("a lone UTF-16 surrogate in \\u escapes")
                }
                index += 2
                let low = try hex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw failure("a lone UTF-16 surrogate in \\u escapes") }
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(code) {
                throw failure("a lone UTF-16 surrogate in \\u escapes")
            }
            output.append(contentsOf: String(Character(Unicode.Scalar(code)!)).utf8)
        default:
            index -= 1
            throw failure("an unknown escape")
        }
    }

    private mutating func hex4() throws(Failure) -> UInt32 {
        guard index + 4 <= bytes.count else { throw failure("\\u needs four hex digits") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw failure("\\u needs four hex digits")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    /// One UTF-8 sequence of two to four bytes, checked as the standard says (no overlong forms,
    /// no surrogates, nothing past U+10FFFF).
    private mutating func multibyte(into output: inout [UInt8]) throws(Failure) {
        let lead = bytes[index]
        let count: Int
        var range: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: count = 2
        case 0xE0: count = 3; range = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: count = 3
        case 0xED: count = 3; range = 0x80...0x9F
        case 0xF0: count = 4; range = 0x90...0xBF
        case 0xF1...0xF3: count = 4
        case 0xF4: count = 4; range = 0x80...0x8F
        default: throw failure("the text is not valid UTF-8")
        }
        guard index + count <= bytes.count, range.contains(bytes[index + 1]),
            (2..<count).allSatisfy({ (0x80...0xBF).contains(bytes[index + $0]) })
        else { throw failure("the text is not valid UTF-8") }
        output.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<index + count]))
        index += count
    }
}
