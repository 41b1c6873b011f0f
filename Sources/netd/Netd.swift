import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import NetdCore
import NetdProtocol

@main
struct Netd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netd",
        abstract: "Open, track and close TCP and Unix-socket connections for other processes, over JSON-RPC.",
        discussion: "Listens on a Unix socket for newline-delimited JSON-RPC 2.0 and records every connection in SQLite.",
        version: NetdVersion.current)

    @Option(help: "Socket to listen on (default: $NETD_SOCKET, $XDG_RUNTIME_DIR/netd/netd.sock, /tmp/netd-$UID/netd.sock).")
    var socket: String?

    @Flag(help: "Take over from the netd running on the socket: every connection, server, forward, pipe and stream goes on here without a drop, then it exits. With none running, start as usual.")
    var replace = false

    @Option(help: ArgumentHelp("Also admit this user (a name or a number; repeatable). Root and netd's own user are always admitted; others are refused as they connect.", valueName: "user"))
    var allowUid: [String] = []

    @Option(help: ArgumentHelp("Also admit the members of this group (a name or a number; repeatable).", valueName: "group"))
    var allowGroup: [String] = []

    @Option(help: ArgumentHelp("Make the members of this group admins, who see and touch every user's sockets and history (repeatable).", valueName: "group"))
    var adminGroup: [String] = []

    @Option(help: "Permissions of the socket file, in octal.")
    var socketMode: String = "0600"

    @Option(help: "History database (default: $NETD_DB, $XDG_STATE_HOME/netd/history.sqlite3, ~/.local/state/netd/history.sqlite3).")
    var db: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    /// Every default is the configuration's own, defined once there.
    private static let defaults = NetdConfiguration(socketPath: "", databasePath: "")

    @Option(help: "Event loops (threads) serving RPC clients and sockets (default: one per core).")
    var eventLoops: Int?

    @Option(help: "Longest request line in bytes; longer ones get Invalid Request.")
    var maxMessageBytes: Int = Self.defaults.maxMessageBytes

    @Option(help: "Close an RPC connection that has sent an incomplete request line for this long: 60s, 2m (0: never).")
    var rpcIdleTimeout: String = "60s"

    @Option(help: "Most RPC clients connected at once.")
    var maxClients: Int = Self.defaults.maxClients

    @Option(help: "Most RPC clients one user may have connected at once.")
    var maxClientsPerUser: Int = Self.defaults.maxClientsPerUser

    @Option(help: "Event subscriptions one RPC connection may hold; beyond it events.subscribe gets -32007.")
    var maxSubscriptionsPerClient: Int = Self.defaults.maxSubscriptionsPerClient

    @Option(help: "Requests one RPC connection may have waiting for an answer at once; beyond it they get -32007.")
    var maxRequestsPerClient: Int = Self.defaults.maxRequestsPerClient

    @Option(help: "Unread bytes a socket buffers before netd stops reading from the peer.")
    var maxBufferBytes: Int = Self.defaults.limits.socketBufferBytes

    @Option(help: "Live sockets one user may hold.")
    var maxSocketsPerUser: Int = Self.defaults.limits.socketsPerUser

    @Option(help: "Listening servers (forwards included) one user may hold.")
    var maxServersPerUser: Int = Self.defaults.limits.serversPerUser

    @Option(help: "Accepted sockets a server holds for server.accept before it stops accepting.")
    var maxPendingAccepts: Int = Self.defaults.limits.pendingPerServer

    @Option(help: "Relay threads that move the bytes of attached, piped and forwarded sockets with splice (default: one per core).")
    var relayThreads: Int = Self.defaults.limits.relayThreads

    @Option(help: "Capacity of each relay pipe in bytes (0: the kernel's default, 64 KiB); bounds what netd holds in flight per direction of a relay.")
    var relayPipeBytes: Int = Self.defaults.limits.relayPipeBytes

    @Option(help: "Delete closed records older than this, checked periodically: 30d, 12h, 90m (default: keep all).")
    var retain: String?

    @Option(help: ArgumentHelp(
        "Serve Prometheus metrics at http://HOST:PORT/metrics: 127.0.0.1:9464, [::1]:9464, :9464 (every address).",
        valueName: "host:port"))
    var metrics: String?

    @Option(help: "History changes held in memory while the database cannot be written; beyond it they are given up and counted.")
    var maxHistoryQueue: Int = Self.defaults.historyQueueLimit

    func validate() throws {
        guard parsedSocketMode != nil else { throw ValidationError("--socket-mode must be octal, such as 0600 or 0660") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let eventLoops, !(1...256).contains(eventLoops) { throw ValidationError("--event-loops must be from 1 to 256") }
        guard maxMessageBytes >= 1024 else { throw ValidationError("--max-message-bytes must be at least 1024") }
        guard rpcIdleTimeout == "0" || (DurationText.milliseconds(rpcIdleTimeout) ?? 0) >= 100 else {
            throw ValidationError("--rpc-idle-timeout must be 0 or a duration of at least 100ms, such as 60s")
        }
        guard maxClients >= 1 else { throw ValidationError("--max-clients must be at least 1") }
        guard maxClientsPerUser >= 1 else { throw ValidationError("--max-clients-per-user must be at least 1") }
        guard maxSubscriptionsPerClient >= 1 else { throw ValidationError("--max-subscriptions-per-client must be at least 1") }
        guard maxServersPerUser >= 1 else { throw ValidationError("--max-servers-per-user must be at least 1") }
        guard maxRequestsPerClient >= 1 else { throw ValidationError("--max-requests-per-client must be at least 1") }
        guard maxBufferBytes >= 4096 else { throw ValidationError("--max-buffer-bytes must be at least 4096") }
        guard maxSocketsPerUser >= 1 else { throw ValidationError("--max-sockets-per-user must be at least 1") }
        guard (1...256).contains(relayThreads) else { throw ValidationError("--relay-threads must be from 1 to 256") }
        guard relayPipeBytes == 0 || (4096...(1 << 20)).contains(relayPipeBytes) else {
            throw ValidationError("--relay-pipe-bytes must be 0 (the kernel's default) or from 4096 to 1048576")
        }
        guard maxPendingAccepts >= 1 else { throw ValidationError("--max-pending-accepts must be at least 1") }
        if let retain, (DurationText.milliseconds(retain) ?? 0) < 1000 {
            throw ValidationError("--retain must be a duration of at least a second, such as 30d, 12h or 90m")
        }
        if let metrics, Self.metricsAddress(metrics) == nil {
            throw ValidationError("--metrics \(metrics): give HOST:PORT, [IPv6]:PORT or :PORT with a port from 1 to 65535")
        }
        guard maxHistoryQueue >= 1000 else { throw ValidationError("--max-history-queue must be at least 1000") }
        if let unknown = allowUid.first(where: { AccessPolicy.uid($0) == nil }) { throw ValidationError("--allow-uid \(unknown): no such user") }
        if let unknown = (allowGroup + adminGroup).first(where: { AccessPolicy.gid($0) == nil }) { throw ValidationError("no such group: \(unknown)") }
    }

    /// `HOST:PORT`, `[IPv6]:PORT`, or `:PORT` for every address.
    static func metricsAddress(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        var host = text[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() } else if host.contains(":") { return nil }
        return (host.isEmpty ? "::" : String(host), port)
    }

    private var parsedSocketMode: UInt32? {
        UInt32(socketMode, radix: 8).flatMap { $0 <= 0o777 ? $0 : nil }
    }

    func run() async throws {
        // Before anything touches NIO's shared event loops.
        if let eventLoops { Daemon.useEventLoops(eventLoops) }
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "netd")
        let openFiles = ResourceLimits.raiseOpenFileLimit()

        // Started by systemd with the socket already bound (netd.socket): serve on it, where it is.
        let activated: SocketActivation.Inherited?
        do {
            activated = try SocketActivation.take()
        } catch {
            FileHandle.standardError.write(Data("netd: \(error.description)\n".utf8))
            throw ExitCode.failure
        }
        if let activated, let socket, socket != activated.path {
            logger.warning("socket-activated: serving on the socket systemd passed, not --socket", metadata: [
                "rpc.socket": "\(activated.path)", "netd.socket_flag": "\(socket)",
            ])
        }
        var configuration = NetdConfiguration(
            socketPath: activated?.path ?? NetdPaths.socket(flag: socket),
            databasePath: NetdPaths.database(flag: db))
        configuration.activatedListener = activated?.descriptor
        configuration.socketMode = parsedSocketMode ?? 0o600
        configuration.maxMessageBytes = maxMessageBytes
        configuration.maxClients = maxClients
        configuration.maxRequestsPerClient = maxRequestsPerClient
        configuration.maxClientsPerUser = maxClientsPerUser
        configuration.maxSubscriptionsPerClient = maxSubscriptionsPerClient
        configuration.limits.serversPerUser = maxServersPerUser
        configuration.limits.socketBufferBytes = maxBufferBytes
        configuration.limits.socketsPerUser = maxSocketsPerUser
        configuration.limits.pendingPerServer = maxPendingAccepts
        configuration.limits.relayThreads = relayThreads
        configuration.limits.relayPipeBytes = relayPipeBytes
        configuration.retain = retain.flatMap(DurationText.milliseconds).map { .milliseconds($0) }
        configuration.historyQueueLimit = maxHistoryQueue
        configuration.replace = replace
        configuration.rpcIdleTimeout = rpcIdleTimeout == "0" ? nil : DurationText.milliseconds(rpcIdleTimeout).map { .milliseconds($0) }
        configuration.access = AccessPolicy(
            allowedUIDs: Set(allowUid.compactMap(AccessPolicy.uid)), allowedGroups: Set(allowGroup.compactMap(AccessPolicy.gid)),
            adminGroups: Set(adminGroup.compactMap(AccessPolicy.gid)))
        if let metrics, let (host, port) = Self.metricsAddress(metrics) {
            // Everything netd counts through swift-metrics lands in this registry, which
            // MetricsEndpoint renders in Prometheus's text format.
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            configuration.metrics = (host, port, registry)
        }
        // A file size limit (or a full disk) must fail history writes, which netd reports and
        // retries, not kill netd with SIGXFSZ.
        signal(SIGXFSZ, SIG_IGN)

        let daemon: Daemon
        do {
            daemon = try await Daemon.start(configuration: configuration, handleSignals: true, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("netd: \(error.description)\n".utf8))
            throw ExitCode.failure
        }
        logger.info("netd started", metadata: [
            "netd.version": "\(NetdVersion.current)",
            "netd.pid": "\(ProcessInfo.processInfo.processIdentifier)",
            "rpc.socket": "\(configuration.socketPath)",
            "history.path": "\(configuration.databasePath)",
            "netd.open_files": "\(openFiles)",
            "rpc.socket_activated": "\(activated != nil)",
        ])
        SystemdNotify.send("READY=1")
        try await daemon.run()
        logger.info("netd stopped")
    }
}
