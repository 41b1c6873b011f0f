import NIOCore
import NIOPosix

/// The load generator: request/response over Unix sockets for any protocol whose answers are one
/// line each, which covers netd's JSON-RPC (`{"jsonrpc":"2.0","id":1,"method":"netd.ping"}\n`)
/// and Redis's RESP (`*1\r\n$4\r\nPING\r\n` answered `+PONG\r\n`). One client drives netd and
/// its peers alike, so their figures compare.
///
/// Each connection keeps `depth` requests in flight (1: one at a time; 32: pipelined), all on its
/// event loop; latency is from a request's write to its answer's last byte, answers taken in order.
enum LoadGenerator {
    struct Result: Sendable {
        var completed: Int
        var seconds: Double
        /// Microseconds.
        var latencies: [Double]

        var perSecond: Double { Double(completed) / seconds }
    }

    /// - Parameters:
    ///   - requests: what each connection sends (connection `n` sends `requests[n % count]`).
    ///   - linesPerAnswer: lines in one answer (Redis answers GET with two).
    static func run(
        path: String, requests: [String], linesPerAnswer: Int = 1, connections: Int, depth: Int, duration: Duration,
        warmup: Duration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> Result {
        try await run(
            path: path, connections: connections, duration: duration, warmup: warmup, group: group,
            makeHandler: { index in RequestLoop(request: requests[index % requests.count], depth: depth, linesPerAnswer: linesPerAnswer) })
    }

    static func run(
        path: String, request: String, connections: Int, depth: Int, duration: Duration, warmup: Duration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> Result {
        try await run(path: path, requests: [request], connections: connections, depth: depth, duration: duration, warmup: warmup, group: group)
    }

    /// Runs `connections` handlers of any kind that count and time what they complete.
    static func run<Handler: MeasuredLoop>(
        path: String, connections: Int, duration: Duration, warmup: Duration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        makeHandler: @escaping @Sendable (Int) -> Handler
    ) async throws -> Result {
        var channels: [any Channel] = []
        defer { for channel in channels { channel.close(promise: nil) } }
        var loops: [NIOLoopBound<Handler>] = []
        for index in 0..<connections {
            let loop = group.next()
            let handler = try await loop.submit { NIOLoopBound(makeHandler(index), eventLoop: loop) }.get()
            let channel = try await ClientBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler.value) }
                }
                .connect(unixDomainSocketPath: path).get()
            channels.append(channel)
            loops.append(handler)
        }
        try await Task.sleep(for: warmup)
        for handler in loops { try await handler.eventLoop.submit { handler.value.recording = true }.get() }
        let started = ContinuousClock.now
        try await Task.sleep(for: duration)
        var completed = 0
        var latencies: [Double] = []
        for handler in loops {
            let (count, samples) = try await handler.eventLoop.submit { () -> (Int, [Double]) in
                handler.value.recording = false
                handler.value.stopped = true
                return (handler.value.completed, handler.value.latencies.map { Double($0) / 1000 })
            }.get()
            completed += count
            latencies += samples
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Result(completed: completed, seconds: seconds, latencies: latencies)
    }
}

/// A connection's driver that counts and times what it completes, on its event loop.
protocol MeasuredLoop: ChannelInboundHandler, SendableMetatype {
    var recording: Bool { get set }
    var stopped: Bool { get set }
    var completed: Int { get }
    var latencies: [UInt64] { get }
}

/// One connection's requests, on its event loop.
final class RequestLoop: MeasuredLoop {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: [UInt8]
    private let depth: Int
    private let linesPerAnswer: Int
    /// Lines of an answer whose last line has not come yet.
    private var linesSeen = 0
    /// Send times of the requests in flight, oldest first (a ring).
    private var sentAt: [UInt64]
    private var head = 0
    private var inFlight = 0
    var recording = false
    var stopped = false
    var completed = 0
    var latencies: [UInt64] = []

    init(request: String, depth: Int, linesPerAnswer: Int = 1) {
        self.request = Array(request.utf8)
        self.depth = depth
        self.linesPerAnswer = linesPerAnswer
        sentAt = Array(repeating: 0, count: depth)
        latencies.reserveCapacity(1 << 16)
    }

    func channelActive(context: ChannelHandlerContext) {
        for _ in 0..<depth { send(context: context) }
        context.flush()
    }

    private func send(context: ChannelHandlerContext) {
        sentAt[(head + inFlight) % depth] = DispatchTimeLike.now()
        inFlight += 1
        context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: request)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        var lines = linesSeen
        buffer.withUnsafeReadableBytes { bytes in
            for byte in bytes where byte == UInt8(ascii: "\n") { lines += 1 }
        }
        let answered = lines / linesPerAnswer
        linesSeen = lines % linesPerAnswer
        guard answered > 0 else { return }
        let now = DispatchTimeLike.now()
        for _ in 0..<answered where inFlight > 0 {
            let sent = sentAt[head]
            head = (head + 1) % depth
            inFlight -= 1
            if recording {
                completed += 1
                latencies.append(now - sent)
            }
            if !stopped { send(context: context) }
        }
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        stopped = true
        context.close(promise: nil)
    }
}

/// A monotonic clock in nanoseconds, cheap enough to read per request.
enum DispatchTimeLike {
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
