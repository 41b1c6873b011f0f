import Foundation
import NetdClient
import NetdProtocol
import NetdTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// netctl's socket commands, each a separate process, against a real netd process.
@Suite(.timeLimit(.minutes(2)))
struct NetctlSocketTests {
    @Test func aSocketOpenedByOneNetctlIsUsedAndClosedByOthers() async throws {
        let fixture = try await NetdFixture.start()
        defer { fixture.folder.remove() }
        let (folder, socket) = (fixture.folder, fixture.socket)
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }

        let connected = try await fixture.netctl("--json", "connect", "127.0.0.1:\(peer.port)", "--label", "cli")
        #expect(connected.status == 0, "\(connected.stderr)")
        let info = try JSONDecoder().decode(SocketInfo.self, from: Data(connected.stdout.utf8))
        #expect(info.state == .open)
        #expect(info.label == "cli")

        let sent = try await fixture.netctl("send", "-e", String(info.id), #"PING\r\n"#)
        #expect(sent.stdout == "sent 6 bytes to socket \(info.id)\n")
        let received = try await fixture.netctl("recv", String(info.id), "--wait", "2000")
        #expect(received.stdout == "PING\r\n")

        let piped = try await run(try Binaries.path("netctl"), ["--socket", socket, "send", String(info.id)], stdin: "from stdin", folder: folder.path)
        #expect(piped.status == 0)
        let json = try await fixture.netctl("--json", "recv", String(info.id), "--wait", "2000", "--encoding", "hex")
        let read = try JSONDecoder().decode(SocketReadMethod.Result.self, from: Data(json.stdout.utf8))
        #expect(read.data == Data("from stdin".utf8).map { String(format: "%02x", $0) }.joined())

        let listed = try await fixture.netctl("ls")
        #expect(listed.stdout.contains("127.0.0.1:\(peer.port)"))
        #expect(listed.stdout.contains("cli"))
        let shown = try await fixture.netctl("get", String(info.id))
        #expect(shown.stdout.hasPrefix("socket \(info.id) (client, tcp) open"))

        let closed = try await fixture.netctl("close", String(info.id))
        #expect(closed.stdout == "socket \(info.id) closed\n")
        let again = try await fixture.netctl("send", String(info.id), "x")
        #expect(again.status == 1)
        #expect(again.stderr.contains("-32003"))
        let missing = try await fixture.netctl("get", "424242")
        #expect(missing.status == 1)
        let usage = try await fixture.netctl("connect", "no-port-here")
        #expect(usage.status == 2)

        #expect(try await fixture.stop().status == 0)
    }

    @Test func listenAcceptAndWatch() async throws {
        let fixture = try await NetdFixture.start()
        defer { fixture.folder.remove() }
        let (folder, socket) = (fixture.folder, fixture.socket)
        let watch = try ChildProcess(try Binaries.path("netctl"), ["--socket", socket, "--json", "watch", "--type", "connection", "--count", "1"], folder: folder.path)
        // Wait until the watcher has subscribed: it shows up as a second client.
        let client = try await NetdClient.connect(socketPath: socket)
        #expect(try await eventually { try await client.call(StatusMethod.self).clients >= 2 })
        await client.close()

        let listening = try await fixture.netctl("--json", "listen", "127.0.0.1:0")
        let server = try JSONDecoder().decode(ServerInfo.self, from: Data(listening.stdout.utf8))
        let port = try #require(server.local?.port)
        let empty = try await fixture.netctl("accept", String(server.id))
        #expect(empty.stdout == "no connection waiting on server \(server.id)\n")
        _ = try await fixture.netctl("connect", "127.0.0.1:\(port)")
        let accepted = try await fixture.netctl("accept", String(server.id), "--wait", "2000")
        #expect(accepted.stdout.hasPrefix("socket "))
        #expect(accepted.stdout.contains("accepted from 127.0.0.1:"))

        let watched = try await watch.wait(limit: .seconds(20))
        #expect(watched.status == 0)
        let event = try JSONDecoder().decode(JSONValue.self, from: Data(watched.stdout.utf8))
        #expect(event["type"] == .string("connection"))
        #expect(event["id"] == .integer(server.id))

        let closedServer = try await fixture.netctl("close", String(server.id), "--connections")
        #expect(closedServer.stdout == "server \(server.id) closed\n")
        #expect(try await fixture.stop().status == 0)
    }

    /// `netctl wait`, for test scripts: 0 when the state or event comes, 1 when the timeout passes first.
    @Test func waitForAStateOrAnEvent() async throws {
        let fixture = try await NetdFixture.start()
        defer { fixture.folder.remove() }
        let listening = try await fixture.netctl("--json", "listen", "127.0.0.1:0")
        let server = try JSONDecoder().decode(ServerInfo.self, from: Data(listening.stdout.utf8))
        let port = try #require(server.local?.port)
        // Waits for the next connection to the server, while one comes.
        let waiter = try ChildProcess(
            try Binaries.path("netctl"), ["--socket", fixture.socket, "wait", String(server.id), "--event", "connection", "--timeout", "20s"],
            folder: fixture.folder.path)
        // It may not have subscribed yet when the first connection comes: connect until it has seen one.
        var sockets: [SocketInfo] = []
        for _ in 0..<50 where waiter.isRunning {
            let connected = try await fixture.netctl("--json", "connect", "127.0.0.1:\(port)")
            sockets.append(try JSONDecoder().decode(SocketInfo.self, from: Data(connected.stdout.utf8)))
            try await Task.sleep(for: .milliseconds(200))
        }
        let socket = try #require(sockets.first)
        let waited = try await waiter.wait(limit: .seconds(30))
        #expect(waited.status == 0 && waited.stdout == "\(server.id): connection\n", "\(waited)")

        // A state that does not come in time: status 1 and what it waited for.
        let late = try await fixture.netctl("wait", String(socket.id), "--state", "closed", "--timeout", "300ms")
        #expect(late.status == 1 && late.stderr.contains("did not reach state closed within 300ms"), "\(late)")
        // One that holds already answers at once.
        let now = try await fixture.netctl("wait", String(socket.id), "--state", "open")
        #expect(now.status == 0 && now.stdout == "\(socket.id) is open\n", "\(now)")
        _ = try await fixture.netctl("close", String(socket.id))
        let closed = try await fixture.netctl("--json", "wait", String(socket.id), "--state", "closed", "--timeout", "5s")
        #expect(closed.status == 0 && closed.stdout.contains(#""state":"closed""#), "\(closed)")
        // Usage errors are 2; an id that is not yours is netd's -32001, 1.
        #expect(try await fixture.netctl("wait", "1", "--state", "bogus").status == 2)
        #expect(try await fixture.netctl("wait", "1").status == 2)
        #expect(try await fixture.netctl("wait", "99999", "--state", "open", "--timeout", "1s").status == 1)
        #expect(try await fixture.stop().status == 0)
    }

    /// A relative socket path is the caller's: netctl makes it absolute against its own working
    /// directory, and netd refuses one that comes relative (it cannot know the caller's directory).
    @Test func relativeSocketPathsAreTheCallersDirectory() async throws {
        let fixture = try await NetdFixture.start()
        defer { fixture.folder.remove() }
        let work = fixture.folder.path + "/work"
        try FileManager.default.createDirectory(atPath: work + "/sub", withIntermediateDirectories: true)
        let netctl = try Binaries.path("netctl")
        // netd runs elsewhere; netctl runs in `work/sub`.
        func inWork(_ arguments: String) async throws -> ProcessOutput {
            try await run("/bin/sh", ["-c", "cd \(work)/sub && \(netctl) --socket \(fixture.socket) --json \(arguments)"], folder: fixture.folder.path)
        }
        let listening = try await inWork("listen ../api.sock")
        #expect(listening.status == 0, "\(listening.stderr)")
        let server = try JSONDecoder().decode(ServerInfo.self, from: Data(listening.stdout.utf8))
        #expect(server.local?.path == work + "/api.sock")
        var info = stat()
        #expect(lstat(work + "/api.sock", &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK)
        let bare = try await inWork("listen app.sock")
        #expect(bare.status == 0, "\(bare.stderr)")
        #expect(lstat(work + "/sub/app.sock", &info) == 0, "a name ending in .sock is a path too")
        let connected = try await inWork("connect ./../api.sock")
        #expect(connected.status == 0, "\(connected.stderr)")
        #expect(try JSONDecoder().decode(SocketInfo.self, from: Data(connected.stdout.utf8)).remote?.path == work + "/api.sock")

        // Straight to netd, a relative path is refused and nothing is made.
        let client = try BlockingRPC(fixture.socket)
        defer { client.close() }
        for (method, params) in [("server.listen", #"{"path":"rel.sock"}"#), ("socket.connect", #"{"path":"./api.sock"}"#),
                                 ("server.listen", #"{"port":0,"forward":{"path":"api.sock"}}"#)] {
            let refused = try await client.call(method, params)
            #expect(refused["error"]?["code"] == .integer(-32602), "\(method) \(params): \(refused)")
            #expect(refused["error"]?["message"]?.stringValue?.contains("absolute") == true, "\(refused)")
        }
        #expect(!FileManager.default.fileExists(atPath: fixture.folder.path + "/rel.sock"))
        #expect(try await fixture.stop().status == 0)
    }

    /// What the issue promises a person at a shell: talk to a local redis-server and an HTTP
    /// server with netctl alone.
    @Test func netctlAloneTalksToRedisAndToAnHTTPServer() async throws {
        let fixture = try await NetdFixture.start()
        defer { fixture.folder.remove() }
        let folder = fixture.folder
        let redisSocket = folder.path + "/redis.sock"
        let redis = try ChildProcess(
            "/usr/bin/redis-server",
            ["--port", "0", "--unixsocket", redisSocket, "--save", "", "--appendonly", "no", "--dir", folder.path],
            folder: folder.path)
        let web = try await Peer.start(.http)
        defer { Task { await web.close() } }
        #expect(await eventually { FileManager.default.fileExists(atPath: redisSocket) })

        // Redis over its Unix socket: SET, then GET, in RESP typed by hand.
        let connected = try await fixture.netctl("--json", "connect", redisSocket)
        #expect(connected.status == 0, "\(connected.stderr)")
        let id = String(try JSONDecoder().decode(SocketInfo.self, from: Data(connected.stdout.utf8)).id)
        _ = try await fixture.netctl("send", "-e", id, #"SET greeting "hello there"\r\n"#)
        #expect(try await fixture.netctl("recv", id, "--wait", "3000").stdout == "+OK\r\n")
        _ = try await fixture.netctl("send", "-e", id, #"GET greeting\r\n"#)
        #expect(try await fixture.netctl("recv", id, "--wait", "3000").stdout == "$11\r\nhello there\r\n")
        #expect(try await fixture.netctl("close", id).status == 0)

        // HTTP: a request typed with escapes, the response read until the server closes.
        let http = try await fixture.netctl("--json", "connect", "127.0.0.1:\(web.port)")
        let httpID = String(try JSONDecoder().decode(SocketInfo.self, from: Data(http.stdout.utf8)).id)
        _ = try await fixture.netctl("send", "-e", httpID, #"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"#)
        var response = ""
        for _ in 0..<20 {
            let part = try await fixture.netctl("recv", httpID, "--wait", "3000")
            #expect(part.status == 0, "\(part.stderr)")
            response += part.stdout
            if part.stderr.contains("the peer has ended") { break }
        }
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(response.hasSuffix("\r\n\r\nyou asked for GET /hello\n"))

        // Started from the test runner, redis-server did not stop on SIGTERM (most likely a
        // signal mask it inherits); it keeps no state here, so it is killed.
        redis.signal(SIGKILL)
        _ = try await redis.wait()
        #expect(try await fixture.stop().status == 0)
    }

    @Test func historyAndStatsFromTheCommandLine() async throws {
        let fixture = try await NetdFixture.start()
        defer { fixture.folder.remove() }
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        let refusingPort = try Sockets.refusingTCP()
        defer { refusingPort.close() }
        let refusing = refusingPort.port
        let connected = try await fixture.netctl("--json", "connect", "127.0.0.1:\(peer.port)", "--label", "echo")
        let id = try JSONDecoder().decode(SocketInfo.self, from: Data(connected.stdout.utf8)).id
        _ = try await fixture.netctl("send", String(id), "hello")
        _ = try await fixture.netctl("recv", String(id), "--wait", "2000")
        _ = try await fixture.netctl("close", String(id))
        let refused = try await fixture.netctl("connect", "127.0.0.1:\(refusing)")
        #expect(refused.status == 1)

        let listed = try await fixture.netctl("history", "--since", "1h")
        let lines = listed.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("ID  OPENED (UTC)") == true, "\(listed.stdout)")
        #expect(lines.count == 3)
        #expect(lines[1].contains("127.0.0.1:\(refusing)") && lines[1].contains("ECONNREFUSED"))
        #expect(lines[2].contains("127.0.0.1:\(peer.port)") && lines[2].contains(" ok ") && lines[2].hasSuffix("echo"))
        let filtered = try await fixture.netctl("--json", "history", "--state", "closed", "--label", "echo", "--port", String(peer.port))
        let page = try JSONDecoder().decode(HistoryQueryMethod.Result.self, from: Data(filtered.stdout.utf8))
        #expect(page.items.map(\.id) == [id])
        let limited = try await fixture.netctl("history", "--limit", "1")
        #expect(limited.stdout.contains("more: netctl history --before"))

        let one = try await fixture.netctl("history", String(id))
        #expect(one.stdout.hasPrefix("client \(id) (tcp) 127.0.0.1:\(peer.port)"), "\(one.stdout)")
        #expect(one.stdout.contains("bytes  5 B in, 5 B out"))
        #expect(one.stdout.contains("connect"))
        #expect(one.stdout.contains(#"close  {"hadError":false}"#))

        let stats = try await fixture.netctl("stats", "--since", "1h")
        #expect(stats.stdout.contains("ECONNREFUSED 1"), "\(stats.stdout)")
        #expect(stats.stdout.split(separator: "\n").last?.hasPrefix("total  ") == true)
        let byLabel = try await fixture.netctl("--json", "stats", "--by", "label")
        let summary = try JSONDecoder().decode(HistoryStatsMethod.Result.self, from: Data(byLabel.stdout.utf8))
        #expect(summary.groupBy == .label)
        #expect(summary.total.connections == 2 && summary.total.failed == 1)

        let wrong = try await fixture.netctl("history", "--since", "yesterday")
        #expect(wrong.status == 2)
        #expect(wrong.stderr.contains("--since"))
        let missing = try await fixture.netctl("history", "987654")
        #expect(missing.status == 1)

        #expect(try await fixture.stop().status == 0)
    }
}
