import NIOCore
import NIOPosix
import NetdProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Turns what NIO and the kernel report into netd's errors with Node.js names (contract section 2).
enum SocketErrors {
    /// The Node-style failure for an error seen on a live socket.
    static func failure(_ error: any Error, syscall: String) -> SocketFailure {
        if let io = error as? IOError {
            let name = errnoName(io.errnoCode)
            return SocketFailure(code: name, message: "\(syscall) \(name)")
        }
        if let channelError = error as? ChannelError {
            switch channelError {
            case .connectTimeout: return SocketFailure(code: "ETIMEDOUT", message: "\(syscall) ETIMEDOUT")
            case .eof: return SocketFailure(code: "ECONNRESET", message: "\(syscall) ECONNRESET")
            default: return SocketFailure(code: "EIO", message: "\(syscall) \(channelError)")
            }
        }
        if let connection = error as? NIOConnectionError, let first = connection.connectionErrors.first {
            return failure(first.error, syscall: syscall)
        }
        return SocketFailure(code: "EIO", message: "\(syscall) \(error)")
    }

    /// The error for a failed connect, listen or write, naming the record it left (`data.id`).
    static func response(_ failure: SocketFailure, id: Int64?, target: String) -> NetdError {
        .system(failure, record: id, target: target)
    }

    static func invalidState(_ code: String, _ message: String) -> NetdError {
        .invalidState(code: code, message)
    }
}
