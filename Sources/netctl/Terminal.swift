#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The little of the terminal netctl needs, without Foundation's FileHandle and format strings, so
/// that it links FoundationEssentials only and starts fast (docs/BENCHMARKS.md, cli-start).
enum Terminal {
    /// Writes bytes to standard output, unbuffered: `netctl watch | grep` sees each line at once.
    static func out<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
        write(bytes, to: STDOUT_FILENO)
    }

    static func err(_ text: String) {
        write(Array(text.utf8), to: STDERR_FILENO)
    }

    private static func write<Bytes: Collection<UInt8>>(_ bytes: Bytes, to fd: Int32) {
        let all = Array(bytes)
        var written = 0
        while written < all.count {
            let count = all.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, all.count - written) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            written += count
        }
    }

    /// Everything on standard input, to its end.
    static func readInput() -> [UInt8] {
        var all: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return all }
            all += chunk[..<count]
        }
    }
}

/// `value` with one decimal: `4.2`.
func oneDecimal(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(abs(tenths % 10))"
}

/// `value` in at least two digits: `05`.
func twoDigits(_ value: Int) -> String {
    value < 10 ? "0\(value)" : String(value)
}
