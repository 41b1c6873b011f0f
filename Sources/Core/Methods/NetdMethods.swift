import Foundation
import NetdProtocol

/// `netd.ping`, `netd.status` and `netd.methods`.
struct NetdMethods: Sendable {
    let startedAt: ContinuousClock.Instant
    let socketPath: String
    let databasePath: String
    let counts: @Sendable () -> (sockets: Int, servers: Int, clients: Int)
    let history: @Sendable () -> HistoryHealth
    /// Every limit's value, by name.
    let limits: [NetdLimit: Int]
    /// What each user holds: RPC clients, live sockets, listening servers.
    let usage: @Sendable () -> (clients: [UInt32: Int], sockets: [UInt32: Int], servers: [UInt32: Int])
    /// Subscriptions held by an RPC connection.
    let subscriptions: @Sendable (_ connectionID: Int) -> Int

    func register(in table: inout MethodTable) {
        table.on(PingMethod.self, always: PingMethod.Result())
        table.on(StatusMethod.self) { _, context in status(for: context) }
        table.on(MethodsMethod.self, always: MethodsMethod.Result(methods: MethodRegistry.descriptions))
    }

    private func status(for context: RequestContext) -> StatusMethod.Result {
        let uptime = ContinuousClock.now - startedAt
        let (sockets, servers, clients) = counts()
        return StatusMethod.Result(
            version: NetdVersion.current,
            pid: ProcessInfo.processInfo.processIdentifier,
            uptimeMs: uptime.components.seconds * 1000 + uptime.components.attoseconds / 1_000_000_000_000_000,
            socket: socketPath,
            database: databasePath,
            sockets: sockets,
            servers: servers,
            clients: clients,
            caller: .init(uid: context.peer.uid, pid: context.peer.pid, admin: context.isAdmin),
            history: history(),
            limits: Dictionary(uniqueKeysWithValues: limits.map { ($0.key.rawValue, $0.value) }),
            users: users(for: context),
            connection: .init(subscriptions: subscriptions(context.connectionID)))
    }

    private func users(for context: RequestContext) -> [StatusMethod.UserUsage] {
        let (clients, sockets, servers) = usage()
        let uids = context.isAdmin ? Set(clients.keys).union(sockets.keys).union(servers.keys) : [context.peer.uid]
        return uids.sorted().map { uid in
            StatusMethod.UserUsage(uid: uid, clients: clients[uid] ?? 0, sockets: sockets[uid] ?? 0, servers: servers[uid] ?? 0)
        }
    }
}
