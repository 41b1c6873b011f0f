import Foundation
import NetdTestSupport
import Synchronization

#if canImport(Glibc)
import Glibc
import NetdLocks
#endif

/// Servers and load for the byte-moving scenarios (stream, relay), on plain blocking sockets with
/// a thread per connection: the lightest peer there is, so that what is measured is the path in
/// between (netd, socat, Node.js, or nothing), not the peers.
final class ThreadServer: Sendable {
    enum Behaviour: Sendable {
        /// Reads and counts everything into ``received``.
        case sink
        /// Writes 256 KiB chunks as fast as the connection takes them, until it fails.
        case source
        /// Sends back what it receives.
        case echo
        /// Accepts and holds the connection, reading nothing.
        case hold
        /// Answers one HTTP/1.0 request for `/N` with N bytes (at most `bytes`), then closes.
        case http(bytes: Int)
    }

    let listener: Sockets.Listener
    let received = Atomic<Int>(0)
    private let held = Locked<[CInt]>([])

    /// Listens on 127.0.0.1 (a free port) or on a Unix `path`, and serves each connection on its own thread.
    init(_ behaviour: Behaviour, unixPath: String? = nil) throws {
        listener = try unixPath.map(Sockets.listenUnix) ?? Sockets.listenTCP()
        let listener = self.listener
        let thread = Thread { [self] in
            while true {
                let fd = accept(listener.descriptor, nil, nil)
                if fd < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    return
                }
                held.withLock { $0.append(fd) }
                if case .hold = behaviour { continue }
                let worker = Thread { [self] in self.serve(fd, behaviour) }
                worker.stackSize = 1 << 18
                worker.start()
            }
        }
        thread.start()
    }

    var port: Int { listener.port }

    private func serve(_ fd: CInt, _ behaviour: Behaviour) {
        var buffer = [UInt8](repeating: 0x61, count: 1 << 18)
        let count = buffer.count
        switch behaviour {
        case .sink:
            while true {
                let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, count) }
                if got <= 0 { if got < 0 && errno == EINTR { continue }; break }
                received.add(got, ordering: .relaxed)
            }
        case .source:
            while true {
                let sent = buffer.withUnsafeBytes { send(fd, $0.baseAddress, count, CInt(MSG_NOSIGNAL)) }
                if sent <= 0 { if sent < 0 && errno == EINTR { continue }; break }
            }
        case .echo:
            while true {
                let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, count) }
                if got <= 0 { if got < 0 && errno == EINTR { continue }; break }
                var offset = 0
                while offset < got {
                    let sent = buffer.withUnsafeBytes { send(fd, $0.baseAddress! + offset, got - offset, CInt(MSG_NOSIGNAL)) }
                    if sent <= 0 { return }
                    offset += sent
                }
            }
        case .hold:
            break
        case .http(let most):
            var request: [UInt8] = []
            while !request.suffix(4).elementsEqual(Array("\r\n\r\n".utf8)) && request.count < 8192 {
                let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if got <= 0 { break }
                request += buffer[0..<got]
            }
            let path = String(decoding: request, as: UTF8.self).split(separator: " ").dropFirst().first ?? "/"
            var left = min(most, Int(path.dropFirst()) ?? most)
            let header = Array("HTTP/1.0 200 OK\r\nContent-Length: \(left)\r\n\r\n".utf8)
            _ = header.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL)) }
            while left > 0 {
                let sent = buffer.withUnsafeBytes { send(fd, $0.baseAddress, min(count, left), CInt(MSG_NOSIGNAL)) }
                if sent <= 0 { if sent < 0 && errno == EINTR { continue }; break }
                left -= sent
            }
        }
        shutdown(fd, CInt(SHUT_RDWR))
    }

    /// Stops listening and closes every connection it accepted.
    func close() {
        shutdown(listener.descriptor, CInt(SHUT_RDWR))
        listener.close()
        for fd in held.withLock({ $0 }) {
            shutdown(fd, CInt(SHUT_RDWR))
            _ = Glibc.close(fd)
        }
    }
}

/// Load on connections the benchmark opened: a thread per connection writing or reading as fast
/// as it can until ``stop()``.
final class Firehoses: Sendable {
    private let stopping = Atomic<Bool>(false)
    private let running = Atomic<Int>(0)
    let counted = Atomic<Int>(0)

    /// Writes 256 KiB chunks to each descriptor.
    static func writing(to descriptors: [CInt]) -> Firehoses {
        let hoses = Firehoses()
        for fd in descriptors { hoses.start { hoses.pump(fd, writing: true) } }
        return hoses
    }

    /// Reads and counts everything that arrives on each descriptor.
    static func reading(from descriptors: [CInt]) -> Firehoses {
        let hoses = Firehoses()
        for fd in descriptors { hoses.start { hoses.pump(fd, writing: false) } }
        return hoses
    }

    private func start(_ body: @escaping @Sendable () -> Void) {
        running.add(1, ordering: .relaxed)
        let thread = Thread { body(); self.running.subtract(1, ordering: .relaxed) }
        thread.stackSize = 1 << 18
        thread.start()
    }

    private func pump(_ fd: CInt, writing: Bool) {
        var buffer = [UInt8](repeating: 0x62, count: 1 << 18)
        let count = buffer.count
        while !stopping.load(ordering: .relaxed) {
            let moved = writing
                ? buffer.withUnsafeBytes { send(fd, $0.baseAddress, count, CInt(MSG_NOSIGNAL)) }
                : buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, count) }
            if moved <= 0 { if moved < 0 && errno == EINTR { continue }; return }
            counted.add(moved, ordering: .relaxed)
        }
    }

    /// Asks every thread to stop and closes the descriptors (which ends blocked calls); returns
    /// once the threads are gone.
    func stop(closing descriptors: [CInt]) async {
        stopping.store(true, ordering: .relaxed)
        for fd in descriptors {
            shutdown(fd, CInt(SHUT_RDWR))
        }
        for _ in 0..<500 where running.load(ordering: .relaxed) > 0 { try? await Task.sleep(for: .milliseconds(10)) }
        for fd in descriptors { _ = Glibc.close(fd) }
    }
}

/// CPU time a process has used, its own and that of its children it has waited for (socat forks
/// one per connection), in seconds, from /proc/PID/stat.
func cpuSeconds(of pid: Int32) -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return 0 }
    // Fields after the command: state is field 3; utime, stime, cutime, cstime are 14 to 17.
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 15 else { return 0 }
    let ticks = fields[11...14].compactMap { Double($0) }.reduce(0, +)
    return ticks / Double(sysconf(CInt(_SC_CLK_TCK)))
}

/// Resident memory of a process and all its descendants (socat's forked children), in bytes.
func residentBytesWithChildren(of pid: Int32) -> Int {
    var total = Sockets.residentBytes(of: pid) ?? 0
    let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
    for child in children.split(separator: " ").compactMap({ Int32($0) }) {
        total += residentBytesWithChildren(of: child)
    }
    return total
}

/// Round trips of `size` bytes on a connection to an echo server; their times in microseconds.
func pingPong(_ fd: CInt, size: Int, rounds: Int) throws -> [Double] {
    var one: CInt = 1
    setsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
    let message = [UInt8](repeating: 0x70, count: size)
    var times: [Double] = []
    times.reserveCapacity(rounds)
    for _ in 0..<rounds {
        let started = ContinuousClock.now
        try Sockets.send(fd, message)
        guard try Sockets.read(fd, count: size).count == size else { throw BenchError("the echo ended early") }
        let elapsed = ContinuousClock.now - started
        times.append(Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12)
    }
    return times
}
