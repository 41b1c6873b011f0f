import ArgumentParser
import Foundation
import NetdCore
import NetdProtocol

/// `netd-bench`: netd's benchmark suite. Every scenario runs from this one command; the table
/// goes to stdout and the figures, as JSON, to `--json`. See docs/BENCHMARKS.md.
@main
struct NetdBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netd-bench",
        abstract: "Measure netd beside real peers; a table on stdout, JSON to --json.")

    @Option(help: "Only these scenarios, comma-separated (default: all).")
    var only: String?

    @Flag(help: "Tiny counts, seconds in all: checks that every scenario runs (CI).")
    var smoke = false

    @Option(help: "Write the measurements as JSON to this file.")
    var json: String?

    @Option(help: ArgumentHelp(
        "rpc-methods: only this method (socket.get, socket.write, socket.read, connect+close), against netd alone, for profiling.",
        discussion: "Prints netd's pid first, for `perf record -p`."))
    var method: String?

    @Option(help: "With --method: clients, requests in flight per client, and seconds (default 16, 1, 20).")
    var profile: String?

    @Option(name: .customLong("netd-flag"), parsing: .unconditionalSingleValue, help: "A flag for the netd of stream and relay (repeatable), e.g. --netd-flag=--relay-pipe-bytes=262144.")
    var netdFlags: [String] = []

    func run() async throws {
        let chosen = Set((only ?? Self.scenarios.joined(separator: ",")).split(separator: ",").map(String.init))
        if let unknown = chosen.subtracting(Self.scenarios).first {
            throw ValidationError("no scenario \(unknown); there are \(Self.scenarios.joined(separator: ", "))")
        }
        // The peers and the held sockets of hold-10k need many descriptors (the peers inherit this).
        _ = ResourceLimits.raiseOpenFileLimit()
        var measurements: [Measurement] = []
        if chosen.contains("rpc-ping") {
            measurements += try await RPCPingScenario.run(smoke: smoke)
        }
        if chosen.contains("rpc-methods") {
            if let method {
                let parts = (profile ?? "16,1,20").split(separator: ",").compactMap { Int($0) }
                guard parts.count == 3 else { throw ValidationError("--profile takes clients,depth,seconds") }
                measurements += try await RPCMethodsScenario.profile(method, clients: parts[0], depth: parts[1], seconds: parts[2])
            } else {
                measurements += try await RPCMethodsScenario.run(smoke: smoke)
            }
        }
        if chosen.contains("data-path") {
            measurements += try await DataPathScenario.run(smoke: smoke)
        }
        if chosen.contains("stream") {
            measurements += try await StreamScenario.run(smoke: smoke, netdFlags: netdFlags)
        }
        if chosen.contains("relay") {
            measurements += try await RelayScenario.run(smoke: smoke, netdFlags: netdFlags)
        }
        if chosen.contains("workers") {
            measurements += try await WorkersScenario.run(smoke: smoke)
        }
        if chosen.contains("faults") {
            measurements += try await FaultsScenario.run(smoke: smoke)
        }
        if chosen.contains("replace") {
            measurements += try await ReplaceScenario.run(smoke: smoke)
        }
        if chosen.contains("connect-churn") {
            measurements += try await ConnectChurnScenario.run(smoke: smoke)
        }
        if chosen.contains("hold-10k") {
            measurements += try await HoldScenario.run(smoke: smoke)
        }
        if chosen.contains("cli-start") {
            measurements += try await CLIStartScenario.run(smoke: smoke)
        }
        if chosen.contains("cli-pipe") {
            measurements += try await CLIPipeScenario.run(smoke: smoke)
        }
        if chosen.contains("history-query") {
            measurements += try await HistoryQueryScenario.run(
                records: smoke ? 20_000 : 1_000_000, queriesPerFilter: smoke ? 10 : 200)
        }
        print(report(measurements))
        if let json {
            try Data(JSONCoding.encodePretty(measurements)).write(to: URL(fileURLWithPath: json))
        }
    }

    static let scenarios = ["rpc-ping", "rpc-methods", "data-path", "stream", "relay", "workers", "faults", "replace", "connect-churn", "hold-10k", "history-query", "cli-start", "cli-pipe"]

    private func report(_ measurements: [Measurement]) -> String {
        var lines = ["scenario        measurement              figures"]
        for measurement in measurements {
            let figures = measurement.figures.sorted { $0.key < $1.key }.map { "\($0.key) \(format($0.value))" }.joined(separator: "  ")
            lines.append(
                measurement.scenario.padding(toLength: 16, withPad: " ", startingAt: 0)
                    + measurement.name.padding(toLength: 25, withPad: " ", startingAt: 0) + figures)
        }
        return lines.joined(separator: "\n")
    }

    private func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e12 ? String(Int(value)) : String(format: "%.3f", value)
    }
}
