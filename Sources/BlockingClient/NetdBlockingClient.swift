#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import NetdProtocol
import NetdRelay

/// A client that makes one call at a time over a plain blocking Unix socket: no event loop and no
/// threads to start, which is most of what a short-lived command such as `netctl ping` costs.
/// It depends on nothing but NetdProtocol and the small descriptor-passing code of NetdRelay, so a
/// command built on it loads fast; use NetdClient for concurrent calls from one process.
///
/// It reads with recvmsg, so it receives the descriptors netd hands off (contract section 11):
/// ``callTakingDescriptor(_:_:)`` returns one with its result.
public final class NetdBlockingClient {
    private let fd: Int32
    private var pending: [UInt8] = []
    private var nextID: Int64 = 1
    /// A descriptor that came with bytes read, not yet claimed by a call.
    private var received: CInt?

    private init(fd: Int32) {
        self.fd = fd
    }

    deinit {
        Glibc.close(fd)
        if let received { Glibc.close(received) }
    }

    /// Connects to netd's socket.
    public static func connect(socketPath: String) throws(NetdClientError) -> NetdBlockingClient {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .unreachable(path: socketPath, reason: String(cString: strerror(errno))) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(socketPath.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            Glibc.close(fd)
            throw .unreachable(path: socketPath, reason: "the path is longer than a Unix socket path can be")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw .unreachable(path: socketPath, reason: reason)
        }
        return NetdBlockingClient(fd: fd)
    }

    /// Calls `method` and returns its result; a netd error is thrown as ``ResponseError``.
    public func call<M: RPCMethod>(_ method: M.Type, _ params: M.Params) throws -> M.Result {
        try NetdClientError.decodeResult(M.Result.self, from: exchange(method: M.name, params: params))
    }

    public func call<M: RPCMethod>(_ method: M.Type) throws -> M.Result where M.Params == NoParams {
        try NetdClientError.decodeResult(M.Result.self, from: exchange(method: M.name, params: Optional<NoParams>.none))
    }

    /// Calls a method that hands a descriptor over (`socket.handoff`, `server.handoff`,
    /// `server.accept` with `handoff: true`): its result, and the descriptor as a plain `CInt`
    /// (close-on-exec; the caller owns it and closes it), nil when none came (`{"socket": null}`).
    public func callTakingDescriptor<M: RPCMethod>(_ method: M.Type, _ params: M.Params) throws -> (result: M.Result, descriptor: CInt?) {
        if let stale = received {
            Glibc.close(stale)
            received = nil
        }
        let result = try call(method, params)
        defer { received = nil }
        return (result, received)
    }

    /// Calls a method after whose answer this connection carries a socket's raw bytes (contract
    /// section 9: `socket.attach`, or `attach: true` on `socket.connect` and `server.accept`).
    /// After a result that switched, make no more calls: take the stream with ``takeStream()``.
    public func callAttaching<M: RPCMethod>(_ method: M.Type, _ params: M.Params) throws -> M.Result where M.Params: StreamSwitchingParams {
        try call(method, params)
    }

    /// The connection's descriptor (still owned by this client, closed with it) and the stream's
    /// bytes that were read together with the answer line: they come first.
    public func takeStream() -> (descriptor: Int32, unread: [UInt8]) {
        defer { pending = [] }
        return (fd, pending)
    }

    /// Calls any method with raw JSON params; the result as JSON.
    public func call(method: String, params: JSONValue?) throws -> JSONValue {
        try NetdClientError.decodeResult(JSONValue.self, from: exchange(method: method, params: params))
    }

    private func exchange<P: Encodable & Sendable>(method: String, params: P?) throws -> Data {
        let id = nextID
        nextID += 1
        var line = Data(try JSONCoding.encode(RequestMessage(id: .number(id), method: method, params: params)))
        line.append(UInt8(ascii: "\n"))
        do {
            try send(line)
        } catch {
            // netd may have refused this connection (an error line with id null, then the close)
            // before the request went out: that line says more than the broken pipe.
            if let refusal = try? receiveLine(), let header = try? JSONDecoder().decode(ServerMessageHeader.self, from: refusal),
                header.method == nil, header.id == nil || header.id == .null
            {
                return refusal
            }
            throw error
        }
        // Answers to other ids (there are none on this connection) and notifications are skipped;
        // an error with id null is about this connection (netd refused it, say), so it answers too.
        while true {
            let answer = try receiveLine()
            if let header = try? JSONDecoder().decode(ServerMessageHeader.self, from: answer),
                header.id == .number(id) || (header.method == nil && (header.id == nil || header.id == .null))
            {
                return answer
            }
        }
    }

    private func send(_ data: Data) throws(NetdClientError) {
        var sent = 0
        while sent < data.count {
            let count = data.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, data.count - sent, Int32(MSG_NOSIGNAL)) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .connectionClosed(reason: String(cString: strerror(errno)))
            }
            sent += count
        }
    }

    /// The next line netd sends within `milliseconds`, or nil if none came by then.
    public func receiveLine(withinMilliseconds milliseconds: Int64) throws(NetdClientError) -> Data? {
        let deadline = ContinuousClock.now + .milliseconds(milliseconds)
        while !pending.contains(UInt8(ascii: "\n")) {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return nil }
            var waiting = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let millisecondsLeft = Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
            let ready = poll(&waiting, 1, millisecondsLeft)
            if ready < 0, errno != EINTR { throw .connectionClosed(reason: String(cString: strerror(errno))) }
            if ready > 0 { break }
        }
        return try receiveLine()
    }

    /// The next line netd sends: after `events.subscribe`, each is an event notification.
    public func receiveLine() throws(NetdClientError) -> Data {
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Data(pending[..<newline])
                pending.removeSubrange(...newline)
                return line
            }
            let bytes: [UInt8]
            do {
                let read = try DescriptorPassing.receive(on: fd, capacity: 65536)
                bytes = read.bytes
                if let descriptor = read.descriptor {
                    if let older = received { Glibc.close(older) }
                    received = descriptor
                }
            } catch {
                throw .connectionClosed(reason: String(cString: strerror(error.code)))
            }
            if bytes.isEmpty { throw .connectionClosed(reason: "netd closed the connection") }
            pending.append(contentsOf: bytes)
        }
    }
}
