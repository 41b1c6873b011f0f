import NIOCore
import NIOPosix
import NetdProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Name lookup before connect, as Node's `lookupAndConnect` does: getaddrinfo on NIO's thread pool.
enum Lookup {
    struct Addresses: Sendable {
        var v4: [SocketAddress]
        var v6: [SocketAddress]
    }

    /// The addresses of `host` for TCP, limited to `family` (4, 6, or 0 for both).
    static func resolve(host: String, port: Int, family: Int) async throws(LookupFailure) -> Addresses {
        // An address needs no lookup (Node skips it too): no trip to the thread pool.
        if let address = try? SocketAddress(ipAddress: host, port: port) {
            switch (address, family) {
            case (.v4, 0), (.v4, 4): return Addresses(v4: [address], v6: [])
            case (.v6, 0), (.v6, 6): return Addresses(v4: [], v6: [address])
            default: break  // the wrong family: getaddrinfo says so, as for a name
            }
        }
        let result: Result<Addresses, LookupFailure>
        do {
            result = try await NIOThreadPool.singleton.runIfActive { lookup(host: host, port: port, family: family) }
        } catch {
            throw LookupFailure(code: "EAI_AGAIN", message: "getaddrinfo EAI_AGAIN \(host)")
        }
        switch result {
        case .success(let addresses):
            return addresses
        case .failure(let failure):
            throw failure
        }
    }

    private static func lookup(host: String, port: Int, family: Int) -> Result<Addresses, LookupFailure> {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = family == 4 ? AF_INET : family == 6 ? AF_INET6 : AF_UNSPEC
        hints.ai_flags = AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        var status = getaddrinfo(host, String(port), &hints, &list)
        if status != 0 && status != EAI_AGAIN {
            // AI_ADDRCONFIG hides ::1 on hosts with no IPv6 address configured; try once without it.
            hints.ai_flags = 0
            status = getaddrinfo(host, String(port), &hints, &list)
        }
        guard status == 0, let first = list else {
            let code = status == EAI_AGAIN ? "EAI_AGAIN" : "ENOTFOUND"
            return .failure(LookupFailure(code: code, message: "getaddrinfo \(code) \(host)"))
        }
        defer { freeaddrinfo(list) }
        var addresses = Addresses(v4: [], v6: [])
        var seen = Set<String>()
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            if let address = current.pointee.ai_addr {
                let socketAddress: SocketAddress?
                switch Int32(address.pointee.sa_family) {
                case AF_INET:
                    socketAddress = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee, host: host) }
                case AF_INET6:
                    socketAddress = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee, host: host) }
                default:
                    socketAddress = nil
                }
                if let socketAddress, seen.insert("\(socketAddress)").inserted {
                    if case .v6 = socketAddress { addresses.v6.append(socketAddress) } else { addresses.v4.append(socketAddress) }
                }
            }
            entry = current.pointee.ai_next
        }
        return .success(addresses)
    }
}

struct LookupFailure: Error {
    var code: String
    var message: String
}

/// Hands NIO's Happy Eyeballs connector the addresses already looked up.
struct ResolvedAddresses: Resolver, Sendable {
    let addresses: Lookup.Addresses
    let loop: any EventLoop

    func initiateAQuery(host: String, port: Int) -> EventLoopFuture<[SocketAddress]> {
        loop.makeSucceededFuture(addresses.v4)
    }

    func initiateAAAAQuery(host: String, port: Int) -> EventLoopFuture<[SocketAddress]> {
        loop.makeSucceededFuture(addresses.v6)
    }

    func cancelQueries() {}
}
