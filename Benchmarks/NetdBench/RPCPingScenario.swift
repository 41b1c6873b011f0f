import Foundation

/// rpc-ping: `netd.ping` against Redis's PING and the Node.js peer's JSON-RPC ping, from the same
/// load generator, with 1, 16 and 64 clients, one request at a time and 32 pipelined; each peer
/// measured three times in turns, its median round kept (``interleaved(rounds:_:)``).
enum RPCPingScenario {
    static let jsonPing = #"{"jsonrpc":"2.0","id":1,"method":"netd.ping"}"# + "\n"
    static let redisPing = "*1\r\n$4\r\nPING\r\n"

    static func run(smoke: Bool) async throws -> [Measurement] {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let peers = try await RPCPeers.start(in: folder)
        defer { peers.stop() }
        let (netdSocket, redisSocket, nodeSocket) = (peers.netdSocket, peers.redisSocket, peers.nodeSocket)

        let duration: Duration = smoke ? .milliseconds(200) : .seconds(2)
        let warmup: Duration = smoke ? .milliseconds(50) : .milliseconds(500)
        var results: [Measurement] = []
        for clients in [1, 16, 64] {
            for depth in [1, 32] {
                func measure(_ path: String, _ request: String) async throws -> (Double, Latencies) {
                    let result = try await LoadGenerator.run(
                        path: path, request: request, connections: clients, depth: depth, duration: duration, warmup: warmup)
                    return (result.perSecond, Latencies(microseconds: result.latencies))
                }
                let measured = try await interleaved(rounds: smoke ? 1 : 3, [
                    { try await measure(netdSocket, jsonPing) }, { try await measure(redisSocket, redisPing) },
                    { try await measure(nodeSocket, jsonPing) },
                ])
                let ((netdRate, netdLatency), (redisRate, redisLatency), (nodeRate, nodeLatency)) = (measured[0], measured[1], measured[2])
                results.append(Measurement(
                    scenario: "rpc-ping", name: "\(clients) clients" + (depth > 1 ? ", pipelined \(depth)" : ""),
                    figures: [
                        "netdRps": netdRate.rounded(), "redisRps": redisRate.rounded(), "nodeRps": nodeRate.rounded(),
                        "netdP50Us": netdLatency.p50, "netdP99Us": netdLatency.p99,
                        "redisP50Us": redisLatency.p50, "redisP99Us": redisLatency.p99,
                        "nodeP50Us": nodeLatency.p50, "nodeP99Us": nodeLatency.p99,
                        "ratioRedis": netdRate / redisRate, "ratioNode": netdRate / nodeRate,
                        "p50RatioRedis": netdLatency.p50 / max(redisLatency.p50, 0.001),
                    ]))
            }
        }
        return results
    }
}
