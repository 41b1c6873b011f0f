import Foundation
import NetdClient
import NetdProtocol
import NetdTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// netd as a system service: socket activation as systemd does it (systemd-socket-activate passes
/// the bound socket as descriptor 3 with LISTEN_FDS and LISTEN_PID, as netd.socket makes systemd
/// do), and the unit files in packaging/.
@Suite(.timeLimit(.minutes(2)))
struct ServiceTests {
    @Test func socketActivatedNetdServesOnDescriptorThreeAndNeverRemovesIt() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let (activator, socket, _) = try await Self.activated(in: folder)
        let client = try await NetdClient.connect(socketPath: socket)
        let status = try await client.call(StatusMethod.self)
        #expect(status.socket == socket)
        #expect(status.pid == activator.pid, "systemd-socket-activate execs netd in its own place")
        // A connection made through it works as ever.
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        let opened = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1"))
        #expect(opened.state == .open)
        await client.close()

        // Stopped, netd leaves the socket to systemd: the file stays.
        activator.signal(SIGTERM)
        let ended = try await activator.wait()
        #expect(ended.status == 0, "\(ended.stderr)")
        #expect(ended.stderr.contains("rpc.socket_activated=true"), "\(ended.stderr)")
        var info = stat()
        #expect(lstat(socket, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK, "netd removed the socket systemd made")
    }

    @Test func aReplacementOfAnActivatedNetdLeavesTheSocketToSystemdToo() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let (activator, socket, database) = try await Self.activated(in: folder)
        let first = try await NetdClient.connect(socketPath: socket)
        #expect(try await first.call(PingMethod.self).version == NetdVersion.current)
        await first.close()

        // `systemctl reload netd` as packaging/netd.service has it: netd --replace on the same socket.
        let replacement = try ChildProcess(try Binaries.path("netd"), ["--replace", "--socket", socket, "--db", database], folder: folder.path)
        let old = try await activator.wait()
        #expect(old.status == 0, "\(old.stderr)")
        let client = try await NetdClient.connect(socketPath: socket)
        #expect(try await client.call(StatusMethod.self).pid == replacement.pid)
        await client.close()
        replacement.signal(SIGTERM)
        #expect(try await replacement.wait().status == 0)
        #expect(FileManager.default.fileExists(atPath: socket), "the replacing netd removed systemd's socket")
    }

    @Test func aDescriptorThreeThatIsNoUnixListenerIsRefusedInOneLine() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let port = try Sockets.freeListeningPort()
        let activator = try ChildProcess(
            "/usr/bin/systemd-socket-activate", ["-l", "127.0.0.1:\(port)", try Binaries.path("netd"), "--db", folder.path + "/h.sqlite3"],
            folder: folder.path)
        // The first connection starts netd, which finds a TCP socket and stops.
        var probe: CInt?
        for _ in 0..<200 where probe == nil {
            probe = try? Sockets.connectTCP(port)
            if probe == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        let ended = try await activator.wait()
        if let probe { close(probe) }
        #expect(ended.status == 1)
        #expect(ended.stderr.contains("netd: socket activation: descriptor 3 is not a Unix stream socket"), "\(ended.stderr)")
    }

    @Test func theUnitFilesAreWhatSystemdAccepts() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        for unit in ["packaging/netd.socket", "packaging/netd.service", "packaging/user/netd.socket", "packaging/user/netd.service"] {
            let text = try String(contentsOfFile: try repositoryFile(unit), encoding: .utf8)
            if unit.hasSuffix(".socket") {
                #expect(text.contains("ListenStream=") && text.contains("Accept=no"), "\(unit)")
            } else {
                #expect(text.contains("Type=notify") && text.contains("Requires=netd.socket") && text.contains("ExecStart="), "\(unit)")
            }
        }
        // systemd's own parser, where there is one: no unknown key or section in any of them.
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else { return }
        for unit in ["packaging/netd.socket", "packaging/netd.service"] {
            let checked = try await run("/usr/bin/systemd-analyze", ["verify", "--man=no", try repositoryFile(unit)], folder: folder.path)
            // The binary is not installed at /usr/local/bin on a test machine; anything else is a fault.
            let complaints = checked.stderr.split(separator: "\n").filter { !$0.contains("is not executable") }
            #expect(complaints.isEmpty, "\(unit): \(checked.stderr)")
        }
    }

    @Test func metricsAreScrapedWithCurlInPrometheusTextFormat() async throws {
        let port = try Sockets.freeListeningPort()
        let fixture = try await NetdFixture.start(extra: ["--metrics", "127.0.0.1:\(port)"])
        defer { fixture.folder.remove() }
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        let refusing = try Sockets.refusingTCP()
        defer { refusing.close() }

        // Some of everything: a connect that works and carries bytes, one refused, a forward with a fault.
        let connected = try await fixture.netctl("--json", "connect", "127.0.0.1:\(peer.port)")
        let id = try JSONDecoder().decode(SocketInfo.self, from: Data(connected.stdout.utf8)).id
        _ = try await fixture.netctl("send", String(id), String(repeating: "m", count: 1000))
        _ = try await fixture.netctl("recv", String(id), "--wait", "2s", "--max-bytes", "1000")
        #expect(try await fixture.netctl("connect", "127.0.0.1:\(refusing.port)").status == 1)
        let forward = try JSONDecoder().decode(ServerInfo.self, from: Data(try await fixture.netctl("--json", "forward", "127.0.0.1:0", "127.0.0.1:\(peer.port)").stdout.utf8))
        _ = try await fixture.netctl("fault", "add", String(forward.id), "latency", "ms=5")
        _ = try await fixture.netctl("get", "424242")  // an error answer
        // A client connected while scraping.
        let client = try await NetdClient.connect(socketPath: fixture.socket)

        let scraped = try await run("/usr/bin/curl", ["-sS", "-i", "http://127.0.0.1:\(port)/metrics"], folder: fixture.folder.path)
        #expect(scraped.status == 0, "\(scraped.stderr)")
        #expect(scraped.stdout.hasPrefix("HTTP/1.1 200 OK"))
        #expect(scraped.stdout.contains("Content-Type: text/plain; version=0.0.4"))
        let body = scraped.stdout.components(separatedBy: "\r\n\r\n").dropFirst().joined()
        let samples = try Self.parse(body)
        #expect(samples["netd_sockets"] == 1, "\(body)")
        #expect(samples["netd_servers"] == 1)
        #expect((samples["netd_rpc_clients"] ?? 0) >= 1)
        #expect(samples[#"netd_requests_total{method="socket.connect",outcome="ok"}"#] == 1, "\(samples.keys.sorted())")
        #expect(samples[#"netd_requests_total{method="server.listen",outcome="ok"}"#] == 1)
        #expect(samples[#"netd_requests_total{method="socket.connect",outcome="error"}"#] == 1)
        #expect(samples[#"netd_requests_total{method="server.get",outcome="error"}"#] == 1)
        #expect(samples[#"netd_connects_total{outcome="ok"}"#] == 1)
        #expect(samples[#"netd_connects_total{outcome="ECONNREFUSED"}"#] == 1)
        #expect(samples[#"netd_bytes_total{direction="written"}"#] == 1000)
        #expect(samples[#"netd_bytes_total{direction="read"}"#] == 1000)
        #expect(samples[#"netd_faults{type="latency"}"#] == 1)
        #expect((samples["netd_history_write_seconds_count"] ?? 0) >= 1)
        #expect(samples["netd_history_queue"] != nil && samples["netd_history_healthy"] == 1)
        await client.close()

        // Closed, its bytes stay counted: a counter never goes down.
        _ = try await fixture.netctl("close", String(id))
        let again = try Self.parse(try await run("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(port)/metrics"], folder: fixture.folder.path).stdout)
        #expect(again[#"netd_bytes_total{direction="read"}"#] == 1000 && again["netd_sockets"] == 0)
        let elsewhere = try await run("/usr/bin/curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/"], folder: fixture.folder.path)
        #expect(elsewhere.stdout == "404")
        #expect(try await fixture.stop().status == 0)
    }

    @Test func aMetricsAddressThatCannotBeServedStopsNetdInOneLine() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let netd = try Binaries.path("netd")
        let taken = try Sockets.listenTCP()
        defer { taken.close() }
        let busy = try await run(netd, ["--socket", folder.path + "/n.sock", "--db", folder.path + "/h.db", "--metrics", "127.0.0.1:\(taken.port)"], folder: folder.path)
        #expect(busy.status == 1 && busy.stderr.contains("netd: cannot serve metrics on 127.0.0.1:\(taken.port)"), "\(busy.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/n.sock"))
        let wrong = try await run(netd, ["--socket", folder.path + "/n.sock", "--metrics", "9464"], folder: folder.path)
        #expect(wrong.status != 0 && wrong.stderr.contains("--metrics 9464"), "\(wrong.stderr)")
    }

    /// netd as netd.socket starts it: systemd-socket-activate binds the socket and starts netd on the
    /// first connection, with no --socket, so netd must find the socket where systemd put it.
    static func activated(in folder: TemporaryFolder) async throws -> (activator: ChildProcess, socket: String, database: String) {
        let socket = folder.path + "/activated.sock"
        let database = folder.path + "/h.sqlite3"
        let activator = try ChildProcess(
            "/usr/bin/systemd-socket-activate", ["-l", socket, try Binaries.path("netd"), "--db", database], folder: folder.path)
        #expect(await eventually { FileManager.default.fileExists(atPath: socket) })
        return (activator, socket, database)
    }

    /// Prometheus's text format: `# HELP`/`# TYPE` comments, then `name{labels} value` per line.
    static func parse(_ text: String) throws -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.isEmpty {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                Issue.record("not a sample line: \(line)")
                continue
            }
            samples[String(line[..<space])] = value
        }
        return samples
    }
}
