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

    @Test func unknownUsersAndGroupsAreUsageErrors() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        for flags in [["--allow-uid", "no-such-user-here"], ["--allow-group", "no-such-group-here"], ["--admin-group", "no-such-group-here"]] {
            let output = try await run(try Binaries.path("netd"), ["--socket", folder.path + "/n.sock", "--db", folder.path + "/h.sqlite3"] + flags, folder: folder.path)
            #expect(output.status == 64 && output.stderr.contains("no-such"), "\(flags): \(output)")
        }
    }
}
