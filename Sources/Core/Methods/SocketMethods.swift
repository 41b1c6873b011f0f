import Foundation
import NIOCore
import NetdProtocol

/// `socket.*`: thin handlers over ``ConnectionManager`` and ``ManagedSocket``.
struct SocketMethods: Sendable {
    let manager: ConnectionManager

    func register(in table: inout MethodTable) {
        let manager = self.manager
        table.on(SocketConnectMethod.self) { params, context in
            guard params.attach == true else { return try await manager.connect(params, context: context) }
            // Refused before connecting: a connection nobody could learn the id of helps no one.
            try ConnectionManager.checkCanAttach(context)
            let socket = try await manager.openClient(
                params, owner: Owner(uid: context.peer.uid, pid: context.peer.pid), serverID: nil,
                loop: context.eventLoop ?? manager.group.next())
            return try await manager.attach(socket, context: context)
        }
        table.on(SocketAttachMethod.self) { params, context in
            let socket = try manager.registry.socket(params.id, for: context)
            return SocketAttachMethod.Result(socket: try await manager.attach(socket, context: context))
        }
        table.on(SocketPipeMethod.self) { params, context in
            try await manager.pipe(params, context: context)
        }
        table.on(SocketHandoffMethod.self) { params, context in
            let socket = try manager.registry.socket(params.id, for: context)
            let (info, unread) = try await manager.handOff(socket, context: context)
            return SocketHandoffMethod.Result(socket: info, data: Data(unread).base64EncodedString())
        }
        table.on(SocketWriteMethod.self) { params, context -> Answer<SocketWriteMethod.Result> in
            let socket = try manager.registry.socket(params.id, for: context)
            let bytes = try ByteCoding.decode(params.data, params.encoding ?? .utf8)
            return .future(socket.writeFuture(bytes, flushes: context.flushes).map(SocketWriteMethod.Result.init(bytes:)))
        }
        table.on(SocketReadMethod.self) { params, context -> Answer<SocketReadMethod.Result> in
            let socket = try manager.registry.socket(params.id, for: context)
            let (maxBytes, encoding, waitMs) = (params.maxBytes ?? 65536, params.encoding ?? .utf8, params.waitMs ?? 0)
            // What is buffered is answered at once; only a read that waits for bytes suspends.
            if let ready = try socket.readNow(maxBytes: maxBytes, encoding: encoding, wait: waitMs > 0) { return .now(ready) }
            return .task {
                try await socket.read(maxBytes: maxBytes, encoding: encoding, wait: .milliseconds(waitMs), interrupted: { manager.isQuiescing })
            }
        }
        table.on(SocketEndMethod.self) { params, context in
            let socket = try manager.registry.socket(params.id, for: context)
            let bytes = try params.data.map { data throws(NetdError) in try ByteCoding.decode(data, params.encoding ?? .utf8) }
            try await socket.end(bytes)
            return socket.info()
        }
        table.on(SocketCloseMethod.self) { params, context in
            let socket = try manager.registry.socket(params.id, for: context)
            await socket.close(reset: params.reset ?? false)
            return socket.info()
        }
        table.on(SocketConfigureMethod.self) { params, context in
            let socket = try manager.registry.socket(params.id, for: context)
            if socket.kind == .tcp {
                let tcp = CInt(IPPROTO_TCP)
                if let noDelay = params.noDelay { try await socket.setSocketOption(level: tcp, name: TCP_NODELAY, value: noDelay ? 1 : 0) }
                if let keepAlive = params.keepAlive { try await socket.setSocketOption(level: SOL_SOCKET, name: SO_KEEPALIVE, value: keepAlive ? 1 : 0) }
                if let delay = params.keepAliveInitialDelayMs {
                    try await socket.setSocketOption(level: tcp, name: TCP_KEEPIDLE, value: CInt(max(1, delay / 1000)))
                }
            } else if params.noDelay != nil || params.keepAlive != nil || params.keepAliveInitialDelayMs != nil {
                throw NetdError.invalidParams("noDelay and keepAlive are for TCP sockets; socket \(params.id) is a Unix socket")
            }
            if let idle = params.idleTimeoutMs { try await socket.setIdleTimeout(milliseconds: idle) }
            return socket.info()
        }
        table.on(SocketGetMethod.self) { params, context -> Answer<SocketInfo> in
            do {
                return .now(try manager.registry.socket(params.id, for: context).info())
            } catch NetdError.notFound {
                // Closed long ago and no longer held in memory: history has it.
                return .task { try await manager.archivedSocket(params.id, for: context) }
            }
        }
        table.on(SocketListMethod.self) { params, context in
            var sockets: [SocketInfo] = []
            for socket in manager.registry.sockets(for: context) {
                if let role = params.role, socket.role != role { continue }
                if let kind = params.kind, socket.kind != kind { continue }
                if let server = params.server, socket.serverID != server { continue }
                if let label = params.label, socket.label != label { continue }
                let info = socket.info()
                if let state = params.state, info.state.rawValue != state { continue }
                sockets.append(info)
            }
            return SocketListMethod.Result(sockets: sockets)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
