import CoreMetrics
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NetdLocks
import NetdProtocol
import Prometheus
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// What a scrape reads off netd's state at that moment.
public struct MetricsSample: Sendable {
    public var sockets: Int
    public var servers: Int
    public var clients: Int
    /// Bytes of every socket so far, open and closed, each way.
    public var bytesRead: Int64
    public var bytesWritten: Int64
    public var historyQueued: Int
    public var historyHealthy: Bool
    /// Faults present, by type, and the connections each type acts on.
    public var faults: [FaultType: (count: Int, hits: Int)]
}

/// `--metrics HOST:PORT`: Prometheus's text format at `GET /metrics`, from swift-prometheus's
/// registry (which swift-metrics feeds); everything else gets 404. Each scrape first sets the
/// gauges and byte counters from a ``MetricsSample`` of netd's state.
public final class MetricsEndpoint: Service, Sendable {
    private let channel: any Channel
    private let logger: Logger
    public let address: SocketAddress

    public static func bind(
        host: String, port: Int, registry: PrometheusCollectorRegistry, sample: @escaping @Sendable () -> MetricsSample, logger: Logger
    ) async throws -> MetricsEndpoint {
        let exporter = Exporter(registry: registry, sample: sample)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // So that `netd --replace` serves on the same port while the netd it replaces still does.
            .serverChannelOption(ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SocketOptionName(SO_REUSEPORT)), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(ScrapeHandler(exporter: exporter))
                }
            }
            .bind(host: host, port: port).get()
        return MetricsEndpoint(channel: channel, logger: logger)
    }

    private init(channel: any Channel, logger: Logger) {
        self.channel = channel
        self.logger = logger
        self.address = channel.localAddress!
    }

    /// Stops serving, for a netd that does not start after all.
    func close() {
        channel.close(promise: nil)
    }

    public func run() async throws {
        logger.info("serving metrics", metadata: ["metrics.address": "\(address)"])
        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            self.channel.close(promise: nil)
        }
    }
}

/// Turns a sample into the registry's gauges and counters, then renders the registry.
private final class Exporter: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let sample: @Sendable () -> MetricsSample
    private let sockets = CoreMetrics.Gauge(label: "netd_sockets")
    private let servers = CoreMetrics.Gauge(label: "netd_servers")
    private let clients = CoreMetrics.Gauge(label: "netd_rpc_clients")
    private let historyQueued = CoreMetrics.Gauge(label: "netd_history_queue")
    private let historyHealthy = CoreMetrics.Gauge(label: "netd_history_healthy")
    private let bytesRead = CoreMetrics.Counter(label: "netd_bytes_total", dimensions: [("direction", "read")])
    private let bytesWritten = CoreMetrics.Counter(label: "netd_bytes_total", dimensions: [("direction", "written")])
    private let faults: [FaultType: (count: CoreMetrics.Gauge, hits: CoreMetrics.Gauge)]
    /// What the byte counters were given so far: a counter only goes up, by the difference.
    private let exported = Locked<(read: Int64, written: Int64)>((0, 0))

    init(registry: PrometheusCollectorRegistry, sample: @escaping @Sendable () -> MetricsSample) {
        self.registry = registry
        self.sample = sample
        var faults: [FaultType: (count: CoreMetrics.Gauge, hits: CoreMetrics.Gauge)] = [:]
        for type in FaultType.allCases {
            faults[type] = (
                CoreMetrics.Gauge(label: "netd_faults", dimensions: [("type", type.rawValue)]),
                CoreMetrics.Gauge(label: "netd_fault_connections", dimensions: [("type", type.rawValue)])
            )
        }
        self.faults = faults
    }

    func render() -> [UInt8] {
        let now = sample()
        sockets.record(now.sockets)
        servers.record(now.servers)
        clients.record(now.clients)
        historyQueued.record(now.historyQueued)
        historyHealthy.record(now.historyHealthy ? 1 : 0)
        for (type, gauges) in faults {
            let present = now.faults[type]
            gauges.count.record(present?.count ?? 0)
            gauges.hits.record(present?.hits ?? 0)
        }
        let (read, written) = exported.withLock { exported -> (Int64, Int64) in
            let delta = (max(0, now.bytesRead - exported.read), max(0, now.bytesWritten - exported.written))
            exported = (max(exported.read, now.bytesRead), max(exported.written, now.bytesWritten))
            return delta
        }
        if read > 0 { bytesRead.increment(by: read) }
        if written > 0 { bytesWritten.increment(by: written) }
        return registry.emitToBuffer()
    }
}

/// One HTTP request at a time per connection: `GET /metrics` (or HEAD) answers the registry.
private final class ScrapeHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let exporter: Exporter

    init(exporter: Exporter) {
        self.exporter = exporter
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let request) = unwrapInboundIn(data) else { return }
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        var headers = HTTPHeaders()
        let status: HTTPResponseStatus
        var body = context.channel.allocator.buffer(capacity: 0)
        if path == "/metrics" && (request.method == .GET || request.method == .HEAD) {
            status = .ok
            headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
            let text = exporter.render()
            if request.method == .GET { body.writeBytes(text) }
            headers.add(name: "Content-Length", value: String(text.count))
        } else {
            status = path == "/metrics" ? .methodNotAllowed : .notFound
            body.writeString("netd serves Prometheus metrics at GET /metrics\n")
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            headers.add(name: "Content-Length", value: String(body.readableBytes))
        }
        if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !request.isKeepAlive {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
