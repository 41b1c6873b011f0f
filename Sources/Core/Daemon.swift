import Logging
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
        let store: HistoryStore
        do {
            store = try HistoryStore(path: configuration.databasePath, logger: logger)
            try store.closeLostRecords()
        } catch let error as HistoryStore.OpenError {
            throw StartError(description: error.description)
        } catch {
            throw StartError(description: "cannot prepare the history database \(configuration.databasePath): \(error)")
        }

        let clients = ClientTable(limit: configuration.maxClients)
        var table = MethodTable()
        NetdMethods(
            startedAt: startedAt,
            socketPath: configuration.socketPath,
            databasePath: configuration.databasePath,
            counts: { (sockets: 0, servers: 0, clients: clients.count) }
        ).register(in: &table)

        let server: RPCServer
        do {
            server = try await RPCServer.bind(
                configuration: configuration, dispatcher: Dispatcher(table), clients: clients, logger: logger)
        } catch let refusal as SocketFile.Refusal {
            try? store.close()
            throw StartError(description: refusal.description)
        } catch {
            try? store.close()
            throw StartError(description: "cannot listen on \(configuration.socketPath): \(error)")
        }

        var groupConfiguration = ServiceGroupConfiguration(
            services: [
                // Shut down in reverse order: the server stops first, then the store closes.
                .init(service: StoreService(store: store, logger: logger)),
                .init(service: server),
            ],
            gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
            logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(10)
        groupConfiguration.maximumCancellationDuration = .seconds(5)
        return Daemon(configuration: configuration, group: ServiceGroup(configuration: groupConfiguration), store: store)
    }

    private init(configuration: NetdConfiguration, group: ServiceGroup, store: HistoryStore) {
        self.configuration = configuration
        self.group = group
        self.store = store
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
