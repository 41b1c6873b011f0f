#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Where netd listens and keeps its database, resolved as contract section 1 says.
public enum NetdPaths {
    /// The longest path that fits in `sun_path` with its terminating NUL on Linux.
    public static let maximumSocketPathBytes = 107

    /// `--socket`, then `$NETD_SOCKET`, `$XDG_RUNTIME_DIR/netd/netd.sock`, `/tmp/netd-$UID/netd.sock`.
    public static func socket(
        flag: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        uid: UInt32 = getuid()
    ) -> String {
        if let flag, !flag.isEmpty { return flag }
        if let path = environment["NETD_SOCKET"], !path.isEmpty { return path }
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty { return runtime + "/netd/netd.sock" }
        return "/tmp/netd-\(uid)/netd.sock"
    }

    /// `--db`, then `$NETD_DB`, `$XDG_STATE_HOME/netd/history.sqlite3`, `~/.local/state/netd/history.sqlite3`.
    public static func database(
        flag: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String {
        if let flag, !flag.isEmpty { return flag }
        if let path = environment["NETD_DB"], !path.isEmpty { return path }
        if let state = environment["XDG_STATE_HOME"], !state.isEmpty { return state + "/netd/history.sqlite3" }
        return homeDirectory(environment) + "/.local/state/netd/history.sqlite3"
    }

    private static func homeDirectory(_ environment: [String: String]) -> String {
        if let home = environment["HOME"], !home.isEmpty { return home }
        return FileManager.default.homeDirectoryForCurrentUser.path
    }
}
