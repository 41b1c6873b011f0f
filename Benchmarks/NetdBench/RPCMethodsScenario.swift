import Foundation
import NIOCore
import NIOPosix

/// rpc-methods: the methods people use, side by side with the by-hand Node.js daemon
/// (Benchmarks/node/peer.js `rpc`) and with Redis GET/SET of the same sizes, from one load
/// generator, with 1 and 16 clients, one request at a time and 32 pipelined:
/// - `socket.get {id}` (Redis GET of a 16-byte value),
/// - `socket.write` of 16 bytes to a loopback sink (Redis SET of a 16-byte value),
/// - `socket.read` of 16 bytes already waiting (a loopback source keeps the buffer full),
/// - `socket.connect` + `socket.close` to a loopback server, as pairs.
/// Each peer is measured three times in turns and its median round kept (``interleaved(rounds:_:)``).
enum RPCMethodsScenario {
    static let payload = "0123456789abcdef"

    static func run(smoke: Bool) async throws -> [Measurement] {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let peers = try await RPCPeers.start(in: folder)
        defer { peers.stop() }
        let (netdSocket, redisSocket, nodeSocket) = (peers.netdSocket, peers.redisSocket, peers.nodeSocket)
        let sink = try await TCPPeer.start(.sink)
        defer { sink.close() }
        let source = try await TCPPeer.start(.source)
        defer { source.close() }
        let listener = try await TCPPeer.start(.hold)
        defer { listener.close() }

        // One socket to the sink and one to the source per client, in netd and in the Node daemon.
        let clients = 16
        let netdSinks = try await connect(netdSocket, port: sink.port, count: clients)
        let netdSources = try await connect(netdSocket, port: source.port, count: clients)
        let nodeSinks = try await connect(nodeSocket, port: sink.port, count: clients)
        let nodeSources = try await connect(nodeSocket, port: source.port, count: clients)
        _ = try await LineClient.with(redisSocket) { try await $0.call(ByteBuffer(string: "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$16\r\n\(payload)\r\n")) }

        func get(_ ids: [Int64]) -> [String] { ids.map { #"{"jsonrpc":"2.0","id":1,"method":"socket.get","params":{"id":\#($0)}}"# + "\n" } }
        func write(_ ids: [Int64]) -> [String] { ids.map { #"{"jsonrpc":"2.0","id":1,"method":"socket.write","params":{"id":\#($0),"data":"\#(payload)"}}"# + "\n" } }
        func read(_ ids: [Int64]) -> [String] { ids.map { #"{"jsonrpc":"2.0","id":1,"method":"socket.read","params":{"id":\#($0),"maxBytes":16,"waitMs":1000}}"# + "\n" } }
        let redisGet = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
        let redisSet = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$16\r\n\(payload)\r\n"

        let duration: Duration = smoke ? .milliseconds(200) : .seconds(2)
        let warmup: Duration = smoke ? .milliseconds(50) : .milliseconds(500)
        let rounds = smoke ? 1 : 3
        var results: [Measurement] = []
        for count in [1, clients] {
            for depth in [1, 32] {
                func measure(_ path: String, _ requests: [String], lines: Int = 1) async throws -> (Double, Latencies) {
                    let result = try await LoadGenerator.run(
                        path: path, requests: requests, linesPerAnswer: lines, connections: count, depth: depth,
                        duration: duration, warmup: warmup)
                    return (result.perSecond, Latencies(microseconds: result.latencies))
                }
                let setting = "\(count) client\(count == 1 ? "" : "s")" + (depth > 1 ? ", pipelined \(depth)" : "")
                let methods: [(String, [String], [String], (String, Int)?)] = [
                    ("socket.get", get(netdSinks), get(nodeSinks), (redisGet, 2)),
                    ("socket.write", write(netdSinks), write(nodeSinks), (redisSet, 1)),
                    ("socket.read", read(netdSources), read(nodeSources), nil),
                ]
                for (method, netdRequests, nodeRequests, redisRequest) in methods {
                    var peers: [() async throws -> (Double, Latencies)] = [
                        { try await measure(netdSocket, netdRequests) }, { try await measure(nodeSocket, nodeRequests) },
                    ]
                    if let (request, lines) = redisRequest { peers.append { try await measure(redisSocket, [request], lines: lines) } }
                    let measured = try await interleaved(rounds: rounds, peers)
                    let ((netdRate, netdLatency), (nodeRate, nodeLatency)) = (measured[0], measured[1])
                    var figures: [String: Double] = [
                        "netdRps": netdRate.rounded(), "nodeRps": nodeRate.rounded(),
                        "netdP50Us": netdLatency.p50, "nodeP50Us": nodeLatency.p50, "netdP99Us": netdLatency.p99,
                        "ratioNode": netdRate / nodeRate,
                    ]
                    if measured.count > 2 {
                        let (redisRate, redisLatency) = measured[2]
                        figures["redisRps"] = redisRate.rounded()
                        figures["redisP50Us"] = redisLatency.p50
                        figures["ratioRedis"] = netdRate / redisRate
                        figures["p50RatioRedis"] = netdLatency.p50 / max(redisLatency.p50, 0.001)
                    }
                    results.append(Measurement(scenario: "rpc-methods", name: "\(method), \(setting)", figures: figures))
                }
                // connect + close pairs.
                func pairs(_ path: String) async throws -> (Double, Latencies) {
                    let port = listener.port
                    let result = try await LoadGenerator.run(path: path, connections: count, duration: duration, warmup: warmup) { _ in
                        ConnectCloseLoop(port: port, depth: depth)
                    }
                    return (result.perSecond, Latencies(microseconds: result.latencies))
                }
                let pairsMeasured = try await interleaved(rounds: rounds, [{ try await pairs(netdSocket) }, { try await pairs(nodeSocket) }])
                let ((netdRate, netdLatency), (nodeRate, nodeLatency)) = (pairsMeasured[0], pairsMeasured[1])
                results.append(Measurement(
                    scenario: "rpc-methods", name: "connect+close, \(setting)",
                    figures: [
                        "netdPairsPerSecond": netdRate.rounded(), "nodePairsPerSecond": nodeRate.rounded(),
                        "netdP50Us": netdLatency.p50, "nodeP50Us": nodeLatency.p50, "ratioNode": netdRate / nodeRate,
                    ]))
            }
        }
        return results
    }

    /// One method in one setting against netd alone, for as long as a profiler needs.
    static func profile(_ method: String, clients: Int, depth: Int, seconds: Int) async throws -> [Measurement] {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let peers = try await RPCPeers.start(in: folder)
        defer { peers.stop() }
        let sink = try await TCPPeer.start(.sink)
        defer { sink.close() }
        let source = try await TCPPeer.start(.source)
        defer { source.close() }
        let listener = try await TCPPeer.start(.hold)
        defer { listener.close() }
        let sinks = try await connect(peers.netdSocket, port: sink.port, count: clients)
        let sources = try await connect(peers.netdSocket, port: source.port, count: clients)
        print("netd pid \(peers.netd.pid): \(method), \(clients) clients, \(depth) in flight, \(seconds) s")
        let requests: [String]
        switch method {
        case "socket.get": requests = sinks.map { #"{"jsonrpc":"2.0","id":1,"method":"socket.get","params":{"id":\#($0)}}"# + "\n" }
        case "socket.write": requests = sinks.map { #"{"jsonrpc":"2.0","id":1,"method":"socket.write","params":{"id":\#($0),"data":"\#(payload)"}}"# + "\n" }
        case "socket.read": requests = sources.map { #"{"jsonrpc":"2.0","id":1,"method":"socket.read","params":{"id":\#($0),"maxBytes":16,"waitMs":1000}}"# + "\n" }
        case "connect+close": requests = []
        default: throw BenchError("no method \(method) in rpc-methods")
        }
        let duration = Duration.seconds(seconds)
        let result = requests.isEmpty
            ? try await LoadGenerator.run(path: peers.netdSocket, connections: clients, duration: duration, warmup: .milliseconds(500)) { _ in
                ConnectCloseLoop(port: listener.port, depth: depth)
            }
            : try await LoadGenerator.run(
                path: peers.netdSocket, requests: requests, linesPerAnswer: 1, connections: clients, depth: depth,
                duration: duration, warmup: .milliseconds(500))
        let latency = Latencies(microseconds: result.latencies)
        return [Measurement(
            scenario: "rpc-methods", name: "\(method), profiled, \(clients) clients, \(depth) in flight",
            figures: ["netdRps": result.perSecond.rounded(), "netdP50Us": latency.p50, "netdP99Us": latency.p99])]
    }

    /// Opens `count` sockets to 127.0.0.1:`port` through a JSON-RPC daemon; their ids.
    private static func connect(_ path: String, port: Int, count: Int) async throws -> [Int64] {
        try await LineClient.with(path) { client in
            var ids: [Int64] = []
            for _ in 0..<count {
                let answer = try await client.call(#"{"jsonrpc":"2.0","id":1,"method":"socket.connect","params":{"host":"127.0.0.1","port":\#(port)}}"#)
                guard let id = ConnectCloseLoop.ids(in: Array(answer.readableBytesView)).dropFirst().first else {
                    throw BenchError("socket.connect through \(path) answered \(String(buffer: answer))")
                }
                ids.append(id)
            }
            return ids
        }
    }
}

/// `socket.connect` then `socket.close` of the socket it opened, `depth` such pairs in flight;
/// a pair is complete (and timed) when the close is answered. Answers are matched by request id
/// (netd may answer pipelined requests out of order): even ids are connects, odd ids closes.
final class ConnectCloseLoop: MeasuredLoop {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let port: Int
    private let depth: Int
    private var startedAt: [Int64: UInt64] = [:]
    private var nextID: Int64 = 0
    private var partial: [UInt8] = []
    var recording = false
    var stopped = false
    var completed = 0
    var latencies: [UInt64] = []

    init(port: Int, depth: Int) {
        self.port = port
        self.depth = depth
    }

    func channelActive(context: ChannelHandlerContext) {
        for _ in 0..<depth { startPair(context: context) }
        context.flush()
    }

    private func startPair(context: ChannelHandlerContext) {
        let id = nextID
        nextID += 2
        startedAt[id] = DispatchTimeLike.now()
        let line = #"{"jsonrpc":"2.0","id":\#(id),"method":"socket.connect","params":{"host":"127.0.0.1","port":\#(port)}}"# + "\n"
        context.write(wrapOutboundOut(context.channel.allocator.buffer(string: line)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partial.append(contentsOf: unwrapInboundIn(data).readableBytesView)
        while let newline = partial.firstIndex(of: UInt8(ascii: "\n")) {
            let line = Array(partial[..<newline])
            partial.removeSubrange(...newline)
            let ids = Self.ids(in: line)
            guard let request = ids.first else { continue }
            if request % 2 == 0 {
                // The connect's answer: the socket's id is the next `"id":` (in the result).
                guard ids.count > 1 else { stopped = true; continue }
                startedAt[request + 1] = startedAt.removeValue(forKey: request)
                let close = #"{"jsonrpc":"2.0","id":\#(request + 1),"method":"socket.close","params":{"id":\#(ids[1])}}"# + "\n"
                context.write(wrapOutboundOut(context.channel.allocator.buffer(string: close)), promise: nil)
            } else {
                let started = startedAt.removeValue(forKey: request) ?? DispatchTimeLike.now()
                if recording {
                    completed += 1
                    latencies.append(DispatchTimeLike.now() - started)
                }
                if !stopped { startPair(context: context) }
            }
        }
        context.flush()
    }

    /// The integers after each `"id":` in a line, in order.
    static func ids(in line: [UInt8]) -> [Int64] {
        let key = Array(#""id":"#.utf8)
        var found: [Int64] = []
        var index = 0
        while index + key.count <= line.count {
            guard line[index..<index + key.count].elementsEqual(key) else { index += 1; continue }
            index += key.count
            var value: Int64 = 0
            var digits = 0
            while index < line.count, line[index] >= UInt8(ascii: "0"), line[index] <= UInt8(ascii: "9") {
                value = value * 10 + Int64(line[index] - UInt8(ascii: "0"))
                index += 1
                digits += 1
            }
            if digits > 0 { found.append(value) }
        }
        return found
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        stopped = true
        context.close(promise: nil)
    }
}
