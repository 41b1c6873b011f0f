import Foundation
import NetdProtocol

/// A Unix socket path checked the way a careful daemon checks it before binding: the path fits in
/// `sun_path`, its folder exists (created 0700 when missing), a live socket there is left alone,
/// a stale one is replaced, and anything that is not a socket is never deleted.
public struct SocketFile: Sendable {
    public struct Refusal: Error, CustomStringConvertible, Sendable {
        /// The Node.js-style reason: `EADDRINUSE`, `ENAMETOOLONG`, `EEXIST`, `EACCES`, ...
        public var code: String
        public var description: String
    }

    public let path: String
    /// Device and inode of the socket this process bound, so that only our own file is removed.
    private var identity: (dev: UInt64, ino: UInt64)?

    public init(path: String) {
        self.path = path
    }

    /// Makes the path ready to bind: checks its length, creates a missing folder 0700, and removes a stale socket.
    public func prepare(createFolder: Bool) throws(Refusal) {
        guard path.utf8.count <= NetdPaths.maximumSocketPathBytes else {
            throw Refusal(
                code: "ENAMETOOLONG",
                description: "socket path is \(path.utf8.count) bytes; at most \(NetdPaths.maximumSocketPathBytes) fit in sun_path: \(path)")
        }
        guard !path.isEmpty else { throw Refusal(code: "EINVAL", description: "socket path is empty") }
        if createFolder { try createParent() }
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw Refusal(code: errnoName(errno), description: "cannot inspect \(path): \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw Refusal(code: "EEXIST", description: "\(path) exists and is not a socket; refusing to replace it")
        }
        switch Self.probe(path) {
        case .live:
            throw Refusal(code: "EADDRINUSE", description: "something is already listening on \(path)")
        case .stale:
            guard unlink(path) == 0 || errno == ENOENT else {
                throw Refusal(code: errnoName(errno), description: "cannot remove the stale socket \(path): \(String(cString: strerror(errno)))")
            }
        case .failed(let code):
            throw Refusal(code: errnoName(code), description: "cannot tell whether \(path) is in use: \(String(cString: strerror(code)))")
        }
    }

    /// Runs `bind` with the umask set so that the socket is created with `mode` and never wider
    /// (nil: the process's umask decides), and remembers the file so that ``remove()`` takes only it.
    public mutating func bind<T>(mode: UInt32?, _ bind: () async throws -> T) async throws -> T {
        let result: T
        if let mode {
            let previous = umask(mode_t(~mode & 0o777))
            defer { umask(previous) }
            result = try await bind()
        } else {
            result = try await bind()
        }
        var info = stat()
        if lstat(path, &info) == 0 {
            identity = (UInt64(info.st_dev), UInt64(info.st_ino))
            // The umask can only narrow the mode; set it exactly in case a wider one was asked for.
            if let mode, (info.st_mode & 0o777) != mode { chmod(path, mode_t(mode)) }
        }
        return result
    }

    /// Removes the socket file if it is still the one this process bound.
    public func remove() {
        guard let identity else { return }
        var info = stat()
        guard lstat(path, &info) == 0, UInt64(info.st_dev) == identity.dev, UInt64(info.st_ino) == identity.ino else { return }
        unlink(path)
    }

    private func createParent() throws(Refusal) {
        let parent = (path as NSString).deletingLastPathComponent
        guard !parent.isEmpty, !FileManager.default.fileExists(atPath: parent) else { return }
        do {
            try FileManager.default.createDirectory(
                atPath: parent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw Refusal(code: "EACCES", description: "cannot create the socket folder \(parent): \(error.localizedDescription)")
        }
    }

    enum Probe: Equatable {
        case live, stale
        case failed(Int32)
    }

    /// Tries to connect: an answer means live, ECONNREFUSED means nobody is listening any more.
    static func probe(_ path: String) -> Probe {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failed(errno) }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8.prefix(raw.count - 1))
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if result == 0 { return .live }
        switch errno {
        case ECONNREFUSED, ENOENT: return .stale
        case EAGAIN: return .live  // the listener's backlog is full: it is alive
        default: return .failed(errno)
        }
    }
}

/// The symbolic name of an errno value, as Node.js reports it (`ECONNREFUSED`).
public func errnoName(_ code: Int32) -> String {
    switch code {
    case EPERM: "EPERM"
    case ENOENT: "ENOENT"
    case EINTR: "EINTR"
    case EIO: "EIO"
    case EBADF: "EBADF"
    case EAGAIN: "EAGAIN"
    case ENOMEM: "ENOMEM"
    case EACCES: "EACCES"
    case EEXIST: "EEXIST"
    case ENOTDIR: "ENOTDIR"
    case EISDIR: "EISDIR"
    case EINVAL: "EINVAL"
    case ENFILE: "ENFILE"
    case EMFILE: "EMFILE"
    case ENOSPC: "ENOSPC"
    case EROFS: "EROFS"
    case EPIPE: "EPIPE"
    case ENAMETOOLONG: "ENAMETOOLONG"
    case ENOTSOCK: "ENOTSOCK"
    case EADDRINUSE: "EADDRINUSE"
    case EADDRNOTAVAIL: "EADDRNOTAVAIL"
    case ENETDOWN: "ENETDOWN"
    case ENETUNREACH: "ENETUNREACH"
    case ECONNABORTED: "ECONNABORTED"
    case ECONNRESET: "ECONNRESET"
    case ENOBUFS: "ENOBUFS"
    case ENOTCONN: "ENOTCONN"
    case ETIMEDOUT: "ETIMEDOUT"
    case ECONNREFUSED: "ECONNREFUSED"
    case EHOSTUNREACH: "EHOSTUNREACH"
    case EAFNOSUPPORT: "EAFNOSUPPORT"
    case EPROTONOSUPPORT: "EPROTONOSUPPORT"
    default: "E\(code)"
    }
}
