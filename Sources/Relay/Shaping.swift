#if canImport(Glibc)
import Glibc
#endif

/// What a fault does to one direction of a relayed pair (contract section 12), as the relay
/// applies it. A direction with any shaping leaves the splice path for one that reads into user
/// space and writes on the relay loop's timers: no thread per connection, no sleep.
public struct Shaping: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Every chunk waits `milliseconds`, give or take up to `jitter` (uniformly), in order.
        case latency(milliseconds: Int, jitter: Int)
        /// At most this many bytes a second.
        case bandwidth(bytesPerSecond: Int)
        /// Writes of about `averageBytes` (half to one and a half times), `delay` milliseconds apart.
        case slicer(averageBytes: Int, delay: Int)
        /// The connection closes once this many bytes have passed this way.
        case limit(bytes: Int)
        /// Nothing passes (what comes stays unread, so the sender feels backpressure).
        case hold
        /// Nothing passes (what comes is read and thrown away).
        case blackhole
    }

    /// The fault this comes from, for the reports (``RelayObserver/faultActed(fault:detail:)``).
    public var fault: UInt64
    public var kind: Kind
    /// Seeds the jitter and the slice sizes, so a run can be replayed.
    public var seed: UInt64

    public init(fault: UInt64, kind: Kind, seed: UInt64 = 0) {
        self.fault = fault
        self.kind = kind
        self.seed = seed
    }
}

/// A fault that acts on a whole pair at a time: it closes, reset or not, after a delay.
public struct PairTimer: Sendable, Equatable, Codable {
    public var fault: UInt64
    public var milliseconds: Int
    /// RST to both sides (`reset`), or a plain close (`timeout`).
    public var reset: Bool

    public init(fault: UInt64, milliseconds: Int, reset: Bool) {
        self.fault = fault
        self.milliseconds = milliseconds
        self.reset = reset
    }
}

/// The monotonic clock, in nanoseconds.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// One direction's shaping state: the bytes read and not yet written, each with the time it may
/// go, and what bandwidth, slicing and limits allow next. Pure bookkeeping, on the relay's thread;
/// the engine reads and writes.
final class Shaper {
    struct Chunk {
        var bytes: [UInt8]
        var offset = 0
        let due: UInt64
    }

    enum Next: Equatable {
        /// Nothing queued.
        case empty
        /// Nothing may go before this time.
        case wait(until: UInt64)
        /// Write up to this many bytes of the head chunk now.
        case write(Int)
        /// The limit is reached: the connection closes.
        case limitReached
    }

    private(set) var shapes: [Shaping]
    private var queue: [Chunk] = []
    private var head = 0
    private(set) var queuedBytes = 0
    /// Bytes written this way since the shaping began.
    private(set) var passed = 0
    private var lastDue: UInt64 = 0
    /// Where the rate's clock stands: the time by which everything written so far may have gone.
    private var rateClock: UInt64 = 0
    private var nextSliceAt: UInt64 = 0
    private var random: UInt64
    /// Faults that have said what they did on this direction.
    private var reported: Set<UInt64> = []
    /// When the engine must look at this direction again (a delay or a rate is waiting).
    var wakeAt: UInt64?
    /// Reads stop while this much is queued, so the sender feels backpressure.
    let queueLimit = 1 << 20

    init(_ shapes: [Shaping], now: UInt64) {
        self.shapes = shapes
        random = shapes.reduce(0x9E37_79B9_7F4A_7C15) { $0 ^ $1.seed &* 0xBF58_476D_1CE4_E5B9 } | 1
        rateClock = now
    }

    var holds: Bool { shapes.contains { $0.kind == .hold } }
    var discards: Bool { shapes.contains { $0.kind == .blackhole } }
    var isEmpty: Bool { queuedBytes == 0 }

    private var limit: Int? { shapes.compactMap { if case .limit(let bytes) = $0.kind { bytes } else { nil } }.min() }
    private var rate: Int? { shapes.compactMap { if case .bandwidth(let rate) = $0.kind { rate } else { nil } }.min() }
    private var slicer: (averageBytes: Int, delay: Int)? {
        shapes.lazy.compactMap { if case .slicer(let average, let delay) = $0.kind { (average, delay) } else { nil } }.first
    }

    /// The first report of `fault` on this direction: true once, then false.
    func firstReport(_ fault: UInt64) -> Bool {
        reported.insert(fault).inserted
    }

    /// The faults of `kind`'s case, for reports.
    func faults(where matches: (Shaping.Kind) -> Bool) -> [Shaping] {
        shapes.filter { matches($0.kind) }
    }

    /// xorshift64*: the jitter and slice sizes, from the seeds.
    private func nextRandom() -> UInt64 {
        random ^= random >> 12
        random ^= random << 25
        random ^= random >> 27
        return random &* 0x2545_F491_4F6C_DD1D
    }

    /// Bytes read from the source, due after the latency (in order, whatever the jitter).
    func enqueue(_ bytes: ArraySlice<UInt8>, now: UInt64) {
        var delay: Int64 = 0
        for shape in shapes {
            guard case .latency(let milliseconds, let jitter) = shape.kind else { continue }
            var value = Int64(milliseconds) * 1_000_000
            if jitter > 0 {
                let span = UInt64(jitter) * 2_000_000 + 1
                value += Int64(nextRandom() % span) - Int64(jitter) * 1_000_000
            }
            delay += max(0, value)
        }
        let due = max(now + UInt64(delay), lastDue)
        lastDue = due
        // Time spent with nothing to send lends no bytes: the rate counts from now.
        if queuedBytes == 0 && rateClock < due { rateClock = due }
        queue.append(Chunk(bytes: Array(bytes), due: due))
        queuedBytes += bytes.count
    }

    /// Bytes already in flight when the shaping began: they go first, without delay.
    func enqueueFirst(_ bytes: [UInt8], now: UInt64) {
        guard !bytes.isEmpty else { return }
        queue.insert(Chunk(bytes: bytes, due: now), at: head)
        queuedBytes += bytes.count
    }

    /// What may be written now.
    func next(now: UInt64) -> Next {
        if let limit, passed >= limit { return .limitReached }
        guard head < queue.count else { return .empty }
        let chunk = queue[head]
        if chunk.due > now { return .wait(until: chunk.due) }
        var count = chunk.bytes.count - chunk.offset
        if let limit { count = min(count, limit - passed) }
        if let (average, _) = slicer {
            if nextSliceAt > now { return .wait(until: nextSliceAt) }
            let low = max(1, average / 2)
            let size = low + Int(nextRandom() % UInt64(max(1, average + 1)))
            count = min(count, size)
        }
        if let rate {
            // Each byte written moves the rate's clock on by 1/rate s; bytes go while it is behind
            // the real clock by a millisecond (or one byte's time) at least. A late wake-up is made
            // up for, but an idle spell lends no more than 50 ms of bytes.
            let quantum = max(UInt64(1_000_000), UInt64(1e9 / Double(rate)))
            if rateClock + 50_000_000 < now { rateClock = now - 50_000_000 }
            if rateClock + quantum > now { return .wait(until: rateClock + quantum) }
            count = min(count, max(1, Int(Double(now - rateClock) / 1e9 * Double(rate))))
        }
        return .write(count)
    }

    /// The head chunk's next `count` bytes, to write.
    func withHead<T>(_ count: Int, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        let chunk = queue[head]
        return chunk.bytes.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[chunk.offset..<(chunk.offset + count)])) }
    }

    /// `count` bytes of the head chunk went out.
    func wrote(_ count: Int, now: UInt64) {
        queue[head].offset += count
        queuedBytes -= count
        passed += count
        if let rate { rateClock += UInt64(Double(count) * 1e9 / Double(rate)) }
        if let (_, delay) = slicer { nextSliceAt = now + UInt64(delay) * 1_000_000 }
        if queue[head].offset == queue[head].bytes.count {
            head += 1
            if head > 64 && head * 2 > queue.count {
                queue.removeFirst(head)
                head = 0
            }
        }
    }

    /// Everything still queued, in order, for a direction that goes back to the splice path.
    func takeAll() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(queuedBytes)
        for chunk in queue[head...] { bytes += chunk.bytes[chunk.offset...] }
        queue.removeAll()
        head = 0
        queuedBytes = 0
        return bytes
    }
}
