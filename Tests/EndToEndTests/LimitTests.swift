import Foundation
import NetdCore
import NetdProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Every limit at its boundary: the last one allowed, the first one refused with -32007 (or
/// -32600 for the message size) and `data.limit` naming the flag, and service for everyone else
/// unchanged. (The unread buffer and unclaimed accepted sockets are backpressure, never an error:
/// CrossLoopTests and FlowAndOptionsTests hold them to their limits.)
@Suite(.timeLimit(.minutes(2)))
struct LimitTests {
    private static let ping = #"{"jsonrpc":"2.0","id":"ping","method":"netd.ping"}"#

    private static func call(_ raw: RawConnection, _ method: String, _ params: String = "{}") async throws -> JSONValue {
        try await PartOneFixesTests.call(raw, method, params)
    }

    /// The answer is the refusal of `limit`, whose value is `max`.
    private static func expectRefused(
        _ answer: JSONValue, _ limit: NetdLimit, max: Int, code: Int64 = -32007, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(answer["error"]?["code"] == .integer(code), "\(answer)", sourceLocation: sourceLocation)
        #expect(answer["error"]?["data"]?["limit"] == .string(limit.rawValue), "\(answer)", sourceLocation: sourceLocation)
        #expect(answer["error"]?["data"]?["max"] == .integer(Int64(max)), "\(answer)", sourceLocation: sourceLocation)
        #expect(answer["error"]?["message"]?.stringValue?.contains(limit.flag) == true, "\(answer)", sourceLocation: sourceLocation)
    }

    /// One entry of `netd.status`'s `users`.
    private static func usage(uid: Int64, clients: Int64, sockets: Int64 = 0, servers: Int64 = 0) -> JSONValue {
        .object(["uid": .integer(uid), "clients": .integer(clients), "sockets": .integer(sockets), "servers": .integer(servers)])
    }

    /// A netd in this process that nobody (65534) may use too, on a socket anyone can reach.
    private static func withSharedDaemon(
        _ configure: @escaping (inout NetdConfiguration) -> Void, _ body: (TestDaemon) async throws -> Void
    ) async throws {
        try await withRunningDaemon(configure: { configuration in
            configuration.socketMode = 0o666
            configuration.access = AccessPolicy(allowedUIDs: [65534])
            configure(&configuration)
        }) { netd in
            chmod(netd.folder.path, 0o755)
            try await body(netd)
        }
    }

    /// One request as nobody, on a connection of its own; its answer.
    private static func asNobody(_ netd: TestDaemon, _ method: String, _ params: String = "{}") async throws -> JSONValue {
        let lines = try await NetdEndToEndTests.asNobody(
            socket: netd.socketPath, [#"{"jsonrpc":"2.0","id":1,"method":"\#(method)","params":\#(params)}"#], folder: netd.folder.path)
        return try #require(lines.first, "nobody got no answer to \(method)")
    }

    @Test func aLineOfExactlyTheLimitIsServedAndOneByteMoreIsRefused() async throws {
        let limit = 4096
        try await withRunningDaemon(configure: { $0.maxMessageBytes = limit }) { netd in
            try await withRawConnection(netd.socketPath) { connection in
                func ping(length: Int) -> String {
                    let frame = #"{"jsonrpc":"2.0","id":"","method":"netd.ping"}"#
                    return #"{"jsonrpc":"2.0","id":""# + String(repeating: "x", count: length - frame.utf8.count) + #"","method":"netd.ping"}"#
                }
                let last = try await connection.exchange(ping(length: limit))
                #expect(last["result"]?["pong"] == .bool(true), "\(last)")
                let first = try await connection.exchange(ping(length: limit + 1))
                Self.expectRefused(first, .maxMessageBytes, max: limit, code: -32600)
                #expect(first["id"] == .null && first["error"]?["data"]?["code"] == .string("EMSGSIZE"))
                #expect(try await connection.exchange(Self.ping)["result"]?["pong"] == .bool(true))
            }
        }
    }

    @Test func theClientOverMaxClientsIsToldAndTheOthersAreServed() async throws {
        try await withRunningDaemon(configure: { $0.maxClients = 3 }) { netd in
            try await withRawConnection(netd.socketPath) { first in
                try await withRawConnection(netd.socketPath) { second in
                    try await withRawConnection(netd.socketPath) { third in
                        // An answered ping means netd has admitted the client; only then the next.
                        for connection in [first, second, third] {
                            #expect(try await connection.exchange(Self.ping)["result"]?["pong"] == .bool(true))
                        }
                        try await withRawConnection(netd.socketPath) { fourth in
                            let refusal = try await fourth.json()
                            Self.expectRefused(refusal, .maxClients, max: 3)
                            #expect(refusal["id"] == .null)
                            #expect(try await fourth.line() == nil)
                        }
                        for connection in [first, second, third] {
                            #expect(try await connection.exchange(Self.ping)["result"]?["pong"] == .bool(true))
                        }
                    }
                }
            }
        }
    }

    @Test func aUserOverMaxClientsPerUserIsToldAndOtherUsersAreServed() async throws {
        try await Self.withSharedDaemon({ $0.maxClientsPerUser = 2 }) { netd in
            try await withRawConnection(netd.socketPath) { first in
                #expect(try await first.exchange(Self.ping)["result"]?["pong"] == .bool(true))
                try await withRawConnection(netd.socketPath) { second in
                    #expect(try await second.exchange(Self.ping)["result"]?["pong"] == .bool(true))
                    try await withRawConnection(netd.socketPath) { third in
                        let refusal = try await third.json()
                        Self.expectRefused(refusal, .maxClientsPerUser, max: 2)
                        #expect(try await third.line() == nil)
                    }
                    // Another user is served while root is at its limit, and so are root's two.
                    let nobody = try await Self.asNobody(netd, "netd.status")
                    #expect(nobody["result"]?["users"] == .array([Self.usage(uid: 65534, clients: 1)]), "\(nobody)")
                    let status = try await Self.call(second, "netd.status")
                    #expect(status["result"]?["limits"]?["max-clients-per-user"] == .integer(2))
                    #expect(status["result"]?["users"]?.arrayValue?.first?["clients"] == .integer(2), "\(status)")
                    #expect(try await first.exchange(Self.ping)["result"]?["pong"] == .bool(true))
                }
                // A place is free again once one of root's clients leaves.
                let admitted = await eventually {
                    (try? await withRawConnection(netd.socketPath) { try await $0.exchange(Self.ping)["result"]?["pong"] == .bool(true) }) == true
                }
                #expect(admitted)
            }
        }
    }

    @Test func aUserOverMaxSocketsPerUserIsRefusedAndOtherUsersAreServed() async throws {
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        try await Self.withSharedDaemon({ $0.limits.socketsPerUser = 2 }) { netd in
            try await withRawConnection(netd.socketPath) { root in
                let connect = #"{"host":"127.0.0.1","port":\#(peer.port)}"#
                let first = try #require(try await Self.call(root, "socket.connect", connect)["result"]?["id"]?.integerValue)
                let last = try await Self.call(root, "socket.connect", connect)
                #expect(last["result"]?["id"]?.integerValue != nil, "\(last)")
                let refused = try await Self.call(root, "socket.connect", connect)
                Self.expectRefused(refused, .maxSocketsPerUser, max: 2)
                #expect(refused["error"]?["data"]?["code"] == .string("EMFILE"))
                // Refused before anything was opened: no record of it.
                let records = try await Self.call(root, "history.query", #"{"role":"client"}"#)
                #expect(records["result"]?["items"]?.arrayValue?.count == 2, "\(records)")

                let nobody = try await Self.asNobody(netd, "socket.connect", connect)
                #expect(nobody["result"]?["state"] == .string("open"), "\(nobody)")
                // Closing one gives the place back.
                _ = try await Self.call(root, "socket.close", #"{"id":\#(first)}"#)
                let again = try await eventually { try await Self.call(root, "socket.connect", connect)["result"] != nil }
                #expect(again)
            }
        }
    }

    @Test func aUserOverMaxServersPerUserIsRefusedAndOtherUsersAreServed() async throws {
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        try await Self.withSharedDaemon({ $0.limits.serversPerUser = 2 }) { netd in
            try await withRawConnection(netd.socketPath) { root in
                let listen = #"{"host":"127.0.0.1","port":0}"#
                let server = try await Self.call(root, "server.listen", listen)
                let id = try #require(server["result"]?["id"]?.integerValue)
                let port = try #require(server["result"]?["local"]?["port"]?.integerValue)
                // A listen that fails gives its place back at once.
                let inUse = try await Self.call(root, "server.listen", #"{"host":"127.0.0.1","port":\#(port)}"#)
                #expect(inUse["error"]?["data"]?["code"] == .string("EADDRINUSE"), "\(inUse)")
                // A forward is a server too: the last one allowed.
                let forward = try await Self.call(root, "server.listen", #"{"host":"127.0.0.1","port":0,"forward":{"host":"127.0.0.1","port":\#(peer.port)}}"#)
                #expect(forward["result"]?["id"]?.integerValue != nil, "\(forward)")
                let refused = try await Self.call(root, "server.listen", listen)
                Self.expectRefused(refused, .maxServersPerUser, max: 2)
                let unixPath = netd.folder.path + "/refused.sock"
                Self.expectRefused(try await Self.call(root, "server.listen", #"{"path":"\#(unixPath)"}"#), .maxServersPerUser, max: 2)
                #expect(!FileManager.default.fileExists(atPath: unixPath), "a refused listen creates no socket file")
                let status = try await Self.call(root, "netd.status")
                #expect(status["result"]?["users"]?.arrayValue?.first?["servers"] == .integer(2), "\(status)")

                let nobody = try await Self.asNobody(netd, "server.listen", listen)
                #expect(nobody["result"]?["state"] == .string("listening"), "\(nobody)")
                // Closing one gives the place back.
                _ = try await Self.call(root, "server.close", #"{"id":\#(id)}"#)
                #expect(try await Self.call(root, "server.listen", listen)["result"]?["state"] == .string("listening"))
                Self.expectRefused(try await Self.call(root, "server.listen", listen), .maxServersPerUser, max: 2)
            }
        }
    }

    @Test func aConnectionOverMaxSubscriptionsIsRefusedAndOthersSubscribe() async throws {
        try await withRunningDaemon(configure: { $0.maxSubscriptionsPerClient = 2 }) { netd in
            try await withRawConnection(netd.socketPath) { first in
                let one = try #require(try await Self.call(first, "events.subscribe", #"{"types":["connect"]}"#)["result"]?["subscription"]?.integerValue)
                #expect(try await Self.call(first, "events.subscribe", #"{"types":["close"]}"#)["result"]?["subscription"] != nil)
                Self.expectRefused(try await Self.call(first, "events.subscribe", #"{"types":["data"]}"#), .maxSubscriptionsPerClient, max: 2)
                let status = try await Self.call(first, "netd.status")
                #expect(status["result"]?["connection"]?["subscriptions"] == .integer(2), "\(status)")
                #expect(status["result"]?["limits"]?["max-subscriptions-per-client"] == .integer(2))
                let elsewhere = try await withRawConnection(netd.socketPath) { second in
                    try await Self.call(second, "events.subscribe")
                }
                #expect(elsewhere["result"]?["subscription"] != nil, "\(elsewhere)")
                // Ending one makes room for one more.
                #expect(try await Self.call(first, "events.unsubscribe", #"{"subscription":\#(one)}"#)["result"]?["ok"] == .bool(true))
                #expect(try await Self.call(first, "events.subscribe")["result"]?["subscription"] != nil)
            }
        }
    }

    @Test func statusReportsEveryLimitAndWhatEachUserHolds() async throws {
        try await Self.withSharedDaemon({ $0.limits.serversPerUser = 7 }) { netd in
            try await withRawConnection(netd.socketPath) { root in
                let server = try await Self.call(root, "server.listen", #"{"host":"127.0.0.1","port":0}"#)
                let port = try #require(server["result"]?["local"]?["port"]?.integerValue)
                _ = try await Self.call(root, "socket.connect", #"{"host":"127.0.0.1","port":\#(port)}"#)
                // A subscription to events that do not come here, so that no notification lands between answers.
                _ = try await Self.call(root, "events.subscribe", #"{"types":["fault"]}"#)
                let expected = Self.usage(uid: 0, clients: 1, sockets: 2, servers: 1)
                // The accepted socket is root's too once netd has taken it.
                var status = JSONValue.null
                let settled = try await eventually {
                    status = try await Self.call(root, "netd.status")
                    return status["result"]?["users"] == .array([expected])
                }
                #expect(settled, "\(status)")
                let limits = try #require(status["result"]?["limits"]?.objectValue)
                let defaults = NetdConfiguration(socketPath: "", databasePath: "").limitValues
                for limit in NetdLimit.allCases {
                    let value = limit == .maxServersPerUser ? 7 : try #require(defaults[limit])
                    #expect(limits[limit.rawValue] == .integer(Int64(value)), "\(limit.rawValue): \(limits)")
                }
                #expect(limits.count == NetdLimit.allCases.count)
                #expect(status["result"]?["connection"]?["subscriptions"] == .integer(1))
                // Another user sees only themselves; an admin sees everyone.
                let nobody = try await Self.asNobody(netd, "netd.status")
                #expect(nobody["result"]?["users"] == .array([Self.usage(uid: 65534, clients: 1)]), "\(nobody)")
                #expect(nobody["result"]?["limits"]?.objectValue?.count == NetdLimit.allCases.count)
            }
        }
    }
}
