import Foundation
import NetdProtocol
import NetdTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Faults (contract section 12) added through netd's API to forwards and pipes, each measured on
/// real connections the test holds at both ends, and found again in the history of the
/// connections they hit.
@Suite struct FaultTests {
    /// A forward on 127.0.0.1 to `target`: its id and port.
    private static func forward(_ rpc: BlockingRPC, to target: Sockets.Listener) async throws -> (id: Int64, port: Int) {
        try await rpc.listenTCP(#","forward":{"host":"127.0.0.1","port":\#(target.port)}"#)
    }

    /// A netd, an RPC connection to it, a target the test listens on, and a forward to it; then netd's socket.
    private static func withForward(_ body: (BlockingRPC, Sockets.Listener, (id: Int64, port: Int), String) async throws -> Void) async throws {
        try await withRunningDaemon { netd in
            let target = try Sockets.listenTCP()
            defer { target.close() }
            let rpc = try BlockingRPC(netd.socketPath)
            defer { rpc.close() }
            try await body(rpc, target, try await forward(rpc, to: target), netd.socketPath)
        }
    }

    /// One connection through the forward: the client's end, and the target's end.
    private static func through(_ port: Int, target: Sockets.Listener) async throws -> (client: CInt, far: CInt) {
        async let accepted = target.accept()
        let client = try await blocking { try Sockets.connectTCP(port) }
        let far = try await accepted
        Sockets.setReceiveTimeout(client, seconds: 10)
        Sockets.setReceiveTimeout(far, seconds: 10)
        return (client, far)
    }

    /// The `fault` events in a connection's history.
    private static func faultEvents(_ rpc: BlockingRPC, _ id: Int64) async -> [JSONValue] {
        (await rpc.peek("history.get", #"{"id":\#(id)}"#))["result"]?["events"]?.arrayValue?.filter { $0["type"] == .string("fault") } ?? []
    }

    /// The id of the accepted socket of the n-th connection (oldest first) through `server`.
    private static func accepted(_ rpc: BlockingRPC, server: Int64) async throws -> [Int64] {
        let sockets = try await rpc.call("socket.list", #"{"server":\#(server)}"#)["result"]?["sockets"]?.arrayValue ?? []
        return sockets.filter { $0["role"] == .string("accepted") }.compactMap { $0["id"]?.integerValue }.sorted()
    }

    private static func milliseconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    }

    @Test func latencyOnAForwardDelaysTheWayAskedAndIsOnRecord() async throws {
        try await Self.withForward { rpc, target, front, _ in
            // An open connection is slowed too: the fault acts on connections now and later.
            let (early, earlyFar) = try await Self.through(front.port, target: target)
            defer { close(early); close(earlyFar) }
            let added = try await rpc.call("fault.add", #"{"target":\#(front.id),"type":"latency","ms":300,"direction":"upstream","seed":7}"#)
            let fault = try #require(added["result"]?["fault"], "\(added)")
            #expect(fault["type"] == .string("latency") && fault["ms"] == .integer(300) && fault["jitterMs"] == .integer(0))
            #expect(fault["seed"] == .integer(7) && (fault["probability"] == .double(1) || fault["probability"] == .integer(1)) && fault["met"] == .integer(1) && fault["hit"] == .integer(1), "\(fault)")
            let (late, lateFar) = try await Self.through(front.port, target: target)
            defer { close(late); close(lateFar) }
            for (client, far) in [(early, earlyFar), (late, lateFar)] {
                let delays = try await blocking { () -> [Double] in
                    var delays: [Double] = []
                    for round in 0..<5 {
                        let start = ContinuousClock.now
                        try Sockets.send(client, [UInt8(round)])
                        _ = try Sockets.read(far, count: 1)
                        delays.append(Self.milliseconds(since: start))
                        try Sockets.send(far, [1])
                        _ = try Sockets.read(client, count: 1)
                    }
                    return delays.sorted()
                }
                #expect(delays.count == 5 && delays[0] >= 300, "upstream one-way delays \(delays)")
            }
            let ids = try await Self.accepted(rpc, server: front.id)
            #expect(ids.count == 2)
            for id in ids {
                let events = await Self.faultEvents(rpc, id)
                #expect(events.first?["detail"] == .object([
                    "fault": fault["id"] ?? .null, "type": .string("latency"), "detail": .string("delayed 300 ms"),
                ]), "\(events)")
            }
            let listed = try await rpc.call("fault.list", #"{"target":\#(front.id)}"#)["result"]?["faults"]?.arrayValue ?? []
            #expect(listed.count == 1 && listed.first?["hit"] == .integer(2), "\(listed)")

            // Removed, it stops acting at once.
            #expect(try await rpc.call("fault.remove", #"{"id":\#(fault["id"]?.integerValue ?? 0)}"#)["result"]?["fault"]?["id"] == fault["id"])
            // The fastest of three round trips, so that one stall of a busy machine does not count.
            let fast = try await blocking { () -> Double in
                var fastest = Double.infinity
                for _ in 0..<3 {
                    let start = ContinuousClock.now
                    try Sockets.send(late, [9])
                    _ = try Sockets.read(lateFar, count: 1)
                    fastest = min(fastest, Self.milliseconds(since: start))
                }
                return fastest
            }
            #expect(fast < 300, "no longer delayed 300 ms after fault.remove: \(fast) ms")
            #expect(try await rpc.call("fault.list", "{}")["result"]?["faults"]?.arrayValue?.isEmpty == true)
        }
    }

    @Test func limitPassesExactlyThatManyBytesOnEveryConnection() async throws {
        try await Self.withForward { rpc, target, front, socketPath in
            // Someone watching `fault` events alone sees each one as it acts.
            let watcher = try BlockingRPC(socketPath)
            defer { watcher.close() }
            #expect(try await watcher.call("events.subscribe", #"{"types":["fault"]}"#)["result"]?["subscription"] != nil)
            let added = try await rpc.call("fault.add", #"{"target":\#(front.id),"type":"limit","bytes":1000,"direction":"downstream"}"#)
            let faultID = try #require(added["result"]?["fault"]?["id"]?.integerValue, "\(added)")
            for round in 0..<2 {
                let (client, far) = try await Self.through(front.port, target: target)
                defer { close(client); close(far) }
                let down = Sockets.pattern(50_000, seed: UInt64(round))
                async let sent: Void = blocking { _ = try? Sockets.send(far, down) }
                let got = try await blocking { try Sockets.readAll(client) }
                try await sent
                #expect(got.count == 1000 && Sockets.same(got, Array(down.prefix(1000))), "round \(round): \(got.count) bytes")
            }
            let ids = try await Self.accepted(rpc, server: front.id)
            for id in ids {
                let detail = await eventually { await Self.faultEvents(rpc, id).first?["detail"]?["detail"] == .string("closed after 1000 bytes") }
                #expect(detail, "connection \(id)")
            }
            // One event on each socket of each pair: the accepted one and netd's outgoing one.
            var seen: Set<Int64> = []
            for _ in 0..<(2 * ids.count) {
                let event = try await watcher.answer()
                #expect(event["method"] == .string("event") && event["params"]?["type"] == .string("fault"), "\(event)")
                #expect(event["params"]?["detail"] == .string("closed after 1000 bytes") && event["params"]?["fault"] == .integer(faultID), "\(event)")
                seen.insert(event["params"]?["id"]?.integerValue ?? 0)
            }
            #expect(seen.count == 2 * ids.count && seen.isSuperset(of: ids), "\(seen)")
            #expect(try await rpc.call("fault.remove", #"{"id":\#(faultID)}"#)["result"] != nil)
        }
    }

    @Test func probabilityDrawsFromTheSeedSoARunReplays() async throws {
        try await Self.withForward { rpc, target, front, _ in
            // Which of 16 connections a reset hits, twice with the same seed.
            var runs: [[Bool]] = []
            for _ in 0..<2 {
                let added = try await rpc.call("fault.add", #"{"target":\#(front.id),"type":"reset","afterMs":0,"probability":0.5,"seed":12345}"#)
                let faultID = try #require(added["result"]?["fault"]?["id"]?.integerValue, "\(added)")
                var hits: [Bool] = []
                for _ in 0..<16 {
                    let (client, far) = try await Self.through(front.port, target: target)
                    defer { close(client); close(far) }
                    // A hit connection is reset at once; the others carry a byte.
                    let outcome = try await blocking { () -> Bool in
                        _ = try? Sockets.send(client, [7])
                        var byte: UInt8 = 0
                        return read(far, &byte, 1) != 1
                    }
                    hits.append(outcome)
                }
                let info = try await rpc.call("fault.remove", #"{"id":\#(faultID)}"#)["result"]?["fault"]
                #expect(info?["met"] == .integer(16) && info?["hit"] == .integer(Int64(hits.filter { $0 }.count)), "\(String(describing: info))")
                runs.append(hits)
            }
            #expect(runs[0] == runs[1], "the same seed, the same choices: \(runs)")
            #expect(runs[0].contains(true) && runs[0].contains(false), "0.5 hits some and spares some: \(runs[0])")
        }
    }

    @Test func refuseResetsNewConnectionsBeforeTheTargetSeesThem() async throws {
        try await Self.withForward { rpc, target, front, _ in
            let added = try await rpc.call("fault.add", #"{"target":\#(front.id),"type":"refuse"}"#)
            #expect(added["result"]?["fault"]?["type"] == .string("refuse"), "\(added)")
            let client = try await blocking { try Sockets.connectTCP(front.port) }
            defer { close(client) }
            Sockets.setReceiveTimeout(client, seconds: 10)
            let error = try await blocking { Sockets.readError(client) }
            #expect(error == ECONNRESET, "errno \(error)")
            let ids = try await Self.accepted(rpc, server: front.id)
            #expect(ids.count == 1)
            #expect(await Self.faultEvents(rpc, ids[0]).first?["detail"]?["detail"] == .string("refused"))
            // The target never saw a connection.
            let sockets = try await rpc.call("socket.list", #"{"server":\#(front.id)}"#)["result"]?["sockets"]?.arrayValue ?? []
            #expect(!sockets.contains { $0["role"] == .string("client") }, "\(sockets)")
        }
    }

    @Test func timeoutAndBandwidthOnOneSocketOfAPipe() async throws {
        try await withRunningDaemon { netd in
            let listener = try Sockets.listenTCP()
            defer { listener.close() }
            let rpc = try BlockingRPC(netd.socketPath)
            defer { rpc.close() }
            func connected() async throws -> (Int64, CInt) {
                async let accepted = listener.accept()
                let answer = try await rpc.call("socket.connect", #"{"host":"127.0.0.1","port":\#(listener.port),"allowHalfOpen":true}"#)
                return (try #require(answer.resultID, "\(answer)"), try await accepted)
            }
            let (a, aPeer) = try await connected()
            let (b, bPeer) = try await connected()
            defer { close(aPeer); close(bPeer) }
            Sockets.setReceiveTimeout(bPeer, seconds: 10)
            #expect(try await rpc.call("socket.pipe", #"{"id":\#(a),"to":\#(b)}"#)["result"] != nil)
            // Upstream (a toward b) at 400 KB/s.
            let rate = 400_000
            #expect(try await rpc.call("fault.add", #"{"target":\#(b),"type":"bandwidth","bytesPerSecond":\#(rate),"direction":"upstream"}"#)["result"] != nil)
            let bytes = Sockets.pattern(200_000, seed: 5)
            let start = ContinuousClock.now
            try await blocking { try Sockets.send(aPeer, bytes) }
            let got = try await blocking { try Sockets.read(bPeer, count: bytes.count) }
            let seconds = Self.milliseconds(since: start) / 1000
            #expect(Sockets.same(got, bytes))
            let measured = Double(bytes.count) / seconds
            #expect(measured <= Double(rate) * 1.05, "never faster than asked: \(rate) B/s asked, \(Int(measured)) measured")

            // A timeout holds what comes, then closes the pair.
            let held = ContinuousClock.now
            let added = try await rpc.call("fault.add", #"{"target":\#(a),"type":"timeout","ms":300}"#)
            #expect(added["result"]?["fault"]?["ms"] == .integer(300), "\(added)")
            try await blocking { try Sockets.send(aPeer, Array("held".utf8)) }
            let after = try await blocking { try Sockets.readAll(bPeer) }
            #expect(after.isEmpty && Self.milliseconds(since: held) >= 295, "\(after.count) bytes after \(Self.milliseconds(since: held)) ms")
            // The last event may still be on its way to history when the pair has closed.
            var details: [String] = []
            let recorded = await eventually {
                details = await Self.faultEvents(rpc, a).compactMap { $0["detail"]?["detail"]?.stringValue }
                return details.contains("limited to \(rate) bytes/s") && details.contains("holding data") && details.contains("closed after 300 ms")
            }
            #expect(recorded, "\(details)")
        }
    }

    @Test func slicerAndBlackholeOnAForward() async throws {
        try await Self.withForward { rpc, target, front, _ in
            let sliced = try await rpc.call("fault.add", #"{"target":\#(front.id),"type":"slicer","averageBytes":16,"delayMs":4,"direction":"downstream"}"#)
            let slicerID = try #require(sliced["result"]?["fault"]?["id"]?.integerValue, "\(sliced)")
            let (client, far) = try await Self.through(front.port, target: target)
            defer { close(client); close(far) }
            // 400 bytes in writes of 8 to 24 bytes, 4 ms apart: 16 writes at least, 60 ms at least.
            let answer = Sockets.pattern(400, seed: 3)
            let start = ContinuousClock.now
            try await blocking { try Sockets.send(far, answer) }
            let (got, reads) = try await blocking { () -> ([UInt8], Int) in
                var got: [UInt8] = []
                var reads = 0
                var buffer = [UInt8](repeating: 0, count: 4096)
                while got.count < answer.count {
                    let count = buffer.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
                    guard count > 0 else { break }
                    got += buffer[0..<count]
                    reads += 1
                }
                return (got, reads)
            }
            // How many reads it took depends on when this thread ran (under load, every slice may be in
            // the kernel's buffer by the first read); the 4 ms between slices add up however it ran.
            #expect(Sockets.same(got, answer) && Self.milliseconds(since: start) >= 60, "\(got.count) bytes in \(reads) reads")
            #expect(try await rpc.call("fault.remove", #"{"id":\#(slicerID)}"#)["result"] != nil)

            // A blackhole upstream: what the client sends vanishes, and it never blocks.
            #expect(try await rpc.call("fault.add", #"{"target":\#(front.id),"type":"blackhole","direction":"upstream"}"#)["result"] != nil)
            var limit = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            try await blocking { try Sockets.send(client, Sockets.pattern(8 << 20, seed: 4)) }
            Sockets.setNonBlocking(far)
            var byte: UInt8 = 0
            #expect(read(far, &byte, 1) == -1 && errno == EAGAIN, "nothing reached the target")
            let ids = try await Self.accepted(rpc, server: front.id)
            let details = await Self.faultEvents(rpc, ids[0]).compactMap { $0["detail"]?["detail"]?.stringValue }
            #expect(details.contains("sliced into writes of about 16 bytes, 4 ms apart") && details.contains("passing nothing"), "\(details)")
        }
    }

    @Test func faultsRefuseWhatTheyCannotActOn() async throws {
        try await withRunningDaemon { netd in
            let target = try Sockets.listenTCP()
            defer { target.close() }
            let rpc = try BlockingRPC(netd.socketPath)
            defer { rpc.close() }
            let plain = try await rpc.listenTCP()
            let front = try await Self.forward(rpc, to: target)
            async let accepted = target.accept()
            let socket = try await rpc.call("socket.connect", #"{"host":"127.0.0.1","port":\#(target.port)}"#)
            let far = try await accepted
            defer { close(far) }
            let socketID = try #require(socket.resultID)
            let cases: [(String, Int64, String?)] = [
                (#"{"target":\#(plain.id),"type":"latency","ms":5}"#, -32003, "ERR_FAULT_TARGET"),
                (#"{"target":\#(socketID),"type":"latency","ms":5}"#, -32003, "ERR_FAULT_TARGET"),
                (#"{"target":\#(front.id + 1000),"type":"latency","ms":5}"#, -32001, nil),
                (#"{"target":\#(front.id),"type":"latency"}"#, -32602, nil),
                (#"{"target":\#(front.id),"type":"latency","ms":5,"bytes":3}"#, -32602, nil),
                (#"{"target":\#(front.id),"type":"latency","ms":-1}"#, -32602, nil),
                (#"{"target":\#(front.id),"type":"bandwidth","bytesPerSecond":0}"#, -32602, nil),
                (#"{"target":\#(front.id),"type":"limit","bytes":10,"probability":1.5}"#, -32602, nil),
                (#"{"target":\#(front.id),"type":"refuse","direction":"upstream"}"#, -32602, nil),
                (#"{"target":\#(front.id),"type":"flood"}"#, -32602, nil),
                (#"{"target":"\#(front.id)","type":"blackhole"}"#, -32602, nil),
            ]
            for (params, code, name) in cases {
                let answer = try await rpc.call("fault.add", params)
                #expect(answer["error"]?["code"] == .integer(code), "\(params): \(answer)")
                if let name { #expect(answer.errorName == name, "\(params): \(answer)") }
            }
            #expect(try await rpc.call("fault.remove", #"{"id":999}"#)["error"]?["code"] == .integer(-32001))
            #expect(try await rpc.call("fault.list", "{}")["result"]?["faults"]?.arrayValue?.isEmpty == true, "nothing was added")
        }
    }

    /// The worked examples of docs/FAULTS.md, in Python and in shell, against a real Redis.
    @Test func theWorkedExamplesPassAgainstARealRedis() async throws {
        try await withNetdProcess { socket, _ in
            let folder = try TemporaryFolder()
            defer { folder.remove() }
            let port = try Sockets.freeListeningPort()
            let redis = try ChildProcess("/usr/bin/redis-server", ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], folder: folder.path)
            let ready = try await eventually {
                try await run("/usr/bin/redis-cli", ["-p", "\(port)", "ping"], folder: folder.path).stdout == "PONG\n"
            }
            #expect(ready, "redis-server answers")
            let environment = ["NETD_SOCKET": socket, "NETCTL": try Binaries.path("netctl")]
            let python = try await ChildProcess(
                "/usr/bin/python3", [try repositoryFile("docs/examples/faults_redis.py"), socket, "\(port)"], folder: folder.path).wait()
            #expect(python.status == 0, "\(python.stdout)\(python.stderr)")
            #expect(python.stdout.contains("ok   after the reset the client reconnects"), "\(python.stdout)")
            let shell = try await ChildProcess(
                "/bin/bash", [try repositoryFile("docs/examples/faults_redis.sh"), "\(port)"], folder: folder.path, environment: environment).wait()
            #expect(shell.status == 0, "\(shell.stdout)\(shell.stderr)")
            #expect(shell.stdout.contains("ok   the history says so"), "\(shell.stdout)")
            redis.signal(SIGTERM)
            _ = try await redis.wait()
        }
    }
}
