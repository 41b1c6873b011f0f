import Foundation
import Testing
import NetdClient
import NetdProtocol
import NetdTestSupport
import NetdLocks

/// The built `netd` and `netctl`, next to the test bundle (`swift build --build-tests` builds them).
enum Binaries {
    static func path(_ name: String) throws -> String {
        var candidates: [URL] = []
        if let first = CommandLine.arguments.first {
            candidates.append(URL(fileURLWithPath: first).deletingLastPathComponent())
        }
        candidates.append(packageRoot.appendingPathComponent(".build/debug"))
        for folder in candidates {
            let path = folder.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw ProcessError.missingBinary(name, searched: candidates.map(\.path))
    }

    /// The repository's root, from this file's place in it.
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
}

/// A file of the repository (an example of docs/examples), by its path from the root.
func repositoryFile(_ relative: String) throws -> String {
    let path = Binaries.packageRoot.appendingPathComponent(relative).path
    guard FileManager.default.fileExists(atPath: path) else { throw ProcessError.missingBinary(relative, searched: [path]) }
    return path
}

enum ProcessError: Error, CustomStringConvertible {
    case missingBinary(String, searched: [String])
    case timedOut(String)

    var description: String {
        switch self {
        case .missingBinary(let name, let searched): "\(name) is not built (run `swift build --build-tests`); looked in \(searched)"
        case .timedOut(let what): "timed out: \(what)"
        }
    }
}

struct ProcessOutput: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// A child process whose output goes to files, so that no pipe can fill up and stall it.
final class ChildProcess: Sendable {
    let pid: Int32
    let name: String
    private let outputPath: String
    private let errorPath: String
    private let process: Spawned
    private let killedByWatchdog = Locked(false)

    /// - Parameter environment: variables added to the test's own.
    init(_ executable: String, _ arguments: [String], stdin: String? = nil, folder: String, environment: [String: String] = [:]) throws {
        let tag = UUID().uuidString.prefix(8)
        outputPath = folder + "/out-\(tag)"
        errorPath = folder + "/err-\(tag)"
        process = try Spawned(
            executable, arguments, environment: environment, stdin: Array((stdin ?? "").utf8), stdout: outputPath, stderr: errorPath)
        pid = process.pid
        name = URL(fileURLWithPath: executable).lastPathComponent
    }

    /// A test that failed half-way leaves no process behind.
    deinit {
        process.signal(SIGKILL)
    }

    func signal(_ signal: Int32) {
        process.signal(signal)
    }

    /// Whether the process is still running (not yet reaped).
    var isRunning: Bool { process.exitStatus == nil }

    /// Waits for the process to exit; kills it and throws if it takes longer than `limit`.
    func wait(limit: Duration = .seconds(30)) async throws -> ProcessOutput {
        let watchdog = Task {
            try await Task.sleep(for: limit)
            self.killedByWatchdog.withLock { $0 = true }
            self.process.signal(SIGKILL)
        }
        let status = await process.wait()
        watchdog.cancel()
        if killedByWatchdog.withLock({ $0 }) { throw ProcessError.timedOut("\(name) ran over \(limit)") }
        return ProcessOutput(
            status: status,
            stdout: (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "")
    }
}

/// Runs a command to completion.
func run(_ executable: String, _ arguments: [String], stdin: String? = nil, folder: String) async throws -> ProcessOutput {
    try await ChildProcess(executable, arguments, stdin: stdin, folder: folder).wait()
}

/// Runs a Python client as nobody (with `groups` as its supplementary groups) that sends each
/// request line and prints every line netd sends until it closes.
func asNobody(socket: String, groups: [UInt32] = [], _ requests: [String], folder: String) async throws -> [JSONValue] {
    let script = """
        import socket, sys
        s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
        f = s.makefile("rb")
        for request in sys.argv[2:]:
            try:
                s.sendall(request.encode() + b"\\n")
            except OSError:
                pass  # refused and closed already: what netd said is still there to read
            try:
                line = f.readline()
            except OSError:
                break
            if not line:
                break
            print(line.decode(), end="")
        """
    let groupFlag = groups.isEmpty ? "--clear-groups" : "--groups=" + groups.map(String.init).joined(separator: ",")
    let output = try await run(
        "/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", groupFlag, "/usr/bin/python3", "-c", script, socket] + requests, folder: folder)
    return try output.stdout.split(separator: "\n").map { try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
}

/// Starts the netd binary and waits until it answers a ping (at most about 20 s).
func startNetdProcess(
    socket: String, database: String, folder: String, extra: [String] = [], environment: [String: String] = [:]
) async throws -> ChildProcess {
    let child = try ChildProcess(try Binaries.path("netd"), ["--socket", socket, "--db", database] + extra, folder: folder, environment: environment)
    for _ in 0..<200 {
        if let client = try? await NetdClient.connect(socketPath: socket) {
            let pong = try? await client.call(PingMethod.self)
            await client.close()
            if pong != nil { return child }
        }
        try await Task.sleep(for: .milliseconds(100))
    }
    child.signal(SIGKILL)
    let output = try await child.wait()
    throw ProcessError.timedOut("netd did not start: status \(output.status), \(output.stderr)")
}

/// A netd process on a fresh temporary folder, for tests that drive it as users do: with netctl.
struct NetdFixture {
    let folder: TemporaryFolder
    let socket: String
    let database: String
    let netd: ChildProcess
    private let netctlPath: String

    static func start(extra: [String] = []) async throws -> NetdFixture {
        let folder = try TemporaryFolder()
        do {
            let socket = folder.path + "/netd.sock"
            let database = folder.path + "/h.sqlite3"
            let netd = try await startNetdProcess(socket: socket, database: database, folder: folder.path, extra: extra)
            return NetdFixture(folder: folder, socket: socket, database: database, netd: netd, netctlPath: try Binaries.path("netctl"))
        } catch {
            folder.remove()
            throw error
        }
    }

    /// Runs netctl against this netd.
    func netctl(_ arguments: String...) async throws -> ProcessOutput {
        try await run(netctlPath, ["--socket", socket] + arguments, folder: folder.path)
    }

    /// Runs `netctl --json ARGUMENTS` and decodes what it printed as `type`.
    func netctlJSON<T: Decodable>(_ type: T.Type, _ arguments: String...) async throws -> T {
        let output = try await run(netctlPath, ["--socket", socket, "--json"] + arguments, folder: folder.path)
        return try JSONDecoder().decode(type, from: Data(output.stdout.utf8))
    }

    /// Stops netd with SIGTERM and returns how it ended.
    func stop() async throws -> ProcessOutput {
        netd.signal(SIGTERM)
        return try await netd.wait()
    }
}

/// Runs `body` with a netd process on a fresh temporary folder (its socket path and the process),
/// then stops it with SIGTERM and expects a clean exit; on an error, kills it. The folder goes too.
func withNetdProcess(_ extra: [String] = [], _ body: (_ socket: String, _ netd: ChildProcess) async throws -> Void) async throws {
    let folder = try TemporaryFolder()
    defer { folder.remove() }
    let socket = folder.path + "/netd.sock"
    let netd = try await startNetdProcess(socket: socket, database: folder.path + "/h.sqlite3", folder: folder.path, extra: extra)
    do {
        try await body(socket, netd)
    } catch {
        netd.signal(SIGKILL)
        _ = try? await netd.wait()
        throw error
    }
    netd.signal(SIGTERM)
    #expect(try await netd.wait().status == 0)
}
