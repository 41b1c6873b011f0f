import Foundation
import NetdClient
import NetdProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Options, idle timeouts, timeouts, live counts in history, and ownership across users.
@Suite(.timeLimit(.minutes(1)))
struct MoreSocketTests {
    @Test func configureAndIdleTimeoutEvents() async throws {
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                let socket = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1", noDelay: true, keepAlive: true, keepAliveInitialDelayMs: 5000))
                _ = try await client.call(EventsSubscribeMethod.self, .init(types: ["timeout"], ids: [socket.id]))
                let configured = try await client.call(SocketConfigureMethod.self, .init(id: socket.id, noDelay: false, keepAlive: false, idleTimeoutMs: 100))
                #expect(configured.state == .open)
                var timeouts = 0
                for await line in client.notifications {
                    let event = try JSONDecoder().decode(JSONValue.self, from: line)
                    #expect(event["params"]?["type"] == .string("timeout"))
                    #expect(event["params"]?["id"] == .integer(socket.id))
                    timeouts += 1
                    if timeouts == 2 { break }
                    // Once per idle spell, as Node: only traffic re-arms it.
                    _ = try await client.call(SocketWriteMethod.self, .init(id: socket.id, data: "again"))
                }
                #expect(timeouts == 2)
                #expect(try await client.call(SocketConfigureMethod.self, .init(id: socket.id, idleTimeoutMs: 0)).id == socket.id)
            }
        }
    }

    @Test func aConnectThatGetsNoAnswerTimesOut() async throws {
        // A listener that never accepts, its backlog full: further SYNs go unanswered.
        let (fd, port) = try #require(unacceptingListener())
        defer { close(fd) }
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                // The first connections fill the backlog; a later one must time out.
                let error = await firstConnectError(client, port: port, attempts: 8)
                #expect(error?.code == .timedOut)
                #expect(error?.systemCode == "ETIMEDOUT")
            }
        }
    }

    @Test func historyByteCountsAreCurrentWithinASecond() async throws {
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                let socket = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1"))
                _ = try await client.call(SocketWriteMethod.self, .init(id: socket.id, data: "0123456789"))
                #expect(try await eventually { try await client.call(SocketGetMethod.self, .init(id: socket.id)).bytesRead == 10 })
                let query = "SELECT bytes_read, bytes_written, closed_at IS NULL FROM connections WHERE id = \(socket.id)"
                var row = ""
                for _ in 0..<30 where row != "10|10|1\n" {
                    row = try await run("/usr/bin/sqlite3", [netd.databasePath, query], folder: netd.folder.path).stdout
                    if row != "10|10|1\n" { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(row == "10|10|1\n")
            }
        }
    }

    @Test func anotherUserSeesNothingOfYours() async throws {
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        try await withRunningDaemon(configure: { $0.socketMode = 0o666; $0.access.allowedUIDs = [65534] }) { netd in
            chmod(netd.folder.path, 0o755)
            let mine = try await netd.withClient { client in
                try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1", label: "root's")).id
            }
            let socketPath = netd.socketPath
            let folder = netd.folder.path
            func asNobody(_ arguments: [String]) async throws -> ProcessOutput {
                try await runAsNobody(socket: socketPath, arguments, folder: folder)
            }
            for method in ["socket.get", "socket.read", "socket.close"] {
                let denied = try await asNobody(["call", method, #"{"id":\#(mine)}"#])
                #expect(denied.status == 1, "\(method): \(denied.stdout) \(denied.stderr)")
                #expect(denied.stderr.contains("-32001"), "\(method): \(denied.stderr)")
            }
            let theirList = try await asNobody(["--json", "call", "socket.list"])
            #expect(theirList.stdout == #"{"sockets":[]}"# + "\n", "\(theirList.stderr)")
            // Their own socket is theirs, and an admin (root) sees it too.
            let theirs = try await asNobody(["--json", "connect", "127.0.0.1:\(peer.port)"])
            #expect(theirs.status == 0, "\(theirs.stderr)")
            let their = try JSONDecoder().decode(SocketInfo.self, from: Data(theirs.stdout.utf8))
            #expect(their.owner.uid == 65534)
            try await netd.withClient { admin in
                let seen = try await admin.call(SocketGetMethod.self, .init(id: their.id))
                #expect(seen.owner.uid == 65534)
                let own = try await admin.call(SocketGetMethod.self, .init(id: mine))
                #expect(own.state == .open)
            }
            // A port below 1024 is the kernel's to refuse to an ordinary user.
            let privileged = try await asNobody(["call", "server.listen", #"{"port":1,"host":"127.0.0.1"}"#])
            #expect(privileged.status == 1)
            #expect(privileged.stderr.contains("EACCES"), "\(privileged.stderr)")
            // Nor may netd reach, for them, a socket they could not reach themselves.
            let rootOnly = folder + "/private"
            try FileManager.default.createDirectory(atPath: rootOnly, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            try await netd.withClient { admin in
                _ = try await admin.call(ServerListenMethod.self, .init(path: rootOnly + "/root.sock"))
            }
            let blocked = try await asNobody(["call", "socket.connect", #"{"path":"\#(rootOnly)/root.sock"}"#])
            #expect(blocked.status == 1)
            #expect(blocked.stderr.contains("EACCES"), "\(blocked.stderr)")
            let noCreate = try await asNobody(["call", "server.listen", #"{"path":"\#(rootOnly)/mine.sock"}"#])
            #expect(noCreate.stderr.contains("EACCES"), "\(noCreate.stderr)")
        }
    }
}

/// Runs netctl as the user nobody (uid 65534), who is not an admin.
private func runAsNobody(socket: String, _ arguments: [String], folder: String) async throws -> ProcessOutput {
    let netctl = try Binaries.path("netctl")
    return try await run(
        "/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", netctl, "--socket", socket] + arguments,
        folder: folder)
}

/// Connects up to `attempts` times; the first error netd answers, if any.
private func firstConnectError(_ client: NetdClient, port: Int, attempts: Int) async -> ResponseError? {
    for _ in 0..<attempts {
        do {
            _ = try await client.call(SocketConnectMethod.self, .init(port: port, host: "127.0.0.1", timeoutMs: 300))
        } catch let error as ResponseError {
            return error
        } catch {
            return nil
        }
    }
    return nil
}

/// A loopback TCP listener with a backlog of 0 that never accepts: its file descriptor and port.
private func unacceptingListener() -> (Int32, Int)? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let size = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) }
    }
    guard bound == 0, listen(fd, 0) == 0 else {
        close(fd)
        return nil
    }
    var length = size
    var actual = sockaddr_in()
    _ = withUnsafeMutablePointer(to: &actual) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return (fd, Int(UInt16(bigEndian: actual.sin_port)))
}
