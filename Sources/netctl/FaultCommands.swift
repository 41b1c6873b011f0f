import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NetdBlockingClient
import NetdProtocol

extension FaultType: ExpressibleByArgument {}
extension FaultDirection: ExpressibleByArgument {}

struct Fault: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fault",
        abstract: "Make a forward or a joined pair misbehave on purpose: latency, bandwidth, resets, ...",
        subcommands: [FaultAdd.self, FaultList.self, FaultRemove.self])
}

struct FaultAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: FaultAddMethod.summary,
        discussion: """
            TARGET is a forward's id (every connection through it, now and later) or one socket of a \\
            forwarded or joined pair. The type's params go as NAME=VALUE; durations as 400, 400ms, 2s; \\
            sizes as 512, 64k, 1m:
              latency    ms=DURATION [jitterMs=DURATION]
              bandwidth  bytesPerSecond=SIZE
              slicer     averageBytes=SIZE delayMs=DURATION
              limit      bytes=SIZE                 close after that many bytes
              reset      afterMs=DURATION           RST that long after the connection opened
              timeout    ms=DURATION                hold bytes, close after ms (0: never)
              blackhole                             pass nothing
              refuse                                new connections get RST at once
            Every connection a fault acts on gets a `fault` event in its history.

            Examples:
              netctl fault add 4 latency ms=200 jitterMs=50
              netctl fault add 4 bandwidth bytesPerSecond=64k --direction downstream
              netctl fault add 4 reset afterMs=2s --probability 0.3 --seed 42
            """)

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "A forward's id, or one socket of a forwarded or joined pair.") var target: Int64
    @Argument(help: "latency, bandwidth, slicer, limit, reset, timeout, blackhole or refuse.") var type: FaultType
    @Argument(help: "The type's params as NAME=VALUE, e.g. ms=400 or bytesPerSecond=1m.") var settings: [String] = []
    @Option(help: "upstream (toward the target), downstream or both.") var direction: FaultDirection?
    @Option(help: "Chance, 0 to 1, that it acts on each connection (default 1).") var probability: Double?
    @Option(help: "Seed of the draws, to replay a run.") var seed: Int64?

    func validate() throws { _ = try params() }

    func params() throws -> FaultAddMethod.Params {
        var params = FaultAddMethod.Params(target: target, type: type, direction: direction, probability: probability, seed: seed)
        for setting in settings {
            guard let equals = setting.firstIndex(of: "="), equals != setting.startIndex else {
                throw ValidationError("\(setting): give the type's params as NAME=VALUE, e.g. ms=400")
            }
            let name = String(setting[..<equals])
            let text = String(setting[setting.index(after: equals)...])
            guard type.params.contains(name) else {
                let known = type.params.isEmpty ? "takes no params" : "takes \(type.params.joined(separator: ", "))"
                throw ValidationError("\(type.rawValue) has no param \(name): it \(known)")
            }
            let isSize = ["bytesPerSecond", "averageBytes", "bytes"].contains(name)
            guard let value = isSize ? SizeText.bytes(text) : DurationArgument.milliseconds(text) else {
                throw ValidationError("\(name)=\(text) is not \(isSize ? "a size such as 512, 64k or 1m" : "a duration such as 400, 400ms or 2s")")
            }
            switch name {
            case "ms": params.ms = value
            case "jitterMs": params.jitterMs = value
            case "bytesPerSecond": params.bytesPerSecond = value
            case "averageBytes": params.averageBytes = value
            case "delayMs": params.delayMs = value
            case "bytes": params.bytes = value
            default: params.afterMs = value
            }
        }
        return params
    }

    func run() throws {
        let result = try globals.withClient { try $0.call(FaultAddMethod.self, try params()) }
        try globals.print(result) { "fault \($0.fault.id) added: " + FaultList.describe($0.fault) }
    }
}

struct FaultList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls", abstract: FaultListMethod.summary,
        discussion: "Example: netctl fault ls    netctl fault ls 4", aliases: ["list"])

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "Only the faults of this forward or socket.") var target: Int64?

    func run() throws {
        let result = try globals.withClient { try $0.call(FaultListMethod.self, .init(target: target)) }
        try globals.print(result) { result in
            guard !result.faults.isEmpty else { return "no faults" }
            var rows = [["ID", "TARGET", "TYPE", "PARAMS", "DIRECTION", "P", "SEED", "MET", "HIT", "ADDED"]]
            for fault in result.faults {
                rows.append([
                    String(fault.id), String(fault.target), fault.type.rawValue, Self.settings(fault), fault.direction.rawValue,
                    String(fault.probability), String(fault.seed), String(fault.met), String(fault.hit), when(fault.addedAt),
                ])
            }
            return table(rows)
        }
    }

    /// `latency ms=200 jitterMs=50 on 4, both ways`.
    static func describe(_ fault: FaultInfo) -> String {
        let params = settings(fault)
        return "\(fault.type.rawValue)\(params.isEmpty ? "" : " " + params) on \(fault.target), \(fault.direction.rawValue)"
            + (fault.probability < 1 ? ", probability \(fault.probability) (seed \(fault.seed))" : "")
    }

    static func settings(_ fault: FaultInfo) -> String {
        let all: [(String, Int?)] = [
            ("ms", fault.ms), ("jitterMs", fault.jitterMs), ("bytesPerSecond", fault.bytesPerSecond),
            ("averageBytes", fault.averageBytes), ("delayMs", fault.delayMs), ("bytes", fault.bytes), ("afterMs", fault.afterMs),
        ]
        return all.compactMap { name, value in value.map { "\(name)=\($0)" } }.joined(separator: " ")
    }
}

struct FaultRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove a fault: the connections it held go on as if it had never been.",
        discussion: "Example: netctl fault rm 2", aliases: ["remove"])

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "The fault's id (netctl fault ls).") var id: Int64

    func run() throws {
        let result = try globals.withClient { try $0.call(FaultRemoveMethod.self, .init(id: id)) }
        try globals.print(result) { "fault \($0.fault.id) removed: " + FaultList.describe($0.fault) }
    }
}
