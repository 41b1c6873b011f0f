import Foundation
import NetdProtocol
import NetdTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Who may use netd: root and netd's own user always; others only with `--allow-uid` or
/// `--allow-group`, and as admins with `--admin-group`. Clients run as other users and groups with
/// setpriv, as the user nobody (65534) and the group `users` (100).
@Suite struct AccessTests {
    private static let ping = #"{"jsonrpc":"2.0","id":1,"method":"netd.ping"}"#
    private static let list = #"{"jsonrpc":"2.0","id":2,"method":"socket.list"}"#

    /// A netd process on a socket anyone can connect to (mode 0666 in a folder anyone can enter),
    /// with `flags`; root holds one socket in it.
    private static func withOpenNetd(_ flags: [String], _ body: (String, ChildProcess, String) async throws -> Void) async throws {
        try await withNetdProcess(["--socket-mode", "0666"] + flags) { socket, netd in
            let folder = URL(fileURLWithPath: socket).deletingLastPathComponent().path
            chmod(folder, 0o755)
            let listener = try Sockets.listenTCP()
            defer { listener.close() }
            let rpc = try BlockingRPC(socket)
            defer { rpc.close() }
            async let accepted = listener.accept()
            #expect(try await rpc.call("socket.connect", #"{"host":"127.0.0.1","port":\#(listener.port)}"#).resultID != nil)
            close(try await accepted)
            try await body(socket, netd, folder)
        }
    }

    @Test func anyoneElseIsRefusedAtConnectWithOneLine() async throws {
        try await Self.withOpenNetd([]) { socket, netd, folder in
            let lines = try await asNobody(socket: socket, groups: [], [Self.ping, Self.list], folder: folder)
            #expect(lines.count == 1, "one line, then the close: \(lines)")
            #expect(lines.first?["id"] == .null && lines.first?["error"]?["code"] == .integer(-32002), "\(lines)")
            #expect(lines.first?["error"]?["message"]?.stringValue?.contains("uid 65534") == true, "\(lines)")
            // Root is still served.
            let rpc = try BlockingRPC(socket)
            defer { rpc.close() }
            #expect(try await rpc.call("netd.ping", "{}")["result"]?["pong"] == .bool(true))
            netd.signal(SIGTERM)
            let stopped = try await netd.wait()
            #expect(stopped.stderr.contains("refusing an RPC client: not allowed") && stopped.stderr.contains("rpc.client.uid=65534"), "\(stopped.stderr)")
        }
    }

    @Test func anAllowedUserSeesOnlyTheirOwn() async throws {
        try await Self.withOpenNetd(["--allow-uid", "nobody"]) { socket, _, folder in
            let lines = try await asNobody(socket: socket, groups: [], [Self.ping, Self.list], folder: folder)
            #expect(lines.count == 2 && lines[0]["result"]?["pong"] == .bool(true), "\(lines)")
            #expect(lines[1]["result"]?["sockets"]?.arrayValue?.isEmpty == true, "root's socket is not theirs: \(lines)")
        }
    }

    @Test func aGroupAdmitsItsMembersOnly() async throws {
        try await Self.withOpenNetd(["--allow-group", "users"]) { socket, _, folder in
            let member = try await asNobody(socket: socket, groups: [100], [Self.ping], folder: folder)
            #expect(member.first?["result"]?["pong"] == .bool(true), "a member of users: \(member)")
            let outsider = try await asNobody(socket: socket, groups: [], [Self.ping], folder: folder)
            #expect(outsider.first?["error"]?["code"] == .integer(-32002), "not a member: \(outsider)")
        }
    }

    @Test func anAdminGroupSeesEveryone() async throws {
        try await Self.withOpenNetd(["--admin-group", "100"]) { socket, _, folder in
            let admin = try await asNobody(socket: socket, groups: [100], [Self.list], folder: folder)
            #expect(admin.first?["result"]?["sockets"]?.arrayValue?.count == 1, "root's socket is visible to an admin: \(admin)")
            let outsider = try await asNobody(socket: socket, groups: [], [Self.list], folder: folder)
            #expect(outsider.first?["error"]?["code"] == .integer(-32002), "\(outsider)")
        }
    }

    /// A caller's groups are the kernel's word at connect (SO_PEERGROUPS), not /proc/PID read later:
    /// the process that connected may be gone by the time a request comes on its connection (here
    /// its child asks), and its pid could be another process's by then.
    @Test func aCallersGroupsAreTakenAtConnectNotFromItsPid() async throws {
        try await Self.withOpenNetd(["--allow-uid", "nobody"]) { socket, _, folder in
            // A folder only the group `users` (100) may create files in.
            let shared = folder + "/shared"
            #expect(mkdir(shared, 0o770) == 0 && chown(shared, 0, 100) == 0 && chmod(shared, 0o770) == 0)
            let script = """
                import os, socket, sys, time
                r, w = os.pipe()
                connector = os.fork()
                if connector == 0:
                    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
                    parent = os.getpid()
                    if os.fork() == 0:
                        # The process that connected exits; once it is gone, its child asks.
                        for _ in range(500):
                            if not os.path.exists(f"/proc/{parent}"): break
                            time.sleep(0.01)
                        s.sendall(sys.argv[2].encode() + b"\\n")
                        os.write(w, s.makefile("rb").readline())
                    os._exit(0)
                os.close(w)
                os.waitpid(connector, 0)
                answer = b""
                while chunk := os.read(r, 65536): answer += chunk
                print(answer.decode(), end="")
                """
            let listen = #"{"jsonrpc":"2.0","id":1,"method":"server.listen","params":{"path":"\#(shared)/app.sock"}}"#
            let output = try await run(
                "/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--groups=100", "/usr/bin/python3", "-c", script, socket, listen], folder: folder)
            let answer = try? JSONDecoder().decode(JSONValue.self, from: Data(output.stdout.utf8))
            #expect(answer?["result"]?["state"] == .string("listening"), "\(output)")
            // Without the group, the same request is refused, as the kernel would refuse it.
            let outsider = try await asNobody(
                socket: socket, [#"{"jsonrpc":"2.0","id":1,"method":"server.listen","params":{"path":"\#(shared)/other.sock"}}"#], folder: folder)
            #expect(outsider.first?["error"]?["data"]?["code"] == .string("EACCES"), "\(outsider)")
        }
    }

    /// netd replaces a stale socket file when it listens; in a sticky folder such as /tmp a caller
    /// may not have it remove another user's, as the kernel would not let them.
    @Test func anotherUsersStaleSocketInAStickyFolderStays() async throws {
        try await Self.withOpenNetd(["--allow-uid", "nobody"]) { socket, _, folder in
            let sticky = folder + "/sticky"
            #expect(mkdir(sticky, 0o777) == 0 && chmod(sticky, 0o1777) == 0)
            let stale = sticky + "/root.sock"
            // Bound and never unlinked: a stale socket of root's.
            _ = try await run("/usr/bin/python3", ["-c", "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", stale], folder: folder)
            var before = stat()
            #expect(lstat(stale, &before) == 0)
            let refused = try await asNobody(
                socket: socket, [#"{"jsonrpc":"2.0","id":1,"method":"server.listen","params":{"path":"\#(stale)"}}"#], folder: folder)
            #expect(refused.first?["error"]?["data"]?["code"] == .string("EACCES"), "\(refused)")
            var after = stat()
            #expect(lstat(stale, &after) == 0 && after.st_ino == before.st_ino, "root's stale socket is untouched")
            // Their own path in the same folder is theirs to listen on.
            let own = try await asNobody(
                socket: socket, [#"{"jsonrpc":"2.0","id":1,"method":"server.listen","params":{"path":"\#(sticky)/nobody.sock"}}"#], folder: folder)
            #expect(own.first?["result"]?["state"] == .string("listening"), "\(own)")
        }
    }

    @Test func unknownUsersAndGroupsAreUsageErrors() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        for flags in [["--allow-uid", "no-such-user-here"], ["--allow-group", "no-such-group-here"], ["--admin-group", "no-such-group-here"]] {
            let output = try await run(try Binaries.path("netd"), ["--socket", folder.path + "/n.sock", "--db", folder.path + "/h.sqlite3"] + flags, folder: folder.path)
            #expect(output.status == 64 && output.stderr.contains("no-such"), "\(flags): \(output)")
        }
    }
}
