import NIOCore
import NIOPosix
import NetdProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Turns what NIO and the kernel report into netd's errors with Node.js names (contract section 2).
enum SocketErrors {
    /// A request that stopped waiting because its client went away or netd is shutting down.
    static let cancelled = ResponseError.internalError("the request was cancelled: its RPC client went away, or netd is shutting down")

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

    /// The JSON-RPC error for a failed connect, listen or write, carrying the record's id in `data.id`.
    static func response(_ failure: SocketFailure, id: Int64?, target: String) -> ResponseError {
        let code: ErrorCode =
            switch failure.code {
            case "ETIMEDOUT": .timedOut
            case "ENOTFOUND", "EAI_AGAIN": .lookupFailed
            case "EMFILE", "ENFILE": .limitReached
            default: .systemError
            }
        var data: [String: JSONValue] = ["code": .string(failure.code)]
        if let id { data["id"] = .integer(id) }
        // A lookup failure's message names the host already.
        let message = code == .lookupFailed ? failure.message : "\(failure.message) \(target)"
        return ResponseError(code: code, message: message, data: .object(data))
    }

    static func invalidState(_ code: String, _ message: String) -> ResponseError {
        .netd(.invalidState, code, message)
    }
}
