import Foundation
import NetdProtocol

/// `server.*`: thin handlers over ``ConnectionManager`` and ``ManagedServer``.
struct ServerMethods: Sendable {
    let manager: ConnectionManager

    func register(in table: inout MethodTable) {
        let manager = self.manager
        table.on(ServerListenMethod.self) { params, context in
            try await manager.listen(params, context: context)
        }
        table.on(ServerAcceptMethod.self) { params, context in
            let server = try manager.registry.server(params.id, for: context)
            if let target = server.forward {
                throw SocketErrors.invalidState(
                    "ERR_SERVER_FORWARDS", "server \(server.id) forwards every connection to \(target.description); there is nothing to accept")
            }
            if params.attach == true { try ConnectionManager.checkCanAttach(context) }
            if params.handoff == true { _ = try ConnectionManager.checkCanHandOff(context) }
            // While netd is being replaced nobody waits: the wait would outlive this netd.
            guard let socket = await server.claim(wait: manager.isQuiescing ? .zero : .milliseconds(params.waitMs ?? 0)) else {
                return ServerAcceptMethod.Result(socket: nil)
            }
            // Its record exists before the call that hands it out returns.
            await manager.ledger.committed(socket.recordSequence)
            if params.attach == true { return ServerAcceptMethod.Result(socket: try await manager.attach(socket, context: context)) }
            if params.handoff == true {
                let (info, unread) = try await manager.handOff(socket, context: context)
                return ServerAcceptMethod.Result(socket: info, data: Data(unread).base64EncodedString(), encoding: .base64)
            }
            return ServerAcceptMethod.Result(socket: socket.info())
        }
        table.on(ServerCloseMethod.self) { params, context in
            let server = try manager.registry.server(params.id, for: context)
            await manager.close(server)
            // Closed by its owner, a persisted listen is no longer made at start.
            if let row = server.persistedID { try? await manager.store.forgetPersistedListen(row) }
            if params.closeConnections == true {
                for socket in manager.registry.sockets(for: context) where socket.serverID == server.id {
                    await socket.close(reset: false)
                }
            }
            return server.info()
        }
        table.on(ServerHandoffMethod.self) { params, context in
            let server = try manager.registry.server(params.id, for: context)
            return ServerHandoffMethod.Result(server: try await manager.handOff(server, context: context))
        }
        table.on(ServerGetMethod.self) { params, context in
            try manager.registry.server(params.id, for: context).info()
        }
        table.on(ServerListMethod.self) { params, context in
            let servers = manager.registry.servers(for: context).map { $0.info() }.filter { info in
                (params.kind.map { info.kind == $0 } ?? true)
                    && (params.state.map { info.state.rawValue == $0 } ?? true)
                    && (params.label.map { info.label == $0 } ?? true)
                    && (params.role.map { $0 == .server } ?? true)
            }
            return ServerListMethod.Result(servers: servers)
        }
    }
}
