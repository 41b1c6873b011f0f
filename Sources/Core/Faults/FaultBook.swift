import Foundation
import NetdProtocol
import NetdRelay
import NetdLocks

/// One fault a user added (contract section 12): what it does, and its draws. The n-th
/// connection it meets draws the n-th number of its seeded sequence, so the same seed and the
/// same order of connections make the same choices.
final class Fault: Sendable {
    let id: Int64
    private let described: FaultInfo
    private let draws: Locked<(met: Int, hit: Int, state: UInt64)>

    init(_ info: FaultInfo) {
        id = info.id
        described = info
        draws = Locked((info.met, info.hit, Self.stateAfter(info.met, seed: info.seed)))
    }

    var type: FaultType { described.type }
    var target: Int64 { described.target }
    var owner: Owner { described.owner }

    var info: FaultInfo {
        var info = described
        (info.met, info.hit) = draws.withLock { ($0.met, $0.hit) }
        return info
    }

    /// SplitMix64 over the seed: the sequence the draws come from.
    private static func next(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }

    private static func stateAfter(_ count: Int, seed: Int64) -> UInt64 {
        var state = UInt64(bitPattern: seed)
        for _ in 0..<count { _ = next(&state) }
        return state
    }

    /// Meets one more connection: whether the fault acts on it, and the connection's number
    /// (which seeds its jitter and slice sizes).
    func meet() -> (acts: Bool, ordinal: Int) {
        draws.withLock { draws in
            let value = Self.next(&draws.state)
            let ordinal = draws.met
            draws.met += 1
            let acts = described.probability >= 1 || Double(value >> 11) / Double(1 << 53) < described.probability
            if acts { draws.hit += 1 }
            return (acts, ordinal)
        }
    }

    /// The flows it acts on: 0 carries side 0's bytes to side 1 (upstream), 1 the other way.
    var flows: [Int] {
        switch described.direction {
        case .upstream: [0]
        case .downstream: [1]
        case .both: [0, 1]
        }
    }

    /// What it does to each flow it acts on, for the connection numbered `ordinal`.
    func shaping(ordinal: Int) -> Shaping? {
        let kind: Shaping.Kind? =
            switch described.type {
            case .latency: .latency(milliseconds: described.ms ?? 0, jitter: described.jitterMs ?? 0)
            case .bandwidth: .bandwidth(bytesPerSecond: described.bytesPerSecond ?? 1)
            case .slicer: .slicer(averageBytes: described.averageBytes ?? 1, delay: described.delayMs ?? 0)
            case .limit: .limit(bytes: described.bytes ?? 0)
            case .timeout: .hold
            case .blackhole: .blackhole
            case .reset, .refuse: nil
            }
        return kind.map { Shaping(fault: UInt64(bitPattern: id), kind: $0, seed: UInt64(bitPattern: described.seed) &+ UInt64(ordinal)) }
    }

    /// What it does to the whole pair at a time: `reset` and a `timeout` that closes.
    var timer: PairTimer? {
        switch described.type {
        case .reset: PairTimer(fault: UInt64(bitPattern: id), milliseconds: described.afterMs ?? 0, reset: true)
        case .timeout where (described.ms ?? 0) > 0: PairTimer(fault: UInt64(bitPattern: id), milliseconds: described.ms ?? 0, reset: false)
        default: nil
        }
    }
}

/// The faults netd holds, and which relayed pairs each acts on.
final class FaultBook: Sendable {
    /// A relayed pair faults act on: its sockets (side 0, side 1) and the faults with the
    /// connection number each drew.
    struct Pair: Sendable {
        var sockets: [Int64]
        var faults: [(fault: Fault, ordinal: Int)] = []
        /// Every fault that has drawn for this connection, acting or not: each draws once.
        var met: Set<Int64> = []
    }

    private struct State {
        var faults: [Int64: Fault] = [:]
        var nextID: Int64 = 1
        var pairs: [RelayLink: Pair] = [:]
        /// Every fault's type, kept after removal: a report may come after the fault is gone.
        var types: [Int64: FaultType] = [:]
    }

    private let state = Locked(State())

    func allocateID() -> Int64 {
        state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
    }

    var nextID: Int64 { state.withLock { $0.nextID } }

    /// Continues fault ids from `next` (a replaced netd's), so that they never repeat.
    func continueIDs(from next: Int64) {
        state.withLock { $0.nextID = max($0.nextID, next) }
    }

    func add(_ fault: Fault) {
        state.withLock { state in
            state.faults[fault.id] = fault
            state.types[fault.id] = fault.type
            state.nextID = max(state.nextID, fault.id + 1)
        }
    }

    func type(of id: Int64) -> FaultType? {
        state.withLock { $0.types[id] }
    }

    func fault(_ id: Int64) -> Fault? {
        state.withLock { $0.faults[id] }
    }

    var all: [Fault] {
        state.withLock { Array($0.faults.values) }.sorted { $0.id < $1.id }
    }

    /// Takes a fault out; the pairs it acted on, and the other faults on each.
    func remove(_ id: Int64) -> (Fault, [(RelayLink, Pair)])? {
        state.withLock { state in
            guard let fault = state.faults.removeValue(forKey: id) else { return nil }
            var touched: [(RelayLink, Pair)] = []
            for (link, pair) in state.pairs where pair.faults.contains(where: { $0.fault.id == id }) {
                var left = pair
                left.faults.removeAll { $0.fault.id == id }
                state.pairs[link] = left
                touched.append((link, left))
            }
            return (fault, touched)
        }
    }

    /// `fault` meets the pair, once whoever asks first (the pair being made, or the fault being
    /// added): nil if it has met it already, else whether it acts, and the pair's faults then.
    func meet(_ fault: Fault, on link: RelayLink, sockets: [Int64]) -> (acts: Bool, ordinal: Int, pair: Pair)? {
        state.withLock { state in
            var pair = state.pairs[link] ?? Pair(sockets: sockets)
            guard state.faults[fault.id] != nil, pair.met.insert(fault.id).inserted else { return nil }
            let (acts, ordinal) = fault.meet()
            if acts { pair.faults.append((fault, ordinal)) }
            state.pairs[link] = pair
            return (acts, ordinal, pair)
        }
    }

    /// Notes faults that act on a pair as it is made (drawn already, or carried over by a replace).
    func note(_ acting: [(fault: Fault, ordinal: Int)], met: Set<Int64>, on link: RelayLink, sockets: [Int64]) {
        // A pair no fault has met needs no entry: most pairs never meet one.
        guard !acting.isEmpty || !met.isEmpty else { return }
        state.withLock { state in
            var pair = state.pairs[link] ?? Pair(sockets: sockets)
            pair.faults += acting
            pair.met.formUnion(met)
            state.pairs[link] = pair
        }
    }

    /// The faults on a pair (for `netd --replace`).
    func faults(on link: RelayLink) -> [(fault: Fault, ordinal: Int)] {
        state.withLock { $0.pairs[link]?.faults ?? [] }
    }

    /// Forgets the pairs that have closed.
    func prune(keeping live: (Pair) -> Bool) {
        state.withLock { state in
            for (link, pair) in state.pairs where !live(pair) { state.pairs[link] = nil }
        }
    }

    /// The faults of a server that act on its new connections (not `refuse`).
    func faults(targeting target: Int64) -> [Fault] {
        all.filter { $0.target == target }
    }

    /// The relay's view of `faults` on one pair: each flow's shaping (every flow the changed
    /// faults act on gets its full list again; the others are left as they are) and the timers.
    static func relayFaults(_ faults: [(fault: Fault, ordinal: Int)], flows changed: Set<Int>, timers: [PairTimer] = [], removing: Set<UInt64> = []) -> RelayFaults {
        var shaping: [[Shaping]?] = [nil, nil]
        for flow in changed {
            shaping[flow] = faults.filter { $0.fault.flows.contains(flow) }.compactMap { $0.fault.shaping(ordinal: $0.ordinal) }
        }
        return RelayFaults(shaping: shaping, timers: timers, removingTimers: removing)
    }
}
