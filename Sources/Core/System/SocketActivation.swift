import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// systemd's socket activation (sd_listen_fds(3)): when netd is started with `LISTEN_PID` its own
/// pid and `LISTEN_FDS` at least 1, descriptor 3 is its RPC socket, already bound and listening
/// (systemd made it from netd.socket and keeps it across restarts). netd serves on it and never
/// removes its file: the socket is systemd's, not netd's.
public enum SocketActivation {
    /// The listening socket netd was given, and where it is bound.
    public struct Inherited: Sendable {
        public var descriptor: CInt
        public var path: String
    }

    public struct Refusal: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The first descriptor passed (3), when netd was socket-activated; nil otherwise. The
    /// variables are removed from the environment, as sd_listen_fds(3) does with `unset_environment`,
    /// so that no program netd starts takes them for its own.
    public static func take() throws(Refusal) -> Inherited? {
        let environment = ProcessInfo.processInfo.environment
        guard let count = environment["LISTEN_FDS"].flatMap(Int.init), count > 0 else { return nil }
        // Without LISTEN_PID, or with another process's, the variables were meant for someone else.
        guard let pid = environment["LISTEN_PID"].flatMap(Int32.init), pid == getpid() else { return nil }
        defer {
            unsetenv("LISTEN_FDS")
            unsetenv("LISTEN_PID")
            unsetenv("LISTEN_FDNAMES")
        }
        let fd: CInt = 3
        guard option(fd, SO_DOMAIN) == AF_UNIX, option(fd, SO_TYPE) == CInt(SOCK_STREAM.rawValue) else {
            throw Refusal(description: "socket activation: descriptor 3 is not a Unix stream socket (netd.socket must have ListenStream=PATH)")
        }
        guard option(fd, SO_ACCEPTCONN) == 1 else {
            throw Refusal(description: "socket activation: descriptor 3 is not listening (netd.socket must have Accept=no)")
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let path = named == 0 ? withUnsafeBytes(of: address.sun_path) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        } : ""
        guard path.hasPrefix("/") else {
            throw Refusal(description: "socket activation: descriptor 3 has no path in the file system (an abstract socket is not supported)")
        }
        return Inherited(descriptor: fd, path: path)
    }

    private static func option(_ fd: CInt, _ name: CInt) -> CInt? {
        var value: CInt = 0
        var size = socklen_t(MemoryLayout<CInt>.size)
        guard getsockopt(fd, SOL_SOCKET, name, &value, &size) == 0 else { return nil }
        return value
    }
}
