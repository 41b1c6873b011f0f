import Foundation
import NetdProtocol
import NetdRelay
import NetdTestSupport
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// JSON-RPC over a plain blocking Unix socket: the way a script talks to netd before it attaches,
/// after which the same descriptor carries the socket's bytes.
///
/// Every blocking call runs on a thread of its own (``blocking(_:)``): a test that blocked the
/// few threads of Swift's cooperative pool would starve the daemon it tests.
struct BlockingRPC: Sendable {
    let descriptor: CInt
    private static let nextID = Atomic<Int>(1000)

    /// Connects to netd; the receive timeout keeps a broken test from hanging.
    init(_ socketPath: String) throws {
        descriptor = try Sockets.connectUnix(socketPath)
        Sockets.setReceiveTimeout(descriptor, seconds: 20)
    }

    /// Sends one request (with `extra` bytes right after its newline, in the same write) and
    /// returns the answer line as JSON.
    @discardableResult
    func call(_ method: String, _ params: String, extra: [UInt8] = []) async throws -> JSONValue {
        let id = Self.nextID.add(1, ordering: .relaxed).newValue
        let line = #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"# + "\n"
        let descriptor = self.descriptor
        try await blocking { try Sockets.send(descriptor, Array(line.utf8) + extra) }
        return try await answer()
    }

    /// Sends one request and reads its answer with recvmsg, as a client that takes descriptors
    /// must: the answer, and the descriptor that came with its first byte, if any (the caller owns it).
    func callTakingDescriptor(_ method: String, _ params: String) async throws -> (answer: JSONValue, descriptor: CInt?) {
        let id = Self.nextID.add(1, ordering: .relaxed).newValue
        let line = #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"# + "\n"
        let descriptor = self.descriptor
        return try await blocking {
            try Sockets.send(descriptor, Array(line.utf8))
            var bytes: [UInt8] = []
            var passed: CInt?
            while bytes.last != UInt8(ascii: "\n") {
                let (chunk, received) = try DescriptorPassing.receive(on: descriptor, capacity: 1 << 16)
                guard !chunk.isEmpty else { break }
                bytes += chunk
                if let received { passed = received }
            }
            return (try JSONDecoder().decode(JSONValue.self, from: Data(bytes)), passed)
        }
    }

    /// `server.listen` on 127.0.0.1 with a free port (more params in `extra`, e.g. `,"label":"web"`):
    /// the server's id and its port.
    func listenTCP(_ extra: String = "") async throws -> (id: Int64, port: Int) {
        let answer = try await call("server.listen", #"{"host":"127.0.0.1","port":0\#(extra)}"#)
        guard let id = answer.resultID, let port = answer["result"]?["local"]?["port"]?.integerValue else {
            throw RawConnectionError.answer("server.listen failed: \(answer)")
        }
        return (id, Int(port))
    }

    /// The next line netd sends, as JSON.
    func answer() async throws -> JSONValue {
        let descriptor = self.descriptor
        let line = try await blocking { try Sockets.readLine(descriptor) }
        return try JSONDecoder().decode(JSONValue.self, from: Data(line.utf8))
    }

    /// ``call(_:_:extra:)`` for checks that read state: a failure becomes JSON null, which the expectation then shows.
    func peek(_ method: String, _ params: String) async -> JSONValue {
        (try? await call(method, params)) ?? .null
    }

    func close() {
        _ = Glibc.close(descriptor)
    }
}

extension JSONValue {
    /// `result.id`, or `result.socket.id` for answers that wrap the socket.
    var resultID: Int64? { self["result"]?["id"]?.integerValue ?? self["result"]?["socket"]?["id"]?.integerValue }
    /// `error.data.code`, netd's POSIX-style name.
    var errorName: String? { self["error"]?["data"]?["code"]?.stringValue }
}

/// Runs blocking socket work on a thread of its own, never on Swift's cooperative pool.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await Sockets.onThread(body)
}
