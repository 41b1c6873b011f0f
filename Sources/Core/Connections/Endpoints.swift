import NIOCore
import NetdProtocol

extension Endpoint {
    /// The endpoint for a socket address; nil for an unnamed Unix socket.
    init?(_ address: SocketAddress?) {
        guard let address else { return nil }
        switch address {
        case .v4, .v6:
            guard let ip = address.ipAddress, let port = address.port else { return nil }
            self = .tcp(ip, port)
        case .unixDomainSocket:
            guard let path = address.pathname, !path.isEmpty else { return nil }
            self = .unix(path)
        }
    }
}
