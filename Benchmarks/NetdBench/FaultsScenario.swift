import Foundation
import NetdClient
import NetdProtocol
import NetdTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// faults: how exactly each fault does what was asked, measured with the clients people test with:
/// Python sockets speaking RESP to a real Redis through a forward (latency, p50 of 100 round trips
/// over the same client without the fault), curl downloading through a forward (bandwidth, its own
/// `speed_download`), and Python sockets for the limit, a reset and a refusal.
enum FaultsScenario {
    static func run(smoke: Bool) async throws -> [Measurement] {
        signal(SIGPIPE, SIG_IGN)
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let python = try installed("python3")
        let curl = try installed("curl")
        let (netd, socket) = try await startNetd(in: folder)
        defer { netd.stop() }
        let (redis, redisSocket) = try await startRedis(in: folder)
        defer { redis.stop() }
        let http = try ThreadServer(.http(bytes: smoke ? 1 << 20 : 400 << 20))
        defer { http.close() }
        let client = try await NetdClient.connect(socketPath: socket)
        defer { Task { await client.close() } }

        func forward(_ target: JSONValue) async throws -> (id: Int64, port: Int) {
            let server = try await client.call(
                method: "server.listen", params: .object(["host": .string("127.0.0.1"), "port": .integer(0), "forward": target]))
            guard let id = server["id"]?.integerValue, let port = server["local"]?["port"]?.integerValue else {
                throw BenchError("server.listen failed: \(server)")
            }
            return (id, Int(port))
        }
        func addFault(_ params: [String: JSONValue]) async throws -> Int64 {
            let answer = try await client.call(method: "fault.add", params: .object(params))
            guard let id = answer["fault"]?["id"]?.integerValue else { throw BenchError("fault.add failed: \(answer)") }
            return id
        }
        func removeFault(_ id: Int64) async throws {
            _ = try await client.call(method: "fault.remove", params: .object(["id": .integer(id)]))
        }
        func pythonSays(_ script: String, _ arguments: [String]) async throws -> String {
            let log = folder.path + "/python-\(UUID().uuidString.prefix(8)).log"
            let program = try Program(python, ["-c", script] + arguments, logTo: log)
            await program.waitUntilExit()
            return ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        }

        var figures: [String: Double] = [:]
        // Latency: p50 of 100 PING round trips to Redis, with the fault on the replies, less without.
        let redisFront = try await forward(.object(["path": .string(redisSocket)]))
        let rounds = smoke ? "10" : "100"
        guard let base = Double(try await pythonSays(Self.pings, ["\(redisFront.port)", rounds])) else { throw BenchError("the PING client failed") }
        figures["latencyBaseP50Ms"] = base
        for asked in smoke ? [20] : [5, 20, 100, 200] {
            let fault = try await addFault([
                "target": .integer(redisFront.id), "type": .string("latency"), "ms": .integer(Int64(asked)), "direction": .string("downstream"),
            ])
            let said = try await pythonSays(Self.pings, ["\(redisFront.port)", rounds])
            guard let p50 = Double(said) else { throw BenchError("the PING client failed: \(said)") }
            figures["latency\(asked)msAddedP50Ms"] = p50 - base
            try await removeFault(fault)
        }

        // Bandwidth: curl downloads about 3 s worth through the forward, and says its speed.
        let httpFront = try await forward(.object(["host": .string("127.0.0.1"), "port": .integer(Int64(http.port))]))
        func curlSpeed(_ bytes: Int, _ name: String) async throws -> Double {
            let log = folder.path + "/curl-\(name).log"
            let download = try Program(curl, ["-s", "-o", "/dev/null", "-w", "%{speed_download}", "http://127.0.0.1:\(httpFront.port)/\(bytes)"], logTo: log)
            await download.waitUntilExit()
            let said = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            guard let speed = Double(said) else { throw BenchError("curl failed: \(said)") }
            return speed
        }
        // Without a fault, for scale: the rates asked below are well under what the path carries.
        figures["bandwidthUnlimitedMBps"] = try await curlSpeed(smoke ? 1 << 20 : 400 << 20, "unlimited") / 1e6
        for rate in smoke ? [1_000_000] : [1_000, 100_000, 10_000_000, 100_000_000] {
            let fault = try await addFault([
                "target": .integer(httpFront.id), "type": .string("bandwidth"), "bytesPerSecond": .integer(Int64(rate)), "direction": .string("downstream"),
            ])
            let speed = try await curlSpeed(smoke ? rate / 4 : rate * 3, "\(rate)")
            figures["bandwidth\(rate)MeasuredOverAsked"] = speed / Double(rate)
            try await removeFault(fault)
        }

        // Limit, reset, refuse: what a Python client sees.
        let limit = 123_457
        var fault = try await addFault(["target": .integer(httpFront.id), "type": .string("limit"), "bytes": .integer(Int64(limit)), "direction": .string("downstream")])
        figures["limitAsked"] = Double(limit)
        figures["limitReceived"] = Double(try await pythonSays(Self.received, ["\(httpFront.port)"])) ?? -1
        try await removeFault(fault)
        fault = try await addFault(["target": .integer(httpFront.id), "type": .string("reset"), "afterMs": .integer(100)])
        let reset = try await pythonSays(Self.error, ["\(httpFront.port)"])
        figures["resetSeenAsECONNRESET"] = reset == "ECONNRESET" ? 1 : 0
        try await removeFault(fault)
        fault = try await addFault(["target": .integer(httpFront.id), "type": .string("refuse")])
        let refused = try await pythonSays(Self.error, ["\(httpFront.port)"])
        figures["refuseSeenAsECONNREFUSEDOrECONNRESET"] = ["ECONNREFUSED", "ECONNRESET"].contains(refused) ? 1 : 0
        try await removeFault(fault)
        return [Measurement(
            scenario: "faults", name: "accuracy", figures: figures,
            note: "latency: downstream, p50 of \(rounds) PINGs to Redis minus the same without; bandwidth: curl's speed_download / asked; limit: bytes a Python client read; reset and refuse: the errno it saw (1 = as specified)")]
    }

    /// PINGs Redis `rounds` times on one connection; prints the median round trip in ms.
    static let pings = """
        import socket, sys, time
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times = []
        for _ in range(int(sys.argv[2])):
            start = time.perf_counter()
            s.sendall(b"*1\\r\\n$4\\r\\nPING\\r\\n")
            reply = b""
            while not reply.endswith(b"\\r\\n"):
                reply += s.recv(64)
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        print(times[len(times) // 2])
        """

    /// Sends an HTTP request and counts the bytes that come back until the end.
    static let received = """
        import socket, sys
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
        s.sendall(b"GET /1000000 HTTP/1.0\\r\\n\\r\\n")
        total = 0
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            total += len(chunk)
        print(total)
        """

    /// Connects and reads without sending; prints the errno's name it ends with (or EOF).
    static let error = """
        import errno, socket, sys
        try:
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
            while s.recv(65536):
                pass
            print("EOF")
        except OSError as e:
            print(errno.errorcode.get(e.errno, str(e)))
        """
}
