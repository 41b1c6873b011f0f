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
            guard let socket = await server.claim(wait: .milliseconds(params.waitMs ?? 0)) else {
                return ServerAcceptMethod.Result(socket: nil)
            }
            // Its record exists before the call that hands it out returns.
            await manager.ledger.committed(socket.recordSequence)
            return ServerAcceptMethod.Result(socket: socket.info())
        }
        table.on(ServerCloseMethod.self) { params, context in
            let server = try manager.registry.server(params.id, for: context)
            await manager.close(server)
            if params.closeConnections == true {
                for socket in manager.registry.sockets(for: context) where socket.serverID == server.id {
                    await socket.close(reset: false)
                }
            }
            return server.info()
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
