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
        let socket = folder.path + "/activated.sock"
        let database = folder.path + "/h.sqlite3"
        // systemd-socket-activate binds the socket and starts netd on the first connection, with no
        // --socket: netd must find the socket where systemd put it.
        let activator = try ChildProcess(
            "/usr/bin/systemd-socket-activate", ["-l", socket, try Binaries.path("netd"), "--db", database], folder: folder.path)
        #expect(await eventually { FileManager.default.fileExists(atPath: socket) })
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
        let socket = folder.path + "/activated.sock"
        let database = folder.path + "/h.sqlite3"
        let activator = try ChildProcess(
            "/usr/bin/systemd-socket-activate", ["-l", socket, try Binaries.path("netd"), "--db", database], folder: folder.path)
        #expect(await eventually { FileManager.default.fileExists(atPath: socket) })
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
}
