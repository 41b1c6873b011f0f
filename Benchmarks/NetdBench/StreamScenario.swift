import Foundation
import NetdTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// stream: one socket through netd with its RPC connection attached (`socket.connect` with
/// `attach: true`), bytes written to a loopback sink and read from a loopback source, against the
/// direct loopback transfer between the same peers and the JSON path (`socket.write` and
/// `socket.read` of 64 KiB in base64, as data-path measures it), in one run.
enum StreamScenario {
    static func run(smoke: Bool, netdFlags: [String] = []) async throws -> [Measurement] {
        signal(SIGPIPE, SIG_IGN)
        let seconds = smoke ? 0.3 : 3.0
        let rounds = smoke ? 1 : 3
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let (netd, socket) = try await startNetd(in: folder, extra: netdFlags)
        defer { netd.stop() }
        let sink = try ThreadServer(.sink)
        defer { sink.close() }
        let source = try ThreadServer(.source)
        defer { source.close() }
        let jsonSink = try await TCPPeer.start(.sink)
        defer { jsonSink.close() }
        let jsonSource = try await TCPPeer.start(.source)
        defer { jsonSource.close() }

        var up: [String: [Double]] = [:]
        var down: [String: [Double]] = [:]
        var cpu: [Double] = []
        for _ in 0..<rounds {
            up["direct", default: []].append(try await push(try Sockets.connectTCP(sink.port), sink: sink, seconds: seconds))
            let cpuBefore = cpuSeconds(of: netd.pid)
            let movedBefore = sink.received.load(ordering: .relaxed)
            up["attached", default: []].append(try await push(try attached(socket, port: sink.port), sink: sink, seconds: seconds))
            cpu.append((cpuSeconds(of: netd.pid) - cpuBefore) / (Double(sink.received.load(ordering: .relaxed) - movedBefore) / 1e9))
            down["direct", default: []].append(try await pull(try Sockets.connectTCP(source.port), seconds: seconds))
            down["attached", default: []].append(try await pull(try attached(socket, port: source.port), seconds: seconds))
            let (json, jsonRead) = try await LineClient.with(socket) { client in
                (try await DataPathScenario.push(client, to: jsonSink, seconds: seconds), try await DataPathScenario.pull(client, from: jsonSource, seconds: seconds))
            }
            up["json", default: []].append(json)
            down["json", default: []].append(jsonRead)
        }
        func median(_ values: [Double]?) -> Double { values.map { $0.sorted()[$0.count / 2] } ?? 0 }
        func figures(_ series: [String: [Double]]) -> [String: Double] {
            let (direct, attached, json) = (median(series["direct"]), median(series["attached"]), median(series["json"]))
            return ["directMBps": direct, "attachedMBps": attached, "jsonMBps": json, "attachedVsDirect": attached / direct, "attachedVsJSON": attached / max(json, 1e-9)]
        }
        var upFigures = figures(up)
        upFigures["netdCPUsPerGB"] = median(cpu)
        return [
            Measurement(scenario: "stream", name: "attached socket to a sink", figures: upFigures, note: "median of \(rounds) rounds in turns"),
            Measurement(scenario: "stream", name: "attached socket from a source", figures: figures(down), note: "median of \(rounds) rounds in turns"),
        ]
    }

    /// An RPC connection to netd attached to a new socket connected to 127.0.0.1:`port`.
    static func attached(_ socket: String, port: Int) throws -> CInt {
        let fd = try Sockets.connectUnix(socket)
        let request = #"{"jsonrpc":"2.0","id":1,"method":"socket.connect","params":{"host":"127.0.0.1","port":\#(port),"attach":true,"allowHalfOpen":true}}"# + "\n"
        try Sockets.send(fd, Array(request.utf8))
        let answer = try Sockets.readLine(fd)
        guard answer.contains(#""attached":true"#) else {
            _ = close(fd)
            throw BenchError("attach failed: \(answer)")
        }
        return fd
    }

    /// Writes through `fd` as fast as it goes: what the sink received per second.
    static func push(_ fd: CInt, sink: ThreadServer, seconds: Double) async throws -> Double {
        let hoses = Firehoses.writing(to: [fd])
        try await Task.sleep(for: .milliseconds(200))
        let before = sink.received.load(ordering: .relaxed)
        let ((), elapsed) = try await timed { try await Task.sleep(for: .milliseconds(Int(seconds * 1000))) }
        let after = sink.received.load(ordering: .relaxed)
        await hoses.stop(closing: [fd])
        return Double(after - before) / elapsed / 1_000_000
    }

    /// Reads from `fd` as fast as it goes, per second.
    static func pull(_ fd: CInt, seconds: Double) async throws -> Double {
        let hoses = Firehoses.reading(from: [fd])
        try await Task.sleep(for: .milliseconds(200))
        let before = hoses.counted.load(ordering: .relaxed)
        let ((), elapsed) = try await timed { try await Task.sleep(for: .milliseconds(Int(seconds * 1000))) }
        let after = hoses.counted.load(ordering: .relaxed)
        await hoses.stop(closing: [fd])
        return Double(after - before) / elapsed / 1_000_000
    }
}
