import Foundation
import NetdRelay

#if canImport(Glibc)
import Glibc
#endif

/// The private socket one netd hands everything to the next on (`netd --replace`): a Unix
/// stream socket in Linux's abstract namespace, so no file is left behind, and each side checks
/// with SO_PEERCRED that the process at the other end is the one it expects.
///
/// What goes over it: the old netd sends the ``Handover`` document as one line, then every
/// descriptor it numbers, in order, each attached (SCM_RIGHTS) to one byte of its own; the new
/// netd answers one line, `ready` once it holds everything, or `error: REASON`.
///
/// - Important: Blocking calls with time limits; run them off the event loops and the
///   cooperative pool (``HandoverChannel/onThread(_:)``).
struct HandoverChannel: Sendable {
    struct Failure: Error, CustomStringConvertible, Sendable {
        var description: String
    }

    let descriptor: CInt

    /// A private listening socket with a fresh name; returns it and the name (without the NUL).
    static func listen() throws(Failure) -> (CInt, String) {
        var random = SystemRandomNumberGenerator()
        let name = "netd-replace-\(getpid())-\(String(random.next() as UInt64, radix: 16))"
        let fd = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var (address, length) = abstractAddress(name)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0, Glibc.listen(fd, 1) == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw Failure(description: "cannot listen on a private socket: \(reason)")
        }
        return (fd, name)
    }

    /// Accepts the one connection expected on `listener`, within `timeout` seconds.
    static func accept(on listener: CInt, timeout: Int) throws(Failure) -> HandoverChannel {
        var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, CInt(timeout * 1000))
        guard ready > 0 else { throw Failure(description: "the running netd did not connect to the private socket within \(timeout) s") }
        let fd = Glibc.accept(listener, nil, nil)
        guard fd >= 0 else { throw Failure(description: "accept: \(String(cString: strerror(errno)))") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return HandoverChannel(descriptor: fd, timeout: timeout)
    }

    /// Connects to the private socket named `name`.
    static func connect(to name: String, timeout: Int) throws(Failure) -> HandoverChannel {
        let fd = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var (address, length) = abstractAddress(name)
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) } }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw Failure(description: "cannot connect to the new netd's private socket: \(reason)")
        }
        return HandoverChannel(descriptor: fd, timeout: timeout)
    }

    private init(descriptor: CInt, timeout: Int) {
        self.descriptor = descriptor
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }

    private static func abstractAddress(_ name: String) -> (sockaddr_un, socklen_t) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(name.utf8.prefix(106))
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw[0] = 0
            raw.baseAddress!.advanced(by: 1).copyMemory(from: bytes, byteCount: bytes.count)
        }
        return (address, socklen_t(MemoryLayout<sa_family_t>.size + 1 + bytes.count))
    }

    /// The process at the other end.
    var peerPID: Int32? { PeerCredentials.read(descriptor: descriptor)?.pid }

    func close() {
        Glibc.close(descriptor)
    }

    // MARK: Sending

    /// Writes all of `bytes`, blocking.
    func write(_ bytes: [UInt8]) throws(Failure) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress! + offset, $0.count - offset, CInt(MSG_NOSIGNAL)) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "send: \(String(cString: strerror(errno)))")
            }
            offset += count
        }
    }

    /// The document as one line, then each descriptor on a byte of its own.
    func send(_ handover: Handover, descriptors: [CInt]) throws(Failure) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let document = try? encoder.encode(handover) else { throw Failure(description: "cannot encode the handover") }
        try write(Array(document) + [0x0A])
        for descriptor in descriptors {
            while true {
                switch DescriptorPassing.send([0x23], with: descriptor, on: self.descriptor) {
                case .bytes: break
                case .wouldBlock:
                    var poller = pollfd(fd: self.descriptor, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&poller, 1, 1000)
                    continue
                case .failed(let code):
                    throw Failure(description: "sendmsg: \(String(cString: strerror(code)))")
                }
                break
            }
        }
    }

    // MARK: Receiving

    /// Reads the document and every descriptor it numbers; descriptors received before a
    /// failure are closed.
    func receive() throws(Failure) -> (Handover, [CInt]) {
        var bytes: [UInt8] = []
        var descriptors: [CInt] = []
        var handover: Handover?
        var markers = 0
        do throws(Failure) {
            while true {
                if let handover, markers == handover.descriptors, descriptors.count == handover.descriptors {
                    return (handover, descriptors)
                }
                let (chunk, descriptor): ([UInt8], CInt?)
                do {
                    (chunk, descriptor) = try DescriptorPassing.receive(on: self.descriptor)
                } catch {
                    throw Failure(description: error.code == EAGAIN ? "the running netd stopped sending" : error.description)
                }
                if let descriptor { descriptors.append(descriptor) }
                guard !chunk.isEmpty else { throw Failure(description: "the running netd closed the private socket before it had sent everything") }
                if handover == nil {
                    bytes += chunk
                    guard let newline = bytes.firstIndex(of: 0x0A) else { continue }
                    do {
                        handover = try JSONDecoder().decode(Handover.self, from: Data(bytes[..<newline]))
                    } catch {
                        throw Failure(description: "cannot read the running netd's handover: \(error)")
                    }
                    markers = bytes.count - newline - 1
                } else {
                    markers += chunk.count
                }
            }
        } catch {
            for descriptor in descriptors { Glibc.close(descriptor) }
            throw error
        }
    }

    /// Reads one line, blocking; nil at end of stream or on time-out.
    func readLine() -> String? { Self.readLine(descriptor) }

    /// Reads one line (up to 1 MiB) from `descriptor`, blocking; nil at end of stream or on time-out.
    static func readLine(_ descriptor: CInt) -> String? {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while line.count < 1 << 20 {
            let count = recv(descriptor, &byte, 1, 0)
            if count < 0 && errno == EINTR { continue }
            guard count == 1 else { return line.isEmpty ? nil : String(decoding: line, as: UTF8.self) }
            if byte == 0x0A { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
        return String(decoding: line, as: UTF8.self)
    }

    /// Runs blocking work on a thread of its own, never on an event loop or the cooperative pool.
    static func onThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: work()) }
            thread.name = "netd-replace"
            thread.start()
        }
    }
}
