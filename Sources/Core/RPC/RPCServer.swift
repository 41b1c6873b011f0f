import Foundation
import Logging
import NIOCore
import NIOPosix
import NetdFraming
import NetdProtocol
import ServiceLifecycle

/// netd's listening socket: accepts RPC clients, reads each one's credentials, and serves them
/// until graceful shutdown, which stops accepting, stops reading, lets requests in flight finish,
/// and removes the socket file.
public final class RPCServer: Service, Sendable {
    typealias ClientChannel = NIOAsyncChannel<RPCFrame, ByteBuffer>

    private let listener: NIOAsyncChannel<ClientChannel, Never>
    private let socketFile: SocketFile
    private let dispatcher: Dispatcher
    private let clients: ClientTable
    private let maxMessageBytes: Int
    private let maxRequestsPerClient: Int
    private let logger: Logger
    /// Told when an RPC connection ends, so that what it subscribed to ends with it.
    private let onDisconnect: @Sendable (Int) -> Void

    var clientCount: Int { clients.count }

    /// Binds the socket, refusing a live one or a path that is not a socket.
    static func bind(
        configuration: NetdConfiguration,
        dispatcher: Dispatcher,
        clients: ClientTable,
        onDisconnect: @escaping @Sendable (Int) -> Void,
        logger: Logger
    ) async throws -> RPCServer {
        var socketFile = SocketFile(path: configuration.socketPath)
        try socketFile.prepare(createFolder: true)
        let maxMessageBytes = configuration.maxMessageBytes
        let fd = try socketFile.bindListening(mode: configuration.socketMode)
        let listener: NIOAsyncChannel<ClientChannel, Never>
        do {
            listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.backlog, value: 1024)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .bind(fd) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ImmediateRequests(dispatcher: dispatcher, maximumLineBytes: maxMessageBytes))
                        return try ClientChannel(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            socketFile.remove()
            throw error
        }
        return RPCServer(
            listener: listener, socketFile: socketFile, dispatcher: dispatcher, clients: clients,
            maxMessageBytes: maxMessageBytes, maxRequestsPerClient: configuration.maxRequestsPerClient,
            onDisconnect: onDisconnect, logger: logger)
    }

    private init(
        listener: NIOAsyncChannel<ClientChannel, Never>, socketFile: SocketFile, dispatcher: Dispatcher,
        clients: ClientTable, maxMessageBytes: Int, maxRequestsPerClient: Int, onDisconnect: @escaping @Sendable (Int) -> Void, logger: Logger
    ) {
        self.onDisconnect = onDisconnect
        self.listener = listener
        self.socketFile = socketFile
        self.dispatcher = dispatcher
        self.clients = clients
        self.maxMessageBytes = maxMessageBytes
        self.maxRequestsPerClient = maxRequestsPerClient
        self.logger = logger
    }

    public func run() async throws {
        defer { socketFile.remove() }
        logger.info("listening", metadata: ["rpc.socket": "\(socketFile.path)"])
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await listener.executeThenClose { inbound in
                    for try await client in inbound {
                        group.addTask(executorPreference: EventLoopTaskExecutor(client.channel.eventLoop)) {
                            await self.serve(client)
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            self.logger.info("shutting down: no new clients, finishing requests in flight")
            self.listener.channel.close(promise: nil)
            self.clients.stopReading()
        }
        logger.info("stopped listening", metadata: ["rpc.socket": "\(socketFile.path)"])
    }

    /// Serves one RPC client until it hangs up or netd shuts down. Never throws: one client's
    /// trouble is never the server's.
    private func serve(_ client: ClientChannel) async {
        let peer: PeerCredentials
        do {
            peer = try await PeerCredentials.read(from: client.channel)
        } catch {
            logger.warning("cannot read an RPC client's credentials; closing it", metadata: ["error": "\(error)"])
            try? await client.channel.close()
            return
        }
        let connectionID: Int
        switch clients.admit(client.channel) {
        case .admitted(let id):
            connectionID = id
        case .closing:
            try? await client.channel.close()
            return
        case .full:
            await refuseFull(client, peer: peer)
            return
        }
        defer {
            clients.remove(connectionID)
            onDisconnect(connectionID)
        }

        var logger = self.logger
        logger[metadataKey: "rpc.client.pid"] = "\(peer.pid)"
        logger[metadataKey: "rpc.client.uid"] = "\(peer.uid)"
        logger[metadataKey: "rpc.connection"] = "\(connectionID)"
        logger.debug("client connected")
        var context = RequestContext(peer: peer, connectionID: connectionID, logger: logger)
        context.eventLoop = client.channel.eventLoop
        do {
            try await client.executeThenClose { inbound, outbound in
                context.notify = { line in try await outbound.write(line) }
                let session = RPCSession(context: context, dispatcher: dispatcher, outbound: outbound)
                // From here the event loop answers what needs no waiting by itself.
                let admitted = context
                try await client.channel.eventLoop.submit {
                    try client.channel.pipeline.syncOperations.handler(type: ImmediateRequests.self).requestContext = admitted
                }.get()
                let scope = RequestScope(limit: maxRequestsPerClient)
                client.channel.closeFuture.whenComplete { _ in scope.connectionClosed() }
                try await withThrowingDiscardingTaskGroup { requests in
                    // Ends the group when all is answered, or cancels what waits when the client goes.
                    requests.addTask { try await scope.waitForEnd() }
                    for try await frame in inbound {
                        switch frame {
                        case .decoded(let decoded):
                            let calls = decoded.callCount
                            guard scope.admit(calls) else {
                                await session.refuseBusy(decoded, limit: scope.limit)
                                continue
                            }
                            requests.addTask {
                                await session.serve(decoded)
                                scope.finished(calls)
                            }
                        case .oversized(let bytes):
                            await session.refuseOversized(bytes: bytes, limit: maxMessageBytes)
                        }
                    }
                    scope.inputEnded()
                }
            }
        } catch {
            logger.debug("client connection ended with an error", metadata: ["error": "\(error)"])
        }
        logger.debug("client disconnected")
    }

    private func refuseFull(_ client: ClientChannel, peer: PeerCredentials) async {
        logger.warning("refusing an RPC client: too many", metadata: ["rpc.client.pid": "\(peer.pid)", "rpc.clients.limit": "\(clients.limit)"])
        let error = ResponseError.netd(
            .limitReached, "EMFILE", "too many RPC clients connected (limit \(clients.limit), --max-clients)")
        try? await client.executeThenClose { _, outbound in
            let line = try ResponseMessage(id: .null, outcome: .error(error)).line(encoder: JSONCoding.encoder())
            try await outbound.write(ByteBuffer(bytes: line))
        }
    }
}
