#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `netd.replace`: what `netd --replace` asks of the running netd (contract section 13). The
/// running netd connects to the new one's private socket, verifies that the process there is
/// the caller, hands everything over on it with SCM_RIGHTS, and answers once the new netd has
/// confirmed that it holds everything; then it exits. Root and netd's own user only.
public enum NetdReplaceMethod: RPCMethod {
    public static let name = "netd.replace"
    public static let summary = "Hand every socket, server, forward, pipe and stream to a new netd on its private socket, then exit (netd --replace; admins only)."

    public struct Params: RPCParams, Hashable {
        /// The new netd's private socket: a name in Linux's abstract namespace, without the leading NUL.
        public var socket: String

        public init(socket: String) { self.socket = socket }

        public static let fields = [
            ParamField("socket", "string", required: true, "The new netd's private socket, a name in the abstract namespace (without the leading NUL)."),
        ]

        public func validate() throws(ResponseError) {
            guard !socket.isEmpty, socket.utf8.count <= 107, !socket.utf8.contains(0) else {
                throw .invalidParams("`socket` must be a name of 1 to 107 bytes without NUL")
            }
        }
    }

    /// What went over.
    public struct Result: Codable, Hashable, Sendable {
        /// The new netd's process id.
        public var replacedBy: Int32
        public var sockets: Int
        public var servers: Int
        /// Relayed pairs: pipes, forwarded connections and attached streams.
        public var pairs: Int

        public init(replacedBy: Int32, sockets: Int, servers: Int, pairs: Int) {
            self.replacedBy = replacedBy
            self.sockets = sockets
            self.servers = servers
            self.pairs = pairs
        }
    }
}
