import Foundation
import NetdClient
import NetdCore
import NetdProtocol
import Testing

/// netd's own socket and database: paths, modes, refusals, status, shutdown.
@Suite(.timeLimit(.minutes(1)))
struct DaemonTests {
    /// Why netd refused to start with `configuration`, or nil if it started (it is then shut down).
    private func startFailure(_ configuration: NetdConfiguration) async -> String? {
        do {
            let daemon = try await Daemon.start(configuration: configuration, handleSignals: false, logger: quietLogger)
            await daemon.shutdown()
            try? await daemon.run()
            return nil
        } catch {
            return error.description
        }
    }

    private func mode(_ path: String) -> UInt32? {
        var info = stat()
        return lstat(path, &info) == 0 ? UInt32(info.st_mode & 0o777) : nil
    }

    @Test func statusReportsPathsCountsAndTheCallerFromPeerCredentials() async throws {
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                let status = try await client.call(StatusMethod.self)
                #expect(status.version == NetdVersion.current)
                #expect(status.pid == getpid())
                #expect(status.socket == netd.socketPath)
                #expect(status.database == netd.databasePath)
                #expect(status.clients == 1)
                #expect(status.sockets == 0)
                #expect(status.servers == 0)
                #expect(status.uptimeMs >= 0)
                #expect(status.caller.uid == getuid())
                #expect(status.caller.pid == getpid())
                #expect(status.caller.admin)
            }
        }
    }

    @Test func methodsListsEveryRegisteredMethod() async throws {
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                let methods = try await client.call(MethodsMethod.self).methods
                #expect(methods.map(\.name) == MethodRegistry.names)
                #expect(methods.allSatisfy { !$0.summary.isEmpty })
                #expect(methods.map(\.name).contains("netd.ping"))
            }
        }
    }

    @Test func socketIsPrivateAndItsFolderIsCreated0700() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try await withRunningDaemon(configure: { $0.socketPath = folder.path + "/run/netd/netd.sock" }) { netd in
            #expect(mode(netd.socketPath) == 0o600)
            #expect(mode(folder.path + "/run/netd") == 0o700)
            #expect(mode(netd.databasePath) == 0o600)
        }
        // Shutdown removes the socket file it created.
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/run/netd/netd.sock"))
    }

    @Test func socketModeCanBeWidened() async throws {
        try await withRunningDaemon(configure: { $0.socketMode = 0o660 }) { netd in
            #expect(mode(netd.socketPath) == 0o660)
        }
    }

    @Test func aSecondDaemonOnTheSameSocketRefusesWhileTheFirstServes() async throws {
        try await withRunningDaemon { netd in
            var second = NetdConfiguration(socketPath: netd.socketPath, databasePath: netd.folder.path + "/other.sqlite3")
            second.maxClients = 1
            #expect(await startFailure(second)?.contains("already listening") == true)
            try await netd.withClient { client in
                let pong = try await client.call(PingMethod.self).pong
                #expect(pong)
            }
        }
    }

    @Test func aPathThatIsNotASocketIsNeverReplaced() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path + "/netd.sock"
        try Data("precious".utf8).write(to: URL(fileURLWithPath: path))
        let configuration = NetdConfiguration(socketPath: path, databasePath: folder.path + "/h.sqlite3")
        #expect(await startFailure(configuration)?.contains("not a socket") == true)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "precious")
    }

    @Test func aStaleSocketIsReplaced() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path + "/netd.sock"
        // A socket file that nothing listens on, as a killed netd leaves behind.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path.utf8) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        close(fd)
        #expect(FileManager.default.fileExists(atPath: path))

        try await withRunningDaemon(configure: { $0.socketPath = path }) { netd in
            try await netd.withClient { client in
                let pong = try await client.call(PingMethod.self).pong
                #expect(pong)
            }
        }
    }

    @Test func aSocketPathOver107BytesIsRefused() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path + "/" + String(repeating: "s", count: 107 - folder.path.utf8.count)
        #expect(path.utf8.count == 108)
        let configuration = NetdConfiguration(socketPath: path, databasePath: folder.path + "/h.sqlite3")
        #expect(await startFailure(configuration)?.contains("107") == true)
    }

    @Test func aBadDatabaseStopsStartBeforeTheSocketIsTaken() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let database = folder.path + "/h.sqlite3"
        try Data("not a database".utf8).write(to: URL(fileURLWithPath: database))
        let configuration = NetdConfiguration(socketPath: folder.path + "/netd.sock", databasePath: database)
        #expect(await startFailure(configuration)?.contains("not a SQLite database") == true)
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/netd.sock"))
        #expect(try String(contentsOfFile: database, encoding: .utf8) == "not a database")
    }

    @Test func restartKeepsTheDatabase() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let configure: (inout NetdConfiguration) -> Void = {
            $0.socketPath = folder.path + "/netd.sock"
            $0.databasePath = folder.path + "/h.sqlite3"
        }
        try await withRunningDaemon(configure: configure) { _ in }
        let size = try FileManager.default.attributesOfItem(atPath: folder.path + "/h.sqlite3")[.size] as? Int
        #expect((size ?? 0) > 0)
        try await withRunningDaemon(configure: configure) { netd in
            try await netd.withClient { client in
                let pong = try await client.call(PingMethod.self).pong
                #expect(pong)
            }
        }
    }
}
