import Foundation
import Logging
import NIOCore
import NetdProtocol
import NetdStore
import ServiceLifecycle

/// netd as a whole: the history store and the RPC server, run as a service group that shuts down
/// gracefully on SIGTERM and SIGINT (or when ``shutdown()`` is called, as tests do).
public final class Daemon: Sendable {
    /// Why netd could not start; `description` is the one line it prints before exiting non-zero.
    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    public let configuration: NetdConfiguration
    private let group: ServiceGroup
    private let store: HistoryStore

    /// Opens the database and binds the socket, so that every reason not to run is known before running.
    public static func start(
        configuration: NetdConfiguration,
        handleSignals: Bool,
        logger: Logger
    ) async throws(StartError) -> Daemon {
        let startedAt = ContinuousClock.now
        // With --replace and a netd answering on the socket, its open records are not lost: they go on here.
        let takingOver = configuration.replace && SocketFile.probe(configuration.socketPath) == .live
        let store: HistoryStore
        do {
            store = try HistoryStore(path: configuration.databasePath, logger: logger)
            if !takingOver { try store.closeLostRecords() }
        } catch let error as HistoryStore.OpenError {
            throw StartError(description: error.description)
        } catch {
            throw StartError(description: "cannot prepare the history database \(configuration.databasePath): \(error)")
        }

        let metrics = NetdMetrics()
        let writer = HistoryWriter(
            store: store, logger: logger, queueLimit: configuration.historyQueueLimit,
            onCommit: { took, changes in
                metrics.historyWrite.recordNanoseconds(Int64(took.components.seconds) * 1_000_000_000 + took.components.attoseconds / 1_000_000_000)
                metrics.historyBatch.record(changes)
            })
        let events = EventHub()
        let manager: ConnectionManager
        do {
            manager = try ConnectionManager(
                store: store, history: writer, events: events, limits: configuration.limits, metrics: metrics, logger: logger)
        } catch {
            try? store.close()
            throw StartError(description: "cannot read the history database \(configuration.databasePath): \(error)")
        }
        let clients = ClientTable(limit: configuration.maxClients, perUserLimit: configuration.maxClientsPerUser)
        var table = MethodTable()
        NetdMethods(
            startedAt: startedAt,
            socketPath: configuration.socketPath,
            databasePath: configuration.databasePath,
            counts: {
                let (sockets, servers) = manager.registry.counts
                return (sockets: sockets, servers: servers, clients: clients.count)
            },
            history: {
                let health = writer.health
                return HistoryHealth(
                    healthy: health.healthy, queued: health.queued, failures: health.failures,
                    lastError: health.lastFailure, lastErrorAt: health.lastFailureAt.map(Timestamp.format),
                    dropped: health.dropped + health.rejected, lastCommitAt: health.lastCommitAt.map(Timestamp.format))
            },
            limits: configuration.limitValues,
            usage: {
                let (sockets, servers) = manager.registry.perUser
                return (clients: clients.perUser, sockets: sockets, servers: servers)
            },
            subscriptions: { events.count(connectionID: $0) }
        ).register(in: &table)
        SocketMethods(manager: manager).register(in: &table)
        ServerMethods(manager: manager).register(in: &table)
        EventMethods(hub: events, limit: configuration.maxSubscriptionsPerClient).register(in: &table)
        HistoryMethods(manager: manager, store: store).register(in: &table)
        FaultMethods(manager: manager).register(in: &table)
        let replacement = Replacement(manager: manager, clients: clients, writer: writer, logger: logger)
        replacement.register(in: &table)

        var endpoint: MetricsEndpoint?
        if let wanted = configuration.metrics {
            do {
                endpoint = try await MetricsEndpoint.bind(
                    host: wanted.host, port: wanted.port, registry: wanted.registry, sample: Self.sampler(manager, clients, writer, metrics),
                    logger: logger)
            } catch {
                try? store.close()
                throw StartError(description: "cannot serve metrics on \(wanted.host):\(wanted.port): \(error)")
            }
        }
        var takeover: Takeover?
        if takingOver {
            do {
                takeover = try await Takeover.begin(socketPath: configuration.socketPath)
            } catch {
                try? store.close()
                throw StartError(description: "cannot take over from the running netd: \(error.description)")
            }
        }
        let server: RPCServer
        let received = ContinuousClock.now
        do {
            if let takeover {
                try manager.checkAdoptable(takeover.handover, descriptors: takeover.descriptors)
                try await manager.adopt(takeover.handover, descriptors: takeover.descriptors)
            }
            server = try await RPCServer.bind(
                configuration: configuration, dispatcher: Dispatcher(table, metrics: metrics), clients: clients,
                listener: takeover.map { takeover in
                    let descriptor = takeover.descriptors[takeover.handover.listener]
                    return takeover.handover.listenerActivated == true ? .activated(descriptor) : .handedOver(descriptor)
                }
                    ?? configuration.activatedListener.map { .activated($0) },
                onDisconnect: { events.dropConnection($0) }, logger: logger)
        } catch {
            let reason: String =
                if let refusal = error as? SocketFile.Refusal { refusal.description }
                else if let error = error as? NetdError { error.rpcMessage }
                else { "cannot listen on \(configuration.socketPath): \(error)" }
            endpoint?.close()
            if let takeover {
                await takeover.refuse(reason)
                try? store.close()
                throw StartError(description: "cannot take over from the running netd (pid \(takeover.previousPID)), which goes on serving: \(reason)")
            }
            try? store.close()
            throw StartError(description: reason)
        }
        if let takeover {
            let adopted = ContinuousClock.now - received
            let answer = await takeover.confirm()
            SystemdNotify.send("MAINPID=\(getpid())\nREADY=1")
            logger.notice("took over from the running netd", metadata: [
                "netd.previous_pid": "\(takeover.previousPID)", "netd.previous_version": "\(takeover.handover.version)",
                "netd.sockets": "\(takeover.handover.sockets.count)", "netd.servers": "\(takeover.handover.servers.count)",
                "netd.pairs": "\(takeover.handover.pairs.count)", "netd.previous_answer": "\(answer)",
                "replace.take_in_ms": adopted.millisecondsText,
            ])
        }

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
                // Shut down in reverse order: the RPC server stops first, then every socket and
                // server closes (their records with them), then history is flushed, then the store closes.
                .init(service: StoreService(store: store, logger: logger)),
                .init(service: HistoryService(writer: writer)),
                .init(service: RetentionService(store: store, manager: manager, retain: configuration.retain, logger: logger)),
                // Taken over, the persisted listens are listening already: they came with the rest.
                .init(service: ConnectionsService(manager: manager, restoresListens: takeover == nil, logger: logger)),
                .init(service: server),
        ]
        if let endpoint { services.append(.init(service: endpoint)) }
        var groupConfiguration = ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
            logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(10)
        groupConfiguration.maximumCancellationDuration = .seconds(5)
        let group = ServiceGroup(configuration: groupConfiguration)
        replacement.attach(server: server, shutdown: { await group.triggerGracefulShutdown() })
        return Daemon(configuration: configuration, group: group, store: store)
    }

    private init(configuration: NetdConfiguration, group: ServiceGroup, store: HistoryStore) {
        self.configuration = configuration
        self.group = group
        self.store = store
    }

    /// How many event loops (threads) serve RPC clients and sockets; one per core unless set.
    ///
    /// - Important: Call it once, before anything else in the process uses NIO.
    public static func useEventLoops(_ count: Int) {
        NIOSingletons.groupLoopCountSuggestion = count
    }

    /// What a metrics scrape reads off netd's state.
    private static func sampler(
        _ manager: ConnectionManager, _ clients: ClientTable, _ writer: HistoryWriter, _ metrics: NetdMetrics
    ) -> @Sendable () -> MetricsSample {
        {
            let (sockets, servers) = manager.registry.counts
            var (read, written) = metrics.closedBytes
            for socket in manager.registry.all().sockets {
                let info = socket.info()
                guard info.state != .closed else { continue }
                read += info.bytesRead
                written += info.bytesWritten
            }
            var faults: [FaultType: (count: Int, hits: Int)] = [:]
            for fault in manager.faults.all.map(\.info) {
                faults[fault.type, default: (0, 0)].count += 1
                faults[fault.type, default: (0, 0)].hits += fault.hit
            }
            let health = writer.health
            return MetricsSample(
                sockets: sockets, servers: servers, clients: clients.count, bytesRead: read, bytesWritten: written,
                historyQueued: health.queued, historyHealthy: health.healthy, faults: faults)
        }
    }

    /// Serves until shut down by a signal or ``shutdown()``.
    public func run() async throws {
        try await group.run()
    }

    /// Starts a graceful shutdown: stop accepting, finish requests in flight, close the database.
    public func shutdown() async {
        await group.triggerGracefulShutdown()
    }
}

/// Runs the history writer; on shutdown, writes what is queued and stops.
struct HistoryService: Service {
    let writer: HistoryWriter

    func run() async throws {
        await withGracefulShutdownHandler {
            await writer.run()
        } onGracefulShutdown: {
            writer.stop()
        }
    }
}

/// Prunes closed records older than `--retain`, at start and then periodically (a tenth of the
/// retention period, between a second and an hour), in batches that never hold the writer long.
struct RetentionService: Service {
    let store: HistoryStore
    let manager: ConnectionManager
    let retain: Duration?
    let logger: Logger

    func run() async throws {
        guard let retain else {
            try? await gracefulShutdown()
            return
        }
        let interval = min(max(retain / 10, .seconds(1)), .seconds(3600))
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let cutoff = Date().addingTimeInterval(-Double(retain.components.seconds) - Double(retain.components.attoseconds) / 1e18)
            do {
                let deleted = try await store.prune(closedBefore: Timestamp.format(cutoff))
                await manager.registry.forgetPruned(closedBefore: Timestamp.format(cutoff), ownerUID: nil)
                if deleted > 0 {
                    logger.info("pruned history by --retain", metadata: ["history.deleted": "\(deleted)"])
                }
            } catch {
                logger.error("cannot prune history; will try again", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}

/// Holds sockets and servers while netd runs: makes the persisted listens again at start (each
/// failure logged and recorded), and on shutdown closes them all.
struct ConnectionsService: Service {
    let manager: ConnectionManager
    let restoresListens: Bool
    let logger: Logger

    func run() async throws {
        if restoresListens { await manager.restorePersistedListens(logger: logger) }
        try? await gracefulShutdown()
        await manager.closeAll()
    }
}

/// Keeps the store open while netd runs and closes it last.
struct StoreService: Service {
    let store: HistoryStore
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        try store.close()
        logger.info("history database closed", metadata: ["history.path": "\(store.path)"])
    }
}
