#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// `netd.ping`: is netd there, and which version is it.
public enum PingMethod: RPCMethod {
    public static let name = "netd.ping"
    public static let summary = "Check that netd answers; returns its version."
    public typealias Params = NoParams

    public struct Result: Codable, Hashable, Sendable {
        public var pong: Bool
        public var version: String

        public init(pong: Bool = true, version: String = NetdVersion.current) {
            self.pong = pong
            self.version = version
        }
    }
}
