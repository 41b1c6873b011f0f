import Foundation
import NetdProtocol

/// `netd.ping`, `netd.status` and `netd.methods`.
struct NetdMethods: Sendable {
    let startedAt: ContinuousClock.Instant
    let socketPath: String
    let databasePath: String
    let counts: @Sendable () -> (sockets: Int, servers: Int, clients: Int)
    let history: @Sendable () -> HistoryHealth

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
            history: history())
    }
}
