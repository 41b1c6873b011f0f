import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Who may use netd at all, and who is an admin (issue: access control). Root and netd's own user
/// always may, and are admins; `--allow-uid` and `--allow-group` admit more users, who see and touch
/// only their own sockets, servers, faults and history; `--admin-group` makes its members admins.
/// Everyone else is refused as they connect.
public struct AccessPolicy: Sendable, Equatable {
    public var allowedUIDs: Set<UInt32> = []
    public var allowedGroups: Set<UInt32> = []
    public var adminGroups: Set<UInt32> = []

    public init(allowedUIDs: Set<UInt32> = [], allowedGroups: Set<UInt32> = [], adminGroups: Set<UInt32> = []) {
        self.allowedUIDs = allowedUIDs
        self.allowedGroups = allowedGroups
        self.adminGroups = adminGroups
    }

    public enum Decision: Equatable, Sendable {
        case refused
        case user
        case admin
    }

    /// The decision for a caller with this uid and these groups (primary and supplementary).
    public func decide(uid: UInt32, groups: Set<UInt32>) -> Decision {
        if uid == 0 || uid == getuid() || !groups.isDisjoint(with: adminGroups) { return .admin }
        if allowedUIDs.contains(uid) || !groups.isDisjoint(with: allowedGroups) { return .user }
        return .refused
    }

    /// The refusal's message: who was refused, and how their access is given.
    func refusal(uid: UInt32) -> String {
        "uid \(uid) may not use this netd: it serves root and uid \(getuid()) only"
            + (allowedUIDs.isEmpty && allowedGroups.isEmpty ? "" : ", and the users and groups its --allow-uid and --allow-group name")
            + "; its owner can start it with --allow-uid \(uid) or --allow-group GROUP"
    }

    /// A user by name or number, for `--allow-uid`.
    public static func uid(_ text: String) -> UInt32? {
        if let number = UInt32(text) { return number }
        guard let entry = getpwnam(text) else { return nil }
        return entry.pointee.pw_uid
    }

    /// A group by name or number, for `--allow-group` and `--admin-group`.
    public static func gid(_ text: String) -> UInt32? {
        if let number = UInt32(text) { return number }
        guard let entry = getgrnam(text) else { return nil }
        return entry.pointee.gr_gid
    }
}

extension PeerCredentials {
    /// The caller's supplementary groups as they were when it connected (SO_PEERGROUPS), with its
    /// primary group; just the primary group if the kernel will not say.
    static func groups(of channel: any Channel, primary: UInt32) async -> Set<UInt32> {
        let loop = channel.eventLoop
        let read = try? await loop.submit { () -> [UInt32] in
            try channel.pipeline.syncOperations.withUnsafeTransportIfAvailable(of: NIOBSDSocket.Handle.self) { fd in
                var groups = [gid_t](repeating: 0, count: 256)
                var length = socklen_t(groups.count * MemoryLayout<gid_t>.size)
                // SO_PEERGROUPS (Linux 4.13): 59 in asm-generic/socket.h, which Glibc's module leaves out.
                if getsockopt(fd, SOL_SOCKET, 59, &groups, &length) != 0 {
                    // More groups than room: the kernel said how much it needs (up to NGROUPS_MAX).
                    guard errno == ERANGE, Int(length) > groups.count * MemoryLayout<gid_t>.size else { return [] }
                    groups = [gid_t](repeating: 0, count: Int(length) / MemoryLayout<gid_t>.size)
                    guard getsockopt(fd, SOL_SOCKET, 59, &groups, &length) == 0 else { return [] }
                }
                return Array(groups.prefix(Int(length) / MemoryLayout<gid_t>.size))
            } ?? []
        }.get()
        return Set(read ?? []).union([primary])
    }
}
