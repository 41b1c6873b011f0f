import Foundation
import NetdProtocol
import NetdRelay
import NetdTestSupport
import Testing

#if canImport(Glibc)
import Glibc
import NetdLocks
#endif

/// `netd --replace` (contract section 13) with real netd processes and real peers: a new netd
/// takes over every connection while bytes move, or fails and leaves the old one serving.
@Suite struct ReplaceTests {
    /// Sends `bytes` in chunks with a pause between them, so that the sending spans a replace,
    /// then ends the write side.
    /// Sends `bytes` a chunk at a time with a pause between chunks, then ends. Half-way, it waits
    /// (at most a minute) until `halfWayUntil` says so: a flow then has bytes on both sides of it,
    /// however slow the machine (a build with ThreadSanitizer replaces netd in seconds, not ms).
    private static func pacedSend(
        _ fd: CInt, _ bytes: [UInt8], chunk: Int = 32 << 10, pause: Duration = .milliseconds(12),
        halfWayUntil: @escaping @Sendable () -> Bool = { true }
    ) async throws {
        let (seconds, attoseconds) = pause.components
        let micros = UInt32(seconds * 1_000_000 + attoseconds / 1_000_000_000_000)
        try await blocking {
            var offset = 0
            var waited = false
            while offset < bytes.count {
                if !waited, offset >= bytes.count / 2 {
                    waited = true
                    for _ in 0..<6000 where !halfWayUntil() { usleep(10_000) }
                }
                let end = min(offset + chunk, bytes.count)
                try Sockets.send(fd, Array(bytes[offset..<end]))
                offset = end
                usleep(micros)
            }
            shutdown(fd, CInt(SHUT_WR))
        }
    }

    private static func readAll(_ fd: CInt) async throws -> [UInt8] {
        try await blocking { try Sockets.readAll(fd) }
    }

    /// The SHA-256 of `bytes`, by sha256sum, as a person checking a transfer would.
    private static func sha256(_ bytes: [UInt8], in folder: TemporaryFolder) async throws -> String {
        let path = folder.path + "/sha-\(UUID().uuidString.prefix(8))"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let output = try await run("/usr/bin/sha256sum", [path], folder: folder.path)
        return String(output.stdout.prefix(64))
    }

    /// A socket netd connected to `listener`, and the test's end of it.
    private static func connected(_ rpc: BlockingRPC, to listener: Sockets.Listener, extra: String = "") async throws -> (id: Int64, peer: CInt) {
        async let accepted = listener.accept()
        let answer = try await rpc.call("socket.connect", #"{"host":"127.0.0.1","port":\#(listener.port)\#(extra)}"#)
        let id = try #require(answer.resultID, "\(answer)")
        return (id, try await accepted)
    }

    @Test func aNewNetdTakesOverEveryConnectionWhileBytesMove() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let socket = folder.path + "/netd.sock"
        let database = folder.path + "/h.sqlite3"
        let old = try await startNetdProcess(socket: socket, database: database, folder: folder.path)
        let listener = try Sockets.listenTCP()
        defer { listener.close() }
        let target = try Sockets.listenUnix(folder.path + "/target.sock")
        defer { target.close() }
        let control = try BlockingRPC(socket)

        // An attached stream, both ways.
        let (attachedID, attachedPeer) = try await Self.connected(control, to: listener, extra: #","allowHalfOpen":true,"label":"attached""#)
        let stream = try BlockingRPC(socket)
        #expect(try await stream.call("socket.attach", #"{"id":\#(attachedID)}"#)["result"]?["socket"]?["attached"] == .bool(true))
        // A forward from TCP to a Unix socket, both ways.
        let forward = try await control.listenTCP(#","label":"front","forward":{"path":"\#(folder.path)/target.sock"}"#)
        async let forwarded = target.accept()
        let client = try await blocking { try Sockets.connectTCP(forward.port) }
        let far = try await forwarded
        // A pipe between two sockets, both ways.
        let (pipeA, pipeAPeer) = try await Self.connected(control, to: listener, extra: #","allowHalfOpen":true"#)
        let (pipeB, pipeBPeer) = try await Self.connected(control, to: listener, extra: #","allowHalfOpen":true"#)
        #expect(try await control.call("socket.pipe", #"{"id":\#(pipeA),"to":\#(pipeB)}"#)["result"] != nil)
        // A plain socket holding unread bytes, and a server holding a connection nobody accepted yet.
        let (plain, plainPeer) = try await Self.connected(control, to: listener, extra: #","label":"plain""#)
        try await blocking { try Sockets.send(plainPeer, Array("unread before".utf8)) }
        // A socket whose peer said its last words and left: closed, its bytes still unread.
        let (ended, endedPeer) = try await Self.connected(control, to: listener)
        try await blocking { try Sockets.send(endedPeer, Array("last words".utf8)) }
        close(endedPeer)
        let waitingServer = try await control.listenTCP(#","label":"queue""#)
        let queued = try await blocking { try Sockets.connectTCP(waitingServer.port) }
        try await blocking { try Sockets.send(queued, Array("queued before".utf8)) }
        let settled = await eventually {
            let buffered = await control.peek("socket.get", #"{"id":\#(plain)}"#)["result"]?["buffered"]
            let pending = await control.peek("server.get", #"{"id":\#(waitingServer.id)}"#)["result"]?["pending"]
            let gone = await control.peek("socket.get", #"{"id":\#(ended)}"#)["result"]
            return buffered == .integer(13) && pending == .integer(1) && gone?["state"] == .string("closed") && gone?["buffered"] == .integer(10)
        }
        #expect(settled)
        control.close()

        let flows: [(from: CInt, to: CInt, bytes: [UInt8])] = [
            (stream.descriptor, attachedPeer, Sockets.pattern(3 << 20, seed: 1)),
            (attachedPeer, stream.descriptor, Sockets.pattern(2 << 20 + 7, seed: 2)),
            (client, far, Sockets.pattern(3 << 20 + 1, seed: 3)),
            (far, client, Sockets.pattern(2 << 20 + 5, seed: 4)),
            (pipeAPeer, pipeBPeer, Sockets.pattern(3 << 20 + 3, seed: 5)),
            (pipeBPeer, pipeAPeer, Sockets.pattern(1 << 20, seed: 6)),
        ]
        // Every flow sends for about three seconds; netd is replaced in the middle of it. No flow
        // sends its second half before the old netd has gone.
        let seen = Seen()
        let received = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            for (index, flow) in flows.enumerated() {
                group.addTask {
                    try await Self.pacedSend(flow.from, flow.bytes, pause: .milliseconds(40)) {
                        seen.state.withLock { $0.replaced != nil }
                    }
                    seen.state.withLock { $0.lastSent.append(.now) }
                    return (-1, [])
                }
                group.addTask { (index, try await Self.readAll(flow.to)) }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(400))
                let new = try ChildProcess(try Binaries.path("netd"), ["--socket", socket, "--db", database, "--replace"], folder: folder.path)
                let ended = try await old.wait(limit: .seconds(30))
                #expect(ended.status == 0, "the replaced netd exits cleanly: \(ended.stderr)")
                #expect(ended.stderr.contains("replaced; stopping"), "\(ended.stderr)")
                #expect(new.isRunning)
                seen.state.withLock { $0.replaced = .now; $0.netd = new }
                return (-1, [])
            }
            var received: [Int: [UInt8]] = [:]
            for try await (index, bytes) in group where index >= 0 { received[index] = bytes }
            return received
        }
        let (replaced, lastSent, started) = seen.state.withLock { ($0.replaced, $0.lastSent, $0.netd) }
        let new = try #require(started)
        #expect(replaced != nil && lastSent.count == flows.count)
        for (index, flow) in flows.enumerated() {
            let got = received[index] ?? []
            #expect(Sockets.same(got, flow.bytes), "flow \(index): \(got.count) of \(flow.bytes.count) bytes, in order")
            #expect(try await Self.sha256(got, in: folder) == Self.sha256(flow.bytes, in: folder), "flow \(index)")
        }

        // The same ids, owners and labels, with exact counts, in the new netd.
        let after = try BlockingRPC(socket)
        defer { after.close() }
        let attached = try await after.call("socket.get", #"{"id":\#(attachedID)}"#)["result"]
        #expect(attached?["label"] == .string("attached"))
        #expect(attached?["bytesWritten"] == .integer(3 << 20) && attached?["bytesRead"] == .integer(2 << 20 + 7), "\(String(describing: attached))")
        let front = try await after.call("server.get", #"{"id":\#(forward.id)}"#)["result"]
        #expect(front?["state"] == .string("listening") && front?["accepted"] == .integer(1), "\(String(describing: front))")
        // Unread bytes came over, and the socket still works both ways.
        let read = try await after.call("socket.read", #"{"id":\#(plain)}"#)["result"]
        #expect(read?["data"] == .string("unread before"), "\(String(describing: read))")
        #expect(try await after.call("socket.write", #"{"id":\#(plain),"data":"after"}"#)["result"]?["bytes"] == .integer(5))
        #expect(try await blocking { try Sockets.read(plainPeer, count: 5) } == Array("after".utf8))
        // So did the closed socket's, and then its end.
        let last = try await after.call("socket.read", #"{"id":\#(ended)}"#)["result"]
        #expect(last?["data"] == .string("last words") && last?["eof"] == .bool(true), "\(String(describing: last))")
        // The connection that waited for server.accept is accepted from the new netd, bytes and all.
        let accepted = try await after.call("server.accept", #"{"id":\#(waitingServer.id)}"#)
        let acceptedID = try #require(accepted.resultID, "\(accepted)")
        #expect(try await after.call("socket.read", #"{"id":\#(acceptedID)}"#)["result"]?["data"] == .string("queued before"))
        // New records continue the ids.
        let fresh = try await after.call("server.listen", #"{"host":"127.0.0.1","port":0}"#)
        #expect((fresh.resultID ?? 0) > acceptedID)

        for fd in [stream.descriptor, attachedPeer, client, far, pipeAPeer, pipeBPeer, plainPeer, queued] { close(fd) }
        new.signal(SIGTERM)
        #expect(try await new.wait().status == 0)

        // History goes on under the same ids: one record each, closed cleanly with exact counts.
        let records = try await run(
            "/usr/bin/sqlite3",
            [database, "SELECT id, bytes_written, bytes_read, COALESCE(error_code, '') FROM connections WHERE id IN (\(attachedID), \(pipeA), \(pipeB)) ORDER BY id"],
            folder: folder.path)
        #expect(records.stdout == "\(attachedID)|\(3 << 20)|\(2 << 20 + 7)|\n\(pipeA)|\(1 << 20)|\(3 << 20 + 3)|\n\(pipeB)|\(3 << 20 + 3)|\(1 << 20)|\n", "\(records)")
        let lost = try await run("/usr/bin/sqlite3", [database, "SELECT COUNT(*) FROM connections WHERE error_code = 'ELOST'"], folder: folder.path)
        #expect(lost.stdout == "0\n")
    }

    /// What the tasks of the test above saw: when the old netd had gone, the new netd, and when each flow finished sending.
    private final class Seen: Sendable {
        let state = Locked<(replaced: ContinuousClock.Instant?, netd: ChildProcess?, lastSent: [ContinuousClock.Instant])>((nil, nil, []))
    }

    @Test func aNewNetdThatCannotTakeOverLeavesTheRunningOneServing() async throws {
        try await withNetdProcess { socket, old in
            let folder = try TemporaryFolder()
            defer { folder.remove() }
            let listener = try Sockets.listenTCP()
            defer { listener.close() }
            let control = try BlockingRPC(socket)
            defer { control.close() }
            let (first, firstPeer) = try await Self.connected(control, to: listener, extra: #","allowHalfOpen":true"#)
            let (second, secondPeer) = try await Self.connected(control, to: listener, extra: #","label":"second""#)
            defer { close(secondPeer) }
            try await blocking { try Sockets.send(secondPeer, Array("kept".utf8)) }
            let stream = try BlockingRPC(socket)
            #expect(try await stream.call("socket.attach", #"{"id":\#(first)}"#)["result"] != nil)

            // Bytes move through the attached stream while a netd that allows one socket per user tries to take over.
            let up = Sockets.pattern(2 << 20, seed: 21)
            async let delivered = Self.readAll(firstPeer)
            async let sent: Void = Self.pacedSend(stream.descriptor, up, pause: .milliseconds(5))
            // The same database, as an upgrade would use.
            let database = URL(fileURLWithPath: socket).deletingLastPathComponent().path + "/h.sqlite3"
            let refused = try await run(
                try Binaries.path("netd"), ["--socket", socket, "--db", database, "--replace", "--max-sockets-per-user", "1"], folder: folder.path)
            #expect(refused.status != 0)
            let lines = refused.stderr.split(separator: "\n").filter { $0.hasPrefix("netd: ") }
            #expect(lines.count == 1 && lines[0].contains("--max-sockets-per-user") && lines[0].contains("goes on serving"), "\(refused.stderr)")
            try await sent
            #expect(Sockets.same(try await delivered, up), "the stream kept every byte through the failed takeover")
            close(firstPeer)
            stream.close()

            // The running netd serves as before: same sockets, unread bytes, new clients.
            #expect(old.isRunning)
            let again = try BlockingRPC(socket)
            defer { again.close() }
            #expect(try await again.call("socket.read", #"{"id":\#(second)}"#)["result"]?["data"] == .string("kept"))
            #expect(try await again.call("socket.get", #"{"id":\#(second)}"#)["result"]?["label"] == .string("second"))
            #expect(try await again.call("socket.write", #"{"id":\#(second),"data":"still"}"#)["result"]?["bytes"] == .integer(5))
            #expect(try await blocking { try Sockets.read(secondPeer, count: 5) } == Array("still".utf8))
            #expect(try await control.call("netd.ping", "{}")["result"]?["pong"] == .bool(true), "connections paused for the handover read again")
        }
    }

    @Test func replaceWithNothingRunningStartsAsUsual() async throws {
        try await withNetdProcess(["--replace"]) { socket, _ in
            let rpc = try BlockingRPC(socket)
            defer { rpc.close() }
            #expect(try await rpc.call("netd.ping", "{}")["result"]?["pong"] == .bool(true))
            // netd.replace naming a private socket nobody listens on: a clear error, nothing changes.
            let listener = try Sockets.listenTCP()
            defer { listener.close() }
            let (id, peer) = try await Self.connected(rpc, to: listener)
            defer { close(peer) }
            let answer = try await rpc.call("netd.replace", #"{"socket":"netd-replace-nobody"}"#)
            #expect(answer["error"]?["code"] == .integer(-32602), "\(answer)")
            #expect(try await rpc.call("socket.get", #"{"id":\#(id)}"#)["result"]?["state"] == .string("open"))
            let missing = try await rpc.call("netd.replace", "{}")
            #expect(missing["error"]?["code"] == .integer(-32602))
        }
    }

    @Test func aNewNetdThatVanishesMidHandoverLeavesTheRunningOneServing() async throws {
        try await withNetdProcess { socket, netd in
            let listener = try Sockets.listenTCP()
            defer { listener.close() }
            let control = try BlockingRPC(socket)
            defer { control.close() }
            let (id, peer) = try await Self.connected(control, to: listener, extra: #","label":"survivor""#)
            defer { close(peer) }
            try await blocking { try Sockets.send(peer, Array("held".utf8)) }
            #expect(await eventually { await control.peek("socket.get", #"{"id":\#(id)}"#)["result"]?["buffered"] == .integer(4) })

            // The test plays a new netd that takes the handover and dies before confirming.
            let name = "netd-replace-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            let privateSocket = Glibc.socket(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
            defer { close(privateSocket) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.baseAddress!.advanced(by: 1).copyMemory(from: name, byteCount: name.utf8.count) }
            let length = socklen_t(MemoryLayout<sa_family_t>.size + 1 + name.utf8.count)
            let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(privateSocket, $0, length) } }
            #expect(bound == 0 && Glibc.listen(privateSocket, 1) == 0)
            let asker = try BlockingRPC(socket)
            defer { asker.close() }
            async let answer = asker.call("netd.replace", #"{"socket":"\#(name)"}"#)
            let handover = try await blocking { () -> (String, Int) in
                let connection = Glibc.accept(privateSocket, nil, nil)
                guard connection >= 0 else { throw ProcessError.timedOut("netd did not connect to the private socket") }
                defer { close(connection) }
                var document: [UInt8] = []
                var descriptors = 0
                while true {
                    let (bytes, descriptor) = try DescriptorPassing.receive(on: connection)
                    if let descriptor {
                        descriptors += 1
                        close(descriptor)
                    }
                    if bytes.isEmpty { break }
                    document += bytes
                    if let newline = document.firstIndex(of: 0x0A),
                        let expected = try JSONDecoder().decode(JSONValue.self, from: Data(document[..<newline]))["descriptors"]?.integerValue,
                        document.count - newline - 1 == expected, descriptors == expected
                    {
                        break
                    }
                }
                // Gone without a word, as a crashed netd would be.
                return (String(decoding: document.prefix { $0 != 0x0A }, as: UTF8.self), descriptors)
            }
            #expect(handover.0.contains(#""label":"survivor""#) && handover.1 == 2, "the socket and netd's own listener: \(handover)")
            let refused = try await answer
            #expect(refused["error"]?["data"]?["code"] == .string("ERR_REPLACE_FAILED"), "\(refused)")

            // Everything was taken back: the same socket, its unread bytes, both ways.
            #expect(netd.isRunning)
            #expect(try await control.call("socket.read", #"{"id":\#(id)}"#)["result"]?["data"] == .string("held"))
            #expect(try await control.call("socket.write", #"{"id":\#(id),"data":"back"}"#)["result"]?["bytes"] == .integer(4))
            #expect(try await blocking { try Sockets.read(peer, count: 4) } == Array("back".utf8))
            let fresh = try BlockingRPC(socket)
            defer { fresh.close() }
            #expect(try await fresh.call("netd.ping", "{}")["result"]?["pong"] == .bool(true), "new clients are served")
        }
    }

    @Test func faultsGoOverWithTheConnectionsTheyActOn() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let socket = folder.path + "/netd.sock"
        let database = folder.path + "/h.sqlite3"
        let old = try await startNetdProcess(socket: socket, database: database, folder: folder.path)
        let target = try Sockets.listenTCP()
        defer { target.close() }
        let rpc = try BlockingRPC(socket)
        let front = try await rpc.listenTCP(#","forward":{"host":"127.0.0.1","port":\#(target.port)}"#)
        async let accepted = target.accept()
        let client = try await blocking { try Sockets.connectTCP(front.port) }
        let far = try await accepted
        defer { close(client); close(far) }
        let added = try await rpc.call("fault.add", #"{"target":\#(front.id),"type":"latency","ms":100,"direction":"upstream","seed":99}"#)
        let fault = try #require(added["result"]?["fault"], "\(added)")
        rpc.close()

        let new = try ChildProcess(try Binaries.path("netd"), ["--socket", socket, "--db", database, "--replace"], folder: folder.path)
        #expect(try await old.wait().status == 0)
        let after = try BlockingRPC(socket)
        defer { after.close() }
        let listed = try await after.call("fault.list", "{}")["result"]?["faults"]?.arrayValue ?? []
        #expect(listed.count == 1 && listed.first?["id"] == fault["id"] && listed.first?["seed"] == .integer(99) && listed.first?["hit"] == .integer(1), "\(listed)")
        // It still delays the connection it acted on.
        let delay = try await blocking { () -> Double in
            let start = ContinuousClock.now
            try Sockets.send(client, [1])
            _ = try Sockets.read(far, count: 1)
            let elapsed = ContinuousClock.now - start
            return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        }
        #expect(delay >= 100, "\(delay) ms")
        // New faults take new ids.
        let next = try await after.call("fault.add", #"{"target":\#(front.id),"type":"blackhole"}"#)
        #expect((next["result"]?["fault"]?["id"]?.integerValue ?? 0) > (fault["id"]?.integerValue ?? 0), "\(next)")
        new.signal(SIGTERM)
        #expect(try await new.wait().status == 0)
    }

    @Test func onlyAnAdminMayReplaceNetd() async throws {
        try await withNetdProcess(["--socket-mode", "0666", "--allow-uid", "nobody"]) { socket, netd in
            let folder = try TemporaryFolder()
            defer { folder.remove() }
            // Another user, as setpriv makes one, asks netd to hand everything over.
            let script = """
                import socket, sys
                s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
                s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"netd.replace","params":{"socket":"netd-replace-x"}}\\n')
                print(s.makefile().readline(), end="")
                """
            let asNobody = try await run(
                "/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", script, socket], folder: folder.path)
            let answer = try JSONDecoder().decode(JSONValue.self, from: Data(asNobody.stdout.utf8))
            #expect(answer["error"]?["code"] == .integer(-32002), "\(asNobody)")
            #expect(netd.isRunning)
        }
    }

    @Test func systemdFollowsNetdToItsNewProcess() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let socket = folder.path + "/netd.sock"
        let database = folder.path + "/h.sqlite3"
        // systemd's side of sd_notify: a datagram socket named in $NOTIFY_SOCKET.
        let notify = Glibc.socket(AF_UNIX, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        defer { close(notify) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = folder.path + "/notify.sock"
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(notify, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        Sockets.setReceiveTimeout(notify, seconds: 20)
        let received: @Sendable () async throws -> String = {
            try await blocking {
                var buffer = [UInt8](repeating: 0, count: 4096)
                let count = buffer.withUnsafeMutableBytes { recv(notify, $0.baseAddress, $0.count, 0) }
                guard count > 0 else { throw ProcessError.timedOut("a notification from netd") }
                return String(decoding: buffer[0..<count], as: UTF8.self)
            }
        }

        let old = try await startNetdProcess(socket: socket, database: database, folder: folder.path, environment: ["NOTIFY_SOCKET": path])
        #expect(try await received() == "READY=1")
        let new = try ChildProcess(
            try Binaries.path("netd"), ["--socket", socket, "--db", database, "--replace"], folder: folder.path, environment: ["NOTIFY_SOCKET": path])
        // The replaced netd names its successor before it exits; the successor says it is ready.
        let messages = [try await received(), try await received()]
        #expect(messages.contains("MAINPID=\(new.pid)"), "\(messages)")
        #expect(messages.contains("MAINPID=\(new.pid)\nREADY=1"), "\(messages)")
        #expect(try await old.wait().status == 0)
        let rpc = try BlockingRPC(socket)
        #expect(try await rpc.call("netd.ping", "{}")["result"]?["pong"] == .bool(true))
        rpc.close()
        new.signal(SIGTERM)
        #expect(try await new.wait().status == 0)
    }
}
