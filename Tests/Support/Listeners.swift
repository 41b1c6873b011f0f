import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Listening sockets a test owns, and connections to netd made with plain system calls, so
/// that a test can play either end with full control (half-close, reset, not reading at all).
extension Sockets {
    /// A blocking listener on 127.0.0.1 with a free port, or on a Unix path.
    public struct Listener: Sendable {
        public let descriptor: CInt
        /// The TCP port, or 0 for a Unix listener.
        public let port: Int

        /// Accepts one connection (blocking, on a thread of its own).
        public func accept() async throws -> CInt {
            let descriptor = self.descriptor
            return try await Sockets.onThread {
                let accepted = Glibc.accept(descriptor, nil, nil)
                guard accepted >= 0 else { throw Failure(call: "accept", code: errno) }
                return accepted
            }
        }

        public func close() {
            _ = Glibc.close(descriptor)
        }
    }

    public static func listenTCP(port: Int = 0) throws -> Listener {
        let listener = try bindTCP(port: port)
        guard listen(listener.descriptor, 512) == 0 else { throw Failure(call: "listen", code: errno) }
        return listener
    }

    /// A port on 127.0.0.1 where every connect is refused for as long as the test holds it: bound
    /// and never listening, so Linux answers a SYN with a reset and no other test can take the port
    /// meanwhile (a port merely closed again can become another test's listener or local port).
    public static func refusingTCP() throws -> Listener {
        try bindTCP(port: 0)
    }

    private static func bindTCP(port: Int) throws -> Listener {
        let listener = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        var address = loopback(port: port)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        var one: CInt = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                guard bind(listener, $0, length) == 0 else { throw Failure(call: "bind", code: errno) }
                guard getsockname(listener, $0, &length) == 0 else { throw Failure(call: "getsockname", code: errno) }
            }
        }
        return Listener(descriptor: listener, port: Int(UInt16(bigEndian: address.sin_port)))
    }

    /// A TCP port on 127.0.0.1 free now, below Linux's ephemeral range (32768 and up by default),
    /// for a test that will have another program listen on it: a port from the ephemeral range can
    /// be taken meanwhile as the local port of any connection a test beside it opens.
    public static func freeListeningPort() throws -> Int {
        for _ in 0..<500 {
            let port = Int.random(in: 20000..<32000)
            if let probe = try? listenTCP(port: port) {
                probe.close()
                return port
            }
        }
        throw Failure(call: "bind", code: EADDRINUSE)
    }

    public static func listenUnix(_ path: String) throws -> Listener {
        let listener = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        try withUnixAddress(path) { address, length in
            guard bind(listener, address, length) == 0 else { throw Failure(call: "bind", code: errno) }
        }
        guard listen(listener, 512) == 0 else { throw Failure(call: "listen", code: errno) }
        return Listener(descriptor: listener, port: 0)
    }

    /// A blocking connection to 127.0.0.1:`port`.
    public static func connectTCP(_ port: Int) throws -> CInt {
        let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        var address = loopback(port: port)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw Failure(call: "connect", code: code)
        }
        return fd
    }

    /// A blocking connection to the Unix socket at `path`.
    public static func connectUnix(_ path: String) throws -> CInt {
        let fd = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        do {
            try withUnixAddress(path) { address, length in
                guard connect(fd, address, length) == 0 else { throw Failure(call: "connect", code: errno) }
            }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Reads one line (without its newline) a byte at a time, so that nothing after it is taken:
    /// what follows an attach's answer line is the socket's stream.
    public static func readLine(_ fd: CInt) throws -> String {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let got = Glibc.read(fd, &byte, 1)
            if got < 0 {
                if errno == EINTR { continue }
                throw Failure(call: "read", code: errno)
            }
            if got == 0 || byte == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
    }

    /// A receive timeout, so that a test that waits for bytes that never come fails instead of hanging.
    public static func setReceiveTimeout(_ fd: CInt, seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return address
    }

    private static func withUnixAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Void) throws {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw Failure(call: "bind", code: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        try withUnsafePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    /// A process's resident memory in bytes (VmRSS), from /proc.
    public static func residentBytes(of pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return nil }
        let kilobytes = line.split(separator: " ").compactMap { Int($0) }.first
        return kilobytes.map { $0 * 1024 }
    }
}
