import Foundation

#if canImport(Glibc)
import Glibc
#endif

public enum SocketKind: Sendable {
    case tcp, unix
}

/// Real sockets for tests, with plain system calls: connected pairs on loopback or Unix
/// sockets, listeners, and blocking helpers for the peers a test plays itself.
public enum Sockets {
    /// `peer` is the test's blocking end; `relayed` the non-blocking end a relay takes.
    public struct Pair: Sendable {
        public let peer: CInt
        public let relayed: CInt
    }

    public struct Failure: Error, CustomStringConvertible {
        public let call: String
        public let code: CInt
        public var description: String { "\(call): \(String(cString: strerror(code)))" }
    }

    public static func pair(_ kind: SocketKind) throws -> Pair {
        switch kind {
        case .unix:
            var fds: [CInt] = [0, 0]
            guard socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else { throw Failure(call: "socketpair", code: errno) }
            setNonBlocking(fds[1])
            return Pair(peer: fds[0], relayed: fds[1])
        case .tcp:
            let listener = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
            defer { close(listener) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            try withSockaddr(&address) { guard bind(listener, $0, length) == 0 else { throw Failure(call: "bind", code: errno) } }
            guard listen(listener, 4) == 0 else { throw Failure(call: "listen", code: errno) }
            try withSockaddr(&address) { guard getsockname(listener, $0, &length) == 0 else { throw Failure(call: "getsockname", code: errno) } }
            let client = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
            try withSockaddr(&address) { guard connect(client, $0, length) == 0 else { throw Failure(call: "connect", code: errno) } }
            let accepted = accept(listener, nil, nil)
            guard accepted >= 0 else { throw Failure(call: "accept", code: errno) }
            setNonBlocking(accepted)
            return Pair(peer: client, relayed: accepted)
        }
    }

    private static func withSockaddr<T>(_ address: inout sockaddr_in, _ body: (UnsafeMutablePointer<sockaddr>) throws -> T) rethrows -> T {
        try withUnsafeMutablePointer(to: &address) { try $0.withMemoryRebound(to: sockaddr.self, capacity: 1, body) }
    }

    public static func setNonBlocking(_ fd: CInt) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    public static func setBlocking(_ fd: CInt) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
    }

    /// Bytes that differ from place to place, so that a reordering or a loss shows. Eight at a time
    /// through raw memory: tests build several MiB of them, and debug builds are slow.
    public static func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < count {
                state ^= state << 13
                state ^= state >> 7
                state ^= state << 17
                var word = state.littleEndian
                let length = min(8, count - offset)
                withUnsafeBytes(of: &word) { raw.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: length) }
                offset += length
            }
        }
        return bytes
    }

    /// Whether two byte arrays are equal, compared with memcmp (debug builds compare arrays
    /// element by element, which takes a while for MiB).
    public static func same(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        guard left.count == right.count else { return false }
        guard !left.isEmpty else { return true }
        return left.withUnsafeBytes { l in right.withUnsafeBytes { r in memcmp(l.baseAddress!, r.baseAddress!, l.count) == 0 } }
    }

    public static func send(_ fd: CInt, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(call: "write", code: errno)
            }
            offset += count
        }
    }

    public static func read(_ fd: CInt, count: Int) throws -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: count)
        while result.count < count {
            let got = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, count - result.count) }
            if got < 0 {
                if errno == EINTR { continue }
                throw Failure(call: "read", code: errno)
            }
            if got == 0 { break }
            result += buffer[0..<got]
        }
        return result
    }

    /// Reads until EOF.
    public static func readAll(_ fd: CInt) throws -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let got = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if got < 0 {
                if errno == EINTR { continue }
                throw Failure(call: "read", code: errno)
            }
            if got == 0 { return result }
            result += buffer[0..<got]
        }
    }

    /// The errno of the first failing read, 0 on a clean EOF; bytes before it are skipped.
    public static func readError(_ fd: CInt) -> CInt {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let got = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if got < 0 {
                if errno == EINTR { continue }
                return errno
            }
            if got == 0 { return 0 }
        }
    }

    /// Closes with RST.
    public static func reset(_ fd: CInt) {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(fd)
    }

    /// Sends `bytes` and then EOF on one thread while another reads everything that comes back.
    public static func sendThenReadAll(_ fd: CInt, _ bytes: [UInt8]) async throws -> [UInt8] {
        try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
            group.addTask {
                try await onThread { try send(fd, bytes); shutdown(fd, CInt(SHUT_WR)) }
                return nil
            }
            group.addTask { try await onThread { try readAll(fd) } }
            var received: [UInt8] = []
            for try await result in group { if let result { received = result } }
            return received
        }
    }

    /// Runs blocking work on a thread of its own, so that the test's tasks never block the pool.
    public static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.start()
        }
    }
}
