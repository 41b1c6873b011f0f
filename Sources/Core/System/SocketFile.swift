import Foundation
import NIOCore
import NetdProtocol
#if canImport(Glibc)
import Glibc
#endif

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

    /// The socket file another process bound and handed over (`netd --replace`), to be removed
    /// by this one: it is remembered as it is on disk now.
    public static func adopting(_ path: String) -> SocketFile {
        var file = SocketFile(path: path)
        var info = stat()
        if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK {
            file.identity = (UInt64(info.st_dev), UInt64(info.st_ino))
        }
        return file
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

    /// Creates a Unix stream socket bound at the path, for NIO to listen on (``ServerBootstrap``'s
    /// `bind(_ socket:)`), and remembers the file so that ``remove()`` takes only it.
    ///
    /// With a `mode`, the socket's inode gets it by `fchmod` before `bind` (Linux creates the file
    /// with that mode narrowed by the umask, so it is never wider than asked), then the file gets
    /// it exactly. The process umask is never touched, so concurrent binds cannot disturb each
    /// other. Without one, the umask decides, as for any file.
    ///
    /// - Returns: the bound descriptor; from here NIO's server channel owns it.
    public mutating func bindListening(mode: UInt32?) throws -> NIOBSDSocket.Handle {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var address = Self.address(path)
        if let mode, fchmod(fd, mode_t(mode)) != 0 {
            let code = errno
            close(fd)
            throw IOError(errnoCode: code, reason: "fchmod")
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw IOError(errnoCode: code, reason: "bind")
        }
        var info = stat()
        if lstat(path, &info) == 0 {
            identity = (UInt64(info.st_dev), UInt64(info.st_ino))
            // The umask can only have narrowed it; widen it to exactly what was asked.
            if let mode, (info.st_mode & 0o777) != mode { chmod(path, mode_t(mode)) }
        }
        return fd
    }

    /// The address of a Unix socket path of up to 107 bytes (Linux's `sun_path` holds 108 with
    /// the NUL; NIO's own initialiser stops at 103, the macOS limit).
    ///
    /// - Precondition: the path fits (checked by the method params and ``prepare(createFolder:)``).
    public static func address(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8.prefix(raw.count - 1))
        }
        return address
    }

    /// As ``address(_:)``, for NIO.
    public static func socketAddress(_ path: String) -> SocketAddress {
        SocketAddress(address(path))
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
        var address = Self.address(path)
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
