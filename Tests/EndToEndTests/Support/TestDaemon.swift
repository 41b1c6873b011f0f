import Foundation
import Logging
import NetdClient
import NetdCore

/// A folder under /tmp with a short name (socket paths must fit in 107 bytes), removed by `remove()`.
struct TemporaryFolder: Sendable {
    let path: String

    init() throws {
        path = "/tmp/nd-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A netd started in this process for one test.
struct TestDaemon: Sendable {
    let daemon: Daemon
    let folder: TemporaryFolder

    var socketPath: String { daemon.configuration.socketPath }
    var databasePath: String { daemon.configuration.databasePath }

    /// A connected client, closed when `body` returns.
    func withClient<T: Sendable>(_ body: (NetdClient) async throws -> T) async throws -> T {
        let client = try await NetdClient.connect(socketPath: socketPath)
        do {
            let result = try await body(client)
            await client.close()
            return result
        } catch {
            await client.close()
            throw error
        }
    }
}

let quietLogger = Logger(label: "netd-test", factory: { _ in SwiftLogNoOpLogHandler() })

/// Starts a real netd on a short temporary socket path, runs `body`, then shuts netd down
/// gracefully and removes its files, whether `body` succeeded or not.
func withRunningDaemon<T: Sendable>(
    configure: (inout NetdConfiguration) -> Void = { _ in },
    _ body: (TestDaemon) async throws -> T
) async throws -> T {
    let folder = try TemporaryFolder()
    defer { folder.remove() }
    var configuration = NetdConfiguration(socketPath: folder.path + "/netd.sock", databasePath: folder.path + "/history.sqlite3")
    configure(&configuration)
    let daemon = try await Daemon.start(configuration: configuration, handleSignals: false, logger: quietLogger)
    let running = Task { try await daemon.run() }
    let result: Result<T, any Error>
    do {
        result = .success(try await body(TestDaemon(daemon: daemon, folder: folder)))
    } catch {
        result = .failure(error)
    }
    await daemon.shutdown()
    try await running.value
    return try result.get()
}
