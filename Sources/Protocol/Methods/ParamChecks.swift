#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Range checks shared by the params of several methods; each throws -32602 naming the param.
enum Check {
    static func port(_ value: Int?, _ name: String, allowZero: Bool) throws(ResponseError) {
        guard let value else { return }
        let lowest = allowZero ? 0 : 1
        guard (lowest...65535).contains(value) else {
            throw .invalidParams("`\(name)` must be from \(lowest) to 65535, not \(value)")
        }
    }

    /// A Unix socket path netd would bind or connect: absolute (a daemon has no business guessing
    /// a caller's working directory), at most 107 bytes, no NUL. `absolute: false` for filters,
    /// which only compare.
    static func unixPath(_ path: String, _ name: String = "path", absolute: Bool = true) throws(ResponseError) {
        guard !path.isEmpty else { throw .invalidParams("`\(name)` must not be empty") }
        guard !path.utf8.contains(0) else { throw .invalidParams("`\(name)` must not contain NUL") }
        guard !absolute || path.hasPrefix("/") else {
            throw .invalidParams(
                "`\(name)` must be an absolute path, not \"\(ResponseError.quoting(path))\": netd cannot know the caller's working directory (netctl makes relative paths absolute itself)")
        }
        let bytes = path.utf8.count
        guard bytes <= NetdPaths.maximumSocketPathBytes else {
            throw .invalidParams("`\(name)` is \(bytes) bytes; a Unix socket path holds at most \(NetdPaths.maximumSocketPathBytes)")
        }
    }

    /// The longest label: a name for people and scripts, kept in every record of the object.
    public static let maximumLabelBytes = 1024
    /// The longest host: a DNS name holds at most 253 characters; an address literal fewer.
    public static let maximumHostBytes = 255

    /// Text that netd stores (labels, host names): SQLite reads a string up to its first NUL, so
    /// one with a NUL would read back cut short after a restart. Refused rather than changed, as
    /// is one longer than `maxBytes`.
    static func storable(_ value: String?, _ name: String, maxBytes: Int) throws(ResponseError) {
        guard let value else { return }
        if value.utf8.contains(0) { throw .invalidParams("`\(name)` must not contain NUL (U+0000)") }
        let bytes = value.utf8.count
        guard bytes <= maxBytes else { throw .invalidParams("`\(name)` is \(bytes) bytes; it may be at most \(maxBytes)") }
    }

    static func label(_ value: String?) throws(ResponseError) {
        try storable(value, "label", maxBytes: maximumLabelBytes)
    }

    static func host(_ value: String?, _ name: String = "host") throws(ResponseError) {
        try storable(value, name, maxBytes: maximumHostBytes)
    }

    static func range(_ value: Int?, _ name: String, _ range: ClosedRange<Int>) throws(ResponseError) {
        guard let value else { return }
        guard range.contains(value) else {
            throw .invalidParams("`\(name)` must be from \(range.lowerBound) to \(range.upperBound), not \(value)")
        }
    }

    /// An IPv4 or IPv6 address literal (as Node's `localAddress` must be); names are not looked up.
    static func ipAddress(_ value: String?, _ name: String) throws(ResponseError) {
        guard let value else { return }
        var v4 = in_addr()
        var v6 = in6_addr()
        guard inet_pton(AF_INET, value, &v4) == 1 || inet_pton(AF_INET6, value, &v6) == 1 else {
            throw .invalidParams("`\(name)` must be an IPv4 or IPv6 address, not \"\(value)\"")
        }
    }

    /// An ISO 8601 time such as `2026-11-25T10:00:00.123Z` (an offset instead of `Z` is fine).
    static func timestamp(_ value: String?, _ name: String) throws(ResponseError) {
        guard let value else { return }
        guard Timestamp.parse(value) != nil else {
            throw .invalidParams("`\(name)` must be an ISO 8601 time such as 2026-11-25T10:00:00Z, not \"\(value)\"")
        }
    }

    /// TCP-only params must not come with `path`.
    static func noTCPParams(with path: String?, _ present: [(String, Bool)]) throws(ResponseError) {
        guard path != nil else { return }
        if let (name, _) = present.first(where: \.1) {
            throw .invalidParams("`\(name)` is for TCP and cannot be used with `path`")
        }
    }
}

/// Params that are just a socket or server id.
public struct IDParams: RPCParams, Hashable {
    public var id: Int64

    public init(id: Int64) { self.id = id }

    public static let fields = [ParamField("id", "integer", required: true, "The socket's or server's id.")]
}

/// The filters of `socket.list` and `server.list`.
public struct ListParams: RPCParams, Hashable {
    public var role: Role?
    public var kind: Kind?
    public var state: String?
    public var server: Int64?
    public var label: String?

    public init(role: Role? = nil, kind: Kind? = nil, state: String? = nil, server: Int64? = nil, label: String? = nil) {
        self.role = role
        self.kind = kind
        self.state = state
        self.server = server
        self.label = label
    }

    public static let fields = [
        ParamField("role", "string: client, accepted or server", "Only this role."),
        ParamField("kind", "string: tcp or unix", "Only this kind."),
        ParamField("state", "string", "Only this state (opening, open, readOnly, writeOnly, closed; servers: listening, closed)."),
        ParamField("server", "integer", "Only sockets accepted by this server."),
        ParamField("label", "string", "Only this label."),
    ]
}
