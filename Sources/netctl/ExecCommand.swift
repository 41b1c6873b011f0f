import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import NetdBlockingClient
import NetdProtocol

/// `netctl exec ID -- CMD ARGS...`: takes the socket or server from netd (`socket.handoff` or
/// `server.handoff`) and runs CMD with it as descriptor 3, as systemd's socket activation does.
struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command with a socket or server of netd's as descriptor 3 (systemd socket activation).",
        discussion: """
            netctl takes the socket or listening server ID from netd (it leaves netd for good) and runs COMMAND
            in its own place with the descriptor as fd 3, LISTEN_FDS=1, LISTEN_PID its pid and LISTEN_FDNAMES the
            object's label (or netd-ID), so any socket-activation-aware server runs on a socket netd opened.
            Bytes netd had buffered unread from a socket are in NETD_UNREAD_BASE64.

            Example: netctl exec 8 -- python3 -c 'import socket; s = socket.socket(fileno=3); ...'
            """)

    @OptionGroup var globals: GlobalOptions

    @Argument(help: "The socket's or server's id.")
    var id: Int64

    @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.")
    var command: [String] = []

    func validate() throws {
        guard !command.isEmpty else { throw ValidationError("give the command after --: netctl exec ID -- COMMAND ARGS...") }
    }

    func run() throws {
        let (descriptor, label, unread) = try globals.withClient { client -> (CInt, String?, String) in
            do {
                let (taken, descriptor) = try client.callTakingDescriptor(SocketHandoffMethod.self, .init(id: id))
                guard let descriptor else { throw Failure.failed("netd answered without the descriptor") }
                return (descriptor, taken.socket.label, taken.data)
            } catch let error as ResponseError where error.code == ErrorCode(rawValue: -32001) {
                // Not a socket of yours: perhaps a server.
                let (taken, descriptor) = try client.callTakingDescriptor(ServerHandoffMethod.self, .init(id: id))
                guard let descriptor else { throw Failure.failed("netd answered without the descriptor") }
                return (descriptor, taken.server.label, "")
            }
        }
        // Descriptor 3, kept across exec; everything else netctl opened is close-on-exec.
        if descriptor != 3 {
            guard dup2(descriptor, 3) == 3 else { throw Failure.failed("dup2: \(String(cString: strerror(errno)))") }
            close(descriptor)
        }
        _ = fcntl(3, F_SETFD, 0)
        setenv("LISTEN_FDS", "1", 1)
        setenv("LISTEN_PID", "\(getpid())", 1)
        setenv("LISTEN_FDNAMES", label ?? "netd-\(id)", 1)
        if unread.isEmpty { unsetenv("NETD_UNREAD_BASE64") } else { setenv("NETD_UNREAD_BASE64", unread, 1) }
        let arguments = command.map { strdup($0) } + [nil]
        execvp(command[0], arguments)
        // Only reached when the command could not be run; the descriptor is lost with netctl.
        Terminal.err("netctl: cannot run \(command[0]): \(String(cString: strerror(errno)))\n")
        throw ExitCode(127)
    }
}
