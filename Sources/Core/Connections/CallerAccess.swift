import Foundation
import NetdProtocol

#if canImport(Glibc)
import Glibc
#endif

/// What a caller could do itself. netd may run with more privilege than its callers (as root, or
/// a service user serving a shared socket), so for callers who are not admins it checks what the
/// kernel would check for them before binding or connecting on their behalf.
enum CallerAccess {
    /// -32004 EACCES unless the caller could bind `port` itself.
    static func checkPort(_ port: Int, for context: RequestContext) throws(NetdError) {
        guard !context.isAdmin, port > 0, port < unprivilegedPortStart() else { return }
        throw NetdError.refused(code: "EACCES", "listen EACCES: port \(port) is privileged and user \(context.peer.uid) may not bind it")
    }

    /// -32004 EACCES unless the caller may connect to the socket at `path` (search on every folder, write on the socket).
    static func checkConnect(_ path: String, for context: RequestContext) throws(NetdError) {
        guard !context.isAdmin else { return }
        let identity = Identity(context)
        try checkFolders(of: path, identity, syscall: "connect")
        var info = stat()
        guard stat(path, &info) == 0 else { return }  // connect will say ENOENT itself
        guard identity.may(.write, info) else {
            throw NetdError.refused(code: "EACCES", "connect EACCES \(path): user \(context.peer.uid) may not write to it")
        }
    }

    /// -32004 EACCES unless the caller may create a socket at `path` (search on every folder, write on its folder).
    static func checkCreate(_ path: String, for context: RequestContext) throws(NetdError) {
        guard !context.isAdmin else { return }
        let identity = Identity(context)
        try checkFolders(of: path, identity, syscall: "listen")
        let parent = (path as NSString).deletingLastPathComponent
        var info = stat()
        guard stat(parent.isEmpty ? "." : parent, &info) == 0 else { return }
        guard identity.may(.write, info) else {
            throw NetdError.refused(code: "EACCES", "listen EACCES \(path): user \(context.peer.uid) may not create files in \(parent)")
        }
        // A stale socket netd would replace: in a sticky folder (/tmp), only its owner or the
        // folder's may remove it, as the kernel would say to the caller.
        var existing = stat()
        if info.st_mode & S_ISVTX != 0, lstat(path, &existing) == 0, existing.st_uid != identity.uid, info.st_uid != identity.uid {
            throw NetdError.refused(code: "EACCES", "listen EACCES \(path): it belongs to user \(existing.st_uid), and \(parent) lets only its owner remove it")
        }
    }

    private static func checkFolders(of path: String, _ identity: Identity, syscall: String) throws(NetdError) {
        var folder = (path as NSString).deletingLastPathComponent
        while !folder.isEmpty {
            var info = stat()
            if stat(folder, &info) == 0, !identity.may(.search, info) {
                throw NetdError.refused(code: "EACCES", "\(syscall) EACCES \(path): user \(identity.uid) may not enter \(folder)")
            }
            if folder == "/" { break }
            folder = (folder as NSString).deletingLastPathComponent
        }
    }

    private static func unprivilegedPortStart() -> Int {
        let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_unprivileged_port_start", encoding: .utf8)
        return text.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 1024
    }

    /// The caller's uid and groups, as the kernel gave them when the caller connected (never read
    /// again from /proc/PID: that pid may have exited and been given to another process since).
    private struct Identity {
        let uid: UInt32
        let groups: Set<UInt32>

        enum Need { case write, search }

        init(_ context: RequestContext) {
            uid = context.peer.uid
            groups = context.groups.union([context.peer.gid])
        }

        func may(_ need: Need, _ info: stat) -> Bool {
            let bit: mode_t = need == .write ? 0o2 : 0o1
            if uid == info.st_uid { return info.st_mode & (bit << 6) != 0 }
            if groups.contains(info.st_gid) { return info.st_mode & (bit << 3) != 0 }
            return info.st_mode & bit != 0
        }
    }
}
