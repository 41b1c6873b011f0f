import Foundation

/// hold-10k: 10,000 sockets opened through netd and held idle, netd's resident memory per socket,
/// against the same 10,000 held by the Node.js peer (Benchmarks/node/peer.js hold).
enum HoldScenario {
    static func run(smoke: Bool) async throws -> [Measurement] {
        let count = smoke ? 200 : 10_000
        let server = try await TCPPeer.start(.hold)
        defer { server.close() }
        let folder = try ScratchFolder()
        defer { folder.remove() }

        let (netd, socket) = try await startNetd(in: folder)
        defer { netd.stop() }
        // Warm up netd's pools and history first, so that the baseline is a running netd.
        try await open(100, socket: socket, port: server.port, close: true)
        try await Task.sleep(for: .milliseconds(500))
        let netdBaseline = netd.residentBytes
        try await open(count, socket: socket, port: server.port, close: false)
        try await Task.sleep(for: .seconds(1))
        let netdHeld = netd.residentBytes
        let status = try await LineClient.with(socket) { try await $0.result(#"{"jsonrpc":"2.0","id":1,"method":"netd.status"}"#) }
        guard status["sockets"] as? Int == count else { throw BenchError("netd holds \(status["sockets"] ?? "?") sockets, not \(count)") }
        netd.stop()

        let node = try startNode(["hold", String(server.port), String(count)], in: folder, log: "node-hold.log")
        defer { node.stop() }
        _ = try await node.waitForLine(startingWith: "baseline")
        try await Task.sleep(for: .milliseconds(300))
        let nodeBaseline = node.residentBytes
        _ = try await node.waitForLine(startingWith: "held", seconds: 120)
        let nodeHeld = node.residentBytes

        let netdPerSocket = Double(netdHeld - netdBaseline) / Double(count)
        let nodePerSocket = Double(nodeHeld - nodeBaseline) / Double(count)
        return [Measurement(
            scenario: "hold-10k", name: "\(count) idle sockets",
            figures: [
                "netdBytesPerSocket": netdPerSocket.rounded(), "nodeBytesPerSocket": nodePerSocket.rounded(),
                "netdRssMiB": Double(netdHeld) / 1_048_576, "nodeRssMiB": Double(nodeHeld) / 1_048_576,
                "ratioNode": netdPerSocket / nodePerSocket, "sockets": Double(count),
            ])]
    }

    /// Opens `count` sockets to the local server through netd from 16 clients (closing each at once if asked).
    static func open(_ count: Int, socket: String, port: Int, close: Bool) async throws {
        let clients = 16
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<clients {
                let share = count / clients + (client < count % clients ? 1 : 0)
                group.addTask {
                    try await LineClient.with(socket) { rpc in
                        for _ in 0..<share {
                            let opened = try await rpc.result(#"{"jsonrpc":"2.0","id":1,"method":"socket.connect","params":{"host":"127.0.0.1","port":\#(port)}}"#)
                            if close, let id = opened["id"] as? Int {
                                _ = try await rpc.result(#"{"jsonrpc":"2.0","id":2,"method":"socket.close","params":{"id":\#(id)}}"#)
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}
