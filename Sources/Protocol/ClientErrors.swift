#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Why a call did not get an answer from netd.
public enum NetdClientError: Error, CustomStringConvertible, Sendable {
    /// Nothing accepted a connection on the socket.
    case unreachable(path: String, reason: String)
    /// The connection closed before the answer came.
    case connectionClosed(reason: String)
    /// netd's answer could not be read.
    case malformedResponse(String)

    public var description: String {
        switch self {
        case .unreachable(let path, let reason): "cannot reach netd at \(path): \(reason)"
        case .connectionClosed(let reason): "the connection to netd closed: \(reason)"
        case .malformedResponse(let reason): "netd's answer could not be read: \(reason)"
        }
    }
}

extension NetdClientError {
    /// The typed result of a response line, or the ``ResponseError`` it carries.
    public static func decodeResult<R: Decodable & Sendable>(_ type: R.Type, from data: Data) throws -> R {
        let response: TypedResponse<R>
        do {
            response = try JSONDecoder().decode(TypedResponse<R>.self, from: data)
        } catch {
            throw NetdClientError.malformedResponse(String(describing: error))
        }
        if let error = response.error { throw error }
        guard let result = response.result else {
            throw NetdClientError.malformedResponse("a response with neither result nor error")
        }
        return result
    }
}
