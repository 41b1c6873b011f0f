import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// data-path: bytes pushed through a netd socket with `socket.write` into a local sink and pulled
/// with `socket.read` from a local source, 64 KiB (base64) per call, one call at a time, against a
/// direct loopback transfer between the same peers (the physical limit on this machine), and beside
/// socat relaying a Unix socket to the same peers (the by-hand way of moving bytes through a process).
enum DataPathScenario {
    static let chunk = 65536

    static func run(smoke: Bool) async throws -> [Measurement] {
        let seconds = smoke ? 0.3 : 3.0
        let sink = try await TCPPeer.start(.sink)
        defer { sink.close() }
        let source = try await TCPPeer.start(.source)
        defer { source.close() }

        let folder = try ScratchFolder()
        defer { folder.remove() }
        let directWrite = try await direct(to: sink, via: try SocketAddress(ipAddress: "127.0.0.1", port: sink.port), seconds: seconds)
        let directRead = try await directPull(from: try SocketAddress(ipAddress: "127.0.0.1", port: source.port), seconds: seconds)
        let socatWrite = try await throughSocat(to: sink.port, in: folder, name: "relay-in") { relay in
            try await direct(to: sink, via: try SocketAddress(unixDomainSocketPath: relay), seconds: seconds)
        }
        let socatRead = try await throughSocat(to: source.port, in: folder, name: "relay-out") { relay in
            try await directPull(from: try SocketAddress(unixDomainSocketPath: relay), seconds: seconds)
        }

        let (netd, socket) = try await startNetd(in: folder)
        defer { netd.stop() }
        let (netdWrite, netdRead) = try await LineClient.with(socket) { client in
            (try await push(client, to: sink, seconds: seconds), try await pull(client, from: source, seconds: seconds))
        }
        return [
            Measurement(
                scenario: "data-path", name: "socket.write to a sink",
                figures: [
                    "netdMBps": netdWrite, "directMBps": directWrite, "socatMBps": socatWrite, "ratio": netdWrite / directWrite,
                    "ratioSocat": netdWrite / socatWrite,
                ]),
            Measurement(
                scenario: "data-path", name: "socket.read from a source",
                figures: [
                    "netdMBps": netdRead, "directMBps": directRead, "socatMBps": socatRead, "ratio": netdRead / directRead,
                    "ratioSocat": netdRead / socatRead,
                ]),
        ]
    }

    private static func megabytesPerSecond(_ bytes: Int, _ seconds: Double) -> Double {
        Double(bytes) / seconds / 1_000_000
    }

    /// socat listening on a Unix socket and relaying each connection to 127.0.0.1:`port`, for `body`.
    private static func throughSocat(
        to port: Int, in folder: ScratchFolder, name: String, _ body: (String) async throws -> Double
    ) async throws -> Double {
        let relay = folder.path + "/\(name).sock"
        let socat = try Program(
            try installed("socat"), ["-b", "65536", "UNIX-LISTEN:\(relay),fork", "TCP:127.0.0.1:\(port)"],
            logTo: folder.path + "/\(name).log")
        defer { socat.stop() }
        for _ in 0..<250 where !FileManager.default.fileExists(atPath: relay) {
            try await Task.sleep(for: .milliseconds(20))
        }
        return try await body(relay)
    }

    /// A connection to `address` writing as fast as it can; what the sink received per second.
    private static func direct(to sink: TCPPeer, via address: SocketAddress, seconds: Double) async throws -> Double {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Firehose()) }
            }
            .connect(to: address).get()
        try await Task.sleep(for: .milliseconds(100))
        let before = sink.received.load(ordering: .relaxed)
        let ((), elapsed) = try await timed { try await Task.sleep(for: .milliseconds(Int(seconds * 1000))) }
        let after = sink.received.load(ordering: .relaxed)
        try await channel.close()
        return megabytesPerSecond(after - before, elapsed)
    }

    /// A connection to `address` reading everything that comes, per second.
    private static func directPull(from address: SocketAddress, seconds: Double) async throws -> Double {
        let counter = Counter()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(CountingReader { counter.value.add($0, ordering: .relaxed) })
                }
            }
            .connect(to: address).get()
        try await Task.sleep(for: .milliseconds(100))
        let before = counter.value.load(ordering: .relaxed)
        let ((), elapsed) = try await timed { try await Task.sleep(for: .milliseconds(Int(seconds * 1000))) }
        let after = counter.value.load(ordering: .relaxed)
        try await channel.close()
        return megabytesPerSecond(after - before, elapsed)
    }

    /// `socket.write` of 64 KiB at a time into the sink, through netd.
    static func push(_ client: LineClient, to sink: TCPPeer, seconds: Double) async throws -> Double {
        let socket = try await client.result(#"{"jsonrpc":"2.0","id":1,"method":"socket.connect","params":{"host":"127.0.0.1","port":\#(sink.port),"noDelay":true}}"#)
        let id = socket["id"] as? Int ?? 0
        let payload = Data(repeating: UInt8(ascii: "n"), count: chunk).base64EncodedString()
        let request = ByteBuffer(string: #"{"jsonrpc":"2.0","id":2,"method":"socket.write","params":{"id":\#(id),"data":"\#(payload)","encoding":"base64"}}"# + "\n")
        var sent = 0
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let (_, elapsed) = try await timed {
            while ContinuousClock.now < deadline {
                let answer = try await client.call(request)
                guard answer.readableBytesView.starts(with: Array(#"{"jsonrpc":"2.0","id":2,"result""#.utf8)) else {
                    throw BenchError("socket.write failed: \(String(buffer: answer))")
                }
                sent += chunk
            }
        }
        _ = try await client.result(#"{"jsonrpc":"2.0","id":3,"method":"socket.close","params":{"id":\#(id)}}"#)
        return megabytesPerSecond(sent, elapsed)
    }

    /// `socket.read` of up to 64 KiB at a time from the source, through netd; the data decoded.
    static func pull(_ client: LineClient, from source: TCPPeer, seconds: Double) async throws -> Double {
        let socket = try await client.result(#"{"jsonrpc":"2.0","id":4,"method":"socket.connect","params":{"host":"127.0.0.1","port":\#(source.port)}}"#)
        let id = socket["id"] as? Int ?? 0
        let request = ByteBuffer(string: #"{"jsonrpc":"2.0","id":5,"method":"socket.read","params":{"id":\#(id),"maxBytes":\#(chunk),"encoding":"base64","waitMs":1000}}"# + "\n")
        let marker = Array(#""data":""#.utf8)
        var received = 0
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let (_, elapsed) = try await timed {
            while ContinuousClock.now < deadline {
                let answer = try await client.call(request)
                let bytes = answer.readableBytesView
                guard let start = bytes.firstRange(of: marker)?.upperBound,
                    let end = bytes[start...].firstIndex(of: UInt8(ascii: "\""))
                else { throw BenchError("socket.read failed: \(String(buffer: answer))") }
                guard let data = Data(base64Encoded: Data(bytes[start..<end])) else { throw BenchError("bad base64 from socket.read") }
                received += data.count
            }
        }
        _ = try await client.result(#"{"jsonrpc":"2.0","id":6,"method":"socket.close","params":{"id":\#(id)}}"#)
        return megabytesPerSecond(received, elapsed)
    }
}

/// A shared counter for event-loop callbacks.
final class Counter: Sendable {
    let value = Atomic<Int>(0)
}
