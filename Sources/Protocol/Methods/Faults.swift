/// The faults of contract section 12.
public enum FaultType: String, Codable, Sendable, CaseIterable {
    case latency, bandwidth, slicer, limit, reset, timeout, blackhole, refuse

    /// The params this type takes, required first; `jitterMs` is the only optional one.
    public var params: [String] {
        switch self {
        case .latency: ["ms", "jitterMs"]
        case .bandwidth: ["bytesPerSecond"]
        case .slicer: ["averageBytes", "delayMs"]
        case .limit: ["bytes"]
        case .reset: ["afterMs"]
        case .timeout: ["ms"]
        case .blackhole, .refuse: []
        }
    }
}

/// Which way a fault acts: `upstream` toward the target (from a pipe's `id` toward its `to`).
public enum FaultDirection: String, Codable, Sendable, CaseIterable {
    case upstream, downstream, both
}

/// A fault as netd reports it.
public struct FaultInfo: Codable, Hashable, Sendable {
    public var id: Int64
    /// The forwarding server, or the socket of a pipe or forward pair, it was added to.
    public var target: Int64
    public var type: FaultType
    public var direction: FaultDirection
    public var probability: Double
    /// Seeds the per-connection draws (and the jitter and slice sizes): give it back to replay a run.
    public var seed: Int64
    public var ms: Int?
    public var jitterMs: Int?
    public var bytesPerSecond: Int?
    public var averageBytes: Int?
    public var delayMs: Int?
    public var bytes: Int?
    public var afterMs: Int?
    public var owner: Owner
    public var addedAt: String
    /// Connections the fault has met (drawn for), and those it acts on (drawn within `probability`).
    public var met: Int
    public var hit: Int

    public init(
        id: Int64, target: Int64, type: FaultType, direction: FaultDirection, probability: Double, seed: Int64,
        ms: Int? = nil, jitterMs: Int? = nil, bytesPerSecond: Int? = nil, averageBytes: Int? = nil, delayMs: Int? = nil,
        bytes: Int? = nil, afterMs: Int? = nil, owner: Owner, addedAt: String, met: Int = 0, hit: Int = 0
    ) {
        self.id = id
        self.target = target
        self.type = type
        self.direction = direction
        self.probability = probability
        self.seed = seed
        self.ms = ms
        self.jitterMs = jitterMs
        self.bytesPerSecond = bytesPerSecond
        self.averageBytes = averageBytes
        self.delayMs = delayMs
        self.bytes = bytes
        self.afterMs = afterMs
        self.owner = owner
        self.addedAt = addedAt
        self.met = met
        self.hit = hit
    }
}

/// `fault.add`: make the network misbehave on purpose (contract section 12).
public enum FaultAddMethod: RPCMethod {
    public static let name = "fault.add"
    public static let summary = "Add a fault (latency, bandwidth, slicer, limit, reset, timeout, blackhole, refuse) to a forwarding server or to a pipe or forward pair."

    public struct Params: RPCParams, Hashable {
        public var target: Int64
        public var type: FaultType
        public var direction: FaultDirection?
        public var probability: Double?
        public var seed: Int64?
        public var ms: Int?
        public var jitterMs: Int?
        public var bytesPerSecond: Int?
        public var averageBytes: Int?
        public var delayMs: Int?
        public var bytes: Int?
        public var afterMs: Int?

        public init(
            target: Int64, type: FaultType, direction: FaultDirection? = nil, probability: Double? = nil, seed: Int64? = nil,
            ms: Int? = nil, jitterMs: Int? = nil, bytesPerSecond: Int? = nil, averageBytes: Int? = nil, delayMs: Int? = nil,
            bytes: Int? = nil, afterMs: Int? = nil
        ) {
            self.target = target
            self.type = type
            self.direction = direction
            self.probability = probability
            self.seed = seed
            self.ms = ms
            self.jitterMs = jitterMs
            self.bytesPerSecond = bytesPerSecond
            self.averageBytes = averageBytes
            self.delayMs = delayMs
            self.bytes = bytes
            self.afterMs = afterMs
        }

        public static let fields = [
            ParamField("target", "integer", required: true, "A forwarding server (every connection through it, now and later), or a socket of a pipe or forward pair."),
            ParamField("type", "string: latency, bandwidth, slicer, limit, reset, timeout, blackhole, refuse", required: true, "What goes wrong."),
            ParamField("direction", "string: upstream, downstream, both", "upstream: toward the target (a pipe: from id toward to); default both."),
            ParamField("probability", "number", "0 to 1, drawn per connection from the seed (default 1)."),
            ParamField("seed", "integer", "Seeds the draws, the jitter and the slice sizes, to replay a run (default: a random one, shown in the fault)."),
            ParamField("ms", "integer", "latency: the delay of every chunk; timeout: close after this long (0: never)."),
            ParamField("jitterMs", "integer", "latency: up to this much more or less, uniformly (default 0)."),
            ParamField("bytesPerSecond", "integer", "bandwidth: the rate."),
            ParamField("averageBytes", "integer", "slicer: the average size of each write."),
            ParamField("delayMs", "integer", "slicer: the pause between writes."),
            ParamField("bytes", "integer", "limit: close the connection after this many bytes each way it acts on."),
            ParamField("afterMs", "integer", "reset: send RST this long after the connection opened (or after the fault was added)."),
        ]

        /// The type's params given, by name.
        var given: [String: Int] {
            var given: [String: Int] = [:]
            given["ms"] = ms
            given["jitterMs"] = jitterMs
            given["bytesPerSecond"] = bytesPerSecond
            given["averageBytes"] = averageBytes
            given["delayMs"] = delayMs
            given["bytes"] = bytes
            given["afterMs"] = afterMs
            return given
        }

        public func validate() throws(ResponseError) {
            let takes = type.params
            if let stray = given.keys.sorted().first(where: { !takes.contains($0) }) {
                let list = takes.isEmpty ? "none" : takes.joined(separator: ", ")
                throw .invalidParams("`\(stray)` is not a param of \(type.rawValue); it takes \(list)")
            }
            if let missing = takes.first(where: { $0 != "jitterMs" && given[$0] == nil }) {
                throw .invalidParams("\(type.rawValue) needs `\(missing)`")
            }
            let day = 86_400_000
            try Check.range(ms, "ms", 0...day)
            try Check.range(jitterMs, "jitterMs", 0...day)
            try Check.range(bytesPerSecond, "bytesPerSecond", 1...(1 << 40))
            try Check.range(averageBytes, "averageBytes", 1...(1 << 20))
            try Check.range(delayMs, "delayMs", 0...day)
            try Check.range(bytes, "bytes", 0...(1 << 50))
            try Check.range(afterMs, "afterMs", 0...day)
            if let probability, !(probability >= 0 && probability <= 1) {
                throw .invalidParams("`probability` must be from 0 to 1")
            }
            if let seed, seed < 0 || seed > (1 << 53) - 1 {
                throw .invalidParams("`seed` must be from 0 to 9007199254740991")
            }
            if type == .refuse, let direction, direction != .both {
                throw .invalidParams("refuse acts on new connections, not on a direction; leave `direction` out")
            }
        }
    }

    public struct Result: Codable, Hashable, Sendable {
        public var fault: FaultInfo
        public init(fault: FaultInfo) { self.fault = fault }
    }
}

/// `fault.remove`: the fault stops acting; connections it slowed go back to full speed.
public enum FaultRemoveMethod: RPCMethod {
    public static let name = "fault.remove"
    public static let summary = "Remove a fault: it stops acting on every connection, now and later."

    public struct Params: RPCParams, Hashable {
        public var id: Int64
        public init(id: Int64) { self.id = id }
        public static let fields = [ParamField("id", "integer", required: true, "The fault's id.")]
    }

    public struct Result: Codable, Hashable, Sendable {
        public var fault: FaultInfo
        public init(fault: FaultInfo) { self.fault = fault }
    }
}

/// `fault.list`: the faults, of one target or all the caller's.
public enum FaultListMethod: RPCMethod {
    public static let name = "fault.list"
    public static let summary = "List faults, all of them or those of one target."

    public struct Params: RPCParams, Hashable {
        public var target: Int64?
        public init(target: Int64? = nil) { self.target = target }
        public static let fields = [ParamField("target", "integer", "Only the faults added to this server or socket.")]
    }

    public struct Result: Codable, Hashable, Sendable {
        public var faults: [FaultInfo]
        public init(faults: [FaultInfo]) { self.faults = faults }
    }
}
