import CNetdTestSupport
import Foundation

#if canImport(Glibc)
import Glibc
import NetdLocks
#endif

/// A child process started with posix_spawn (``netd_test_spawn``): its output goes to files, its
/// input is the given bytes (then end of file), and one thread waits for its exit.
///
/// Foundation's `Process` is not used: its `run()` on Linux sometimes crashes while it lists
/// /proc/self/fd (swift-corelibs-foundation pull request 5472), and its children inherit the
/// signal mask of the thread that started them (a socat started so ignores SIGTERM).
public final class Spawned: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let pid: Int32
    private let status = Locked<(exit: Int32?, waiters: [CheckedContinuation<Int32, Never>])>((nil, []))

    /// Starts `executable` with `arguments`; `environment` is added to this process's own;
    /// `stdout` and `stderr` may be the same file.
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:],
        stdin: [UInt8] = [], stdout: String, stderr: String
    ) throws {
        let merged = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = open(stdout, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        // The same path for both: one file, in the order they were written.
        let errors = stderr == stdout ? fcntl(output, F_DUPFD_CLOEXEC, 0) : open(stderr, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        var input: [CInt] = [-1, -1]
        defer {
            for fd in [output, errors, input[0], input[1]] where fd >= 0 { close(fd) }
        }
        guard output >= 0, errors >= 0, pipe(&input) == 0 else { throw Failure(description: "cannot prepare \(executable)'s files: \(String(cString: strerror(errno)))") }
        _ = fcntl(input[1], F_SETFD, FD_CLOEXEC)

        var argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = netd_test_spawn(executable, &argv, &envp, input[0], output, errors, &pid)
        guard result == 0 else { throw Failure(description: "cannot start \(executable): \(String(cString: strerror(result)))") }
        self.pid = pid
        close(input[0])
        input[0] = -1
        var offset = 0
        while offset < stdin.count {
            let written = stdin.withUnsafeBytes { write(input[1], $0.baseAddress! + offset, $0.count - offset) }
            if written <= 0 { break }
            offset += written
        }
        let thread = Thread { [self] in
            var raw: CInt = 0
            while waitpid(self.pid, &raw, 0) < 0 && errno == EINTR {}
            // Exited: its status; killed by a signal: 128 plus the signal, as a shell says.
            let code: Int32 = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            let waiters = status.withLock { state -> [CheckedContinuation<Int32, Never>] in
                state.exit = code
                defer { state.waiters.removeAll() }
                return state.waiters
            }
            for waiter in waiters { waiter.resume(returning: code) }
        }
        thread.start()
    }

    /// Its exit status once it has exited (and been reaped), else nil.
    public var exitStatus: Int32? { status.withLock { $0.exit } }

    /// Waits for it to exit; its status.
    public func wait() async -> Int32 {
        await withCheckedContinuation { continuation in
            let done = status.withLock { state -> Int32? in
                if let exit = state.exit { return exit }
                state.waiters.append(continuation)
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    /// Waits without async (for benchmarks' plain threads).
    public func waitBlocking() -> Int32 {
        while true {
            if let exit = exitStatus { return exit }
            usleep(2000)
        }
    }

    public func signal(_ signal: Int32) {
        guard exitStatus == nil else { return }
        kill(pid, signal)
    }
}
