import Foundation
import NIOCore
import NetdProtocol

/// Bytes in and out of JSON strings, in the encodings of the contract.
enum ByteCoding {
    /// The bytes `data` stands for; -32602 when it is not valid in `encoding`.
    static func decode(_ data: String, _ encoding: DataEncoding) throws(NetdError) -> [UInt8] {
        switch encoding {
        case .utf8:
            return Array(data.utf8)
        case .base64:
            guard let bytes = Data(base64Encoded: data) else {
                throw NetdError.invalidParams("`data` is not valid base64")
            }
            return Array(bytes)
        case .hex:
            var bytes: [UInt8] = []
            bytes.reserveCapacity(data.utf8.count / 2)
            var high: UInt8?
            for character in data.utf8 {
                guard let nibble = hexValue(character) else { throw NetdError.invalidParams("`data` is not valid hex") }
                if let h = high {
                    bytes.append(h << 4 | nibble)
                    high = nil
                } else {
                    high = nibble
                }
            }
            guard high == nil else { throw NetdError.invalidParams("`data` has an odd number of hex digits") }
            return bytes
        }
    }

    static func encode(_ bytes: ByteBufferView, _ encoding: DataEncoding) -> String {
        switch encoding {
        case .utf8:
            return String(decoding: bytes, as: UTF8.self)
        case .base64:
            return Data(bytes).base64EncodedString()
        case .hex:
            let digits = Array("0123456789abcdef".utf8)
            return String(unsafeUninitializedCapacity: bytes.count * 2) { out in
                var index = 0
                for byte in bytes {
                    out[index] = digits[Int(byte >> 4)]
                    out[index + 1] = digits[Int(byte & 0x0F)]
                    index += 2
                }
                return index
            }
        }
    }

    /// How many of `bytes` to hand out as UTF-8: whole characters only, so a character split
    /// across reads stays buffered. Nil when the bytes are not UTF-8 at all.
    ///
    /// - Parameter final: no more bytes can come, so an incomplete last character is invalid.
    static func utf8Length(_ bytes: ByteBufferView, final: Bool) -> Int? {
        let count = bytes.count
        // Find where the last character starts (at most 3 bytes back) and whether it is complete.
        var cut = count
        var back = 0
        var index = bytes.endIndex
        while back < min(4, count) {
            index -= 1
            back += 1
            let byte = bytes[index]
            if byte & 0xC0 != 0x80 {
                let needed = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
                if needed > back { cut = count - back }
                break
            }
        }
        if cut < count && final { return nil }
        let prefix = bytes[bytes.startIndex..<(bytes.startIndex + cut)]
        guard String(validating: prefix, as: UTF8.self) != nil else { return nil }
        return cut
    }

    private static func hexValue(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
