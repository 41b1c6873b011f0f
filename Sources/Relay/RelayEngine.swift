import CNetdRelay

#if canImport(Glibc)
import Glibc
#endif

/// The pairs of one relay loop and the copy itself, confined to the loop's thread.
///
/// Each direction of a pair moves bytes with splice(2): from the source socket into a pipe, from
/// the pipe into the destination socket, so they never enter user space. Pipes come from a small
/// pool and go back to it whenever they are empty, so an idle pair holds none. A direction only
/// reads while its pipe is empty: what the destination does not take stays in the source's
/// kernel buffer, and its peer feels TCP backpressure. Where splice is refused (EINVAL), that
/// direction falls back to read(2) and write(2) through one buffer of the loop.
///
/// Descriptors are registered edge-triggered; each end remembers whether it is readable and
/// writable until a call says EAGAIN.
final class RelayEngine {
    /// One side of a pair: its descriptor, what epoll said about it, and its counters.
    final class End {
        let descriptor: CInt
        let observer: (any RelayObserver)?
        let endsWhenInputEnds: Bool
        var readable = true
        var writable = true
        var read = 0
        var written = 0
        var failed = false
        /// An error epoll reported (SO_ERROR), acted on at the pair's next turn.
        var error: CInt = 0

        init(_ end: RelayEnd) {
            descriptor = end.descriptor
            observer = end.observer
            endsWhenInputEnds = end.endsWhenInputEnds
        }
    }

    /// One direction: bytes from `ends[source]` to the other end.
    struct Flow {
        let source: Int
        /// User-space bytes to write first (a prefix, or what the read/write fallback read).
        var pending: [UInt8]
        var pendingOffset = 0
        var pipe: Pipe?
        var inPipe = 0
        /// The source ended (EOF read).
        var sourceEnded = false
        /// No more reading from the source: it ended, or the destination's write side must end.
        var stopReading = false
        /// The destination's write side is shut (FIN sent): this direction is done.
        var done = false
        var spliceRefused = false

        /// Faults on this direction: it reads into user space and writes on timers (``Shaper``).
        var shaper: Shaper?

        var destination: Int { 1 - source }
        var hasPending: Bool { pendingOffset < pending.count }
    }

    final class Pair {
        let id: UInt64
        let ends: [End]
        var flows: [Flow]
        let resetPropagates: Bool
        var scheduled = false
        /// Faults that close the pair at a time (`reset`, `timeout`), soonest first.
        var timers: [(due: UInt64, timer: PairTimer)] = []
        /// Closing after a limit: both write sides are shut, what comes is thrown away until
        /// both ends have ended or this time has come.
        var closingUntil: UInt64?

        init(id: UInt64, _ first: RelayEnd, _ second: RelayEnd, resetPropagates: Bool) {
            self.id = id
            ends = [End(first), End(second)]
            // Flow 0 carries end 0's bytes to end 1, so it writes end 1's prefix first.
            flows = [Flow(source: 0, pending: second.prefix), Flow(source: 1, pending: first.prefix)]
            self.resetPropagates = resetPropagates
            if second.outputEnded { flows[0].stopReading = true; flows[0].done = true }
            if first.outputEnded { flows[1].stopReading = true; flows[1].done = true }
        }
    }

    struct Pipe {
        let read: CInt
        let write: CInt
    }

    private let epoll: CInt
    private let pipeBytes: Int
    /// False: every direction copies with read and write (the fallback), for tests.
    private let splice: Bool
    private let pairFinished: () -> Void
    private var pairs: [UInt64: Pair] = [:]
    /// Pairs with faults or timers, whose deadlines the loop's wait must honour.
    private var timed: Set<UInt64> = []
    private var readyList: [UInt64] = []
    private var pool: [Pipe] = []
    private let poolLimit = 32
    /// The fallback's buffer, shared by every pair of the loop.
    private var scratch = [UInt8](repeating: 0, count: 65536)
    /// Bytes one direction moves before the loop turns to other pairs.
    private let turnBytes = 1 << 20

    init(epoll: CInt, pipeBytes: Int, splice: Bool, pairFinished: @escaping () -> Void) {
        self.epoll = epoll
        self.splice = splice
        self.pipeBytes = pipeBytes
        self.pairFinished = pairFinished
    }

    var hasReadyWork: Bool { !readyList.isEmpty }
    var isEmpty: Bool { pairs.isEmpty }

    // MARK: Commands

    func add(pair id: UInt64, _ first: RelayEnd, _ second: RelayEnd, resetPropagates: Bool, faults: RelayFaults = RelayFaults()) {
        let pair = Pair(id: id, first, second, resetPropagates: resetPropagates)
        if !splice { for index in 0..<2 { pair.flows[index].spliceRefused = true } }
        pairs[id] = pair
        apply(faults, to: pair, fresh: true)
        for side in 0..<2 {
            var event = epoll_event()
            event.events = EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue
            event.data.u64 = id << 1 | UInt64(side)
            if epoll_ctl(epoll, EPOLL_CTL_ADD, pair.ends[side].descriptor, &event) != 0 {
                let code = errno
                fail(pair, side: side, code: code, call: "epoll_ctl")
                return
            }
        }
        schedule(pair)
    }

    func close(pair id: UInt64, side: Int, reset: Bool) {
        guard let pair = pairs[id] else { return }
        finish(pair, first: side, firstReset: reset, otherReset: reset)
    }

    /// Takes a pair out of the relay without closing it (for `netd --replace`): its descriptors
    /// leave epoll untouched, and what was in flight (user-space bytes, then the pipe's) comes
    /// back as the bytes bound for each side. Observers hear the last counts, never a close.
    func detach(pair id: UInt64) -> DetachedPair? {
        guard let pair = pairs.removeValue(forKey: id) else { return nil }
        timed.remove(id)
        pairFinished()
        report(pair)
        var bound: [[UInt8]] = [[], []]
        for flow in pair.flows {
            var bytes = flow.hasPending ? Array(flow.pending[flow.pendingOffset...]) : []
            if let shaper = flow.shaper { bytes += shaper.takeAll() }
            if let pipe = flow.pipe { bytes += drain(pipe, count: flow.inPipe) }
            bound[flow.destination] = bytes
        }
        for end in pair.ends { epoll_ctl(epoll, EPOLL_CTL_DEL, end.descriptor, nil) }
        let now = monotonicNanoseconds()
        return DetachedPair(
            descriptors: pair.ends.map(\.descriptor), bound: bound,
            outputEnded: [pair.flows[1].done, pair.flows[0].done],
            endsWhenInputEnds: pair.ends.map(\.endsWhenInputEnds),
            resetPropagates: pair.resetPropagates,
            timers: pair.timers.map { PairTimer(fault: $0.timer.fault, milliseconds: $0.due > now ? Int(($0.due - now) / 1_000_000) : 0, reset: $0.timer.reset) })
    }

    /// Sets the faults of a pair: each direction's shaping (an empty list takes it back to the
    /// splice path, bytes still queued first) and the timers to add.
    func setFaults(pair id: UInt64, _ faults: RelayFaults) {
        guard let pair = pairs[id] else { return }
        apply(faults, to: pair)
        schedule(pair)
    }

    /// - Parameter fresh: the pair is new: its prefixes (bytes received before it was made) are
    ///   shaped like any others; on a pair already moving, bytes in flight go first.
    private func apply(_ faults: RelayFaults, to pair: Pair, fresh: Bool = false) {
        let now = monotonicNanoseconds()
        for index in 0..<2 {
            guard let shapes = faults.shaping[index] else { continue }
            var flow = pair.flows[index]
            if shapes.isEmpty {
                // Back to the splice path: what was queued goes first, as pending bytes.
                if let shaper = flow.shaper {
                    let left = flow.hasPending ? Array(flow.pending[flow.pendingOffset...]) : []
                    flow.pending = left + shaper.takeAll()
                    flow.pendingOffset = 0
                }
                flow.shaper = nil
            } else {
                let shaper = Shaper(shapes, now: now)
                // What was in flight already (user-space bytes, the pipe's) goes first, unshaped in time.
                var inFlight = flow.shaper?.takeAll() ?? []
                if flow.hasPending { inFlight = Array(flow.pending[flow.pendingOffset...]) + inFlight }
                flow.pending = []
                flow.pendingOffset = 0
                if let pipe = flow.pipe {
                    inFlight += drain(pipe, count: flow.inPipe)
                    flow.pipe = nil
                    flow.inPipe = 0
                }
                if fresh {
                    if !inFlight.isEmpty { shaper.enqueue(inFlight[...], now: now) }
                } else {
                    shaper.enqueueFirst(inFlight, now: now)
                }
                flow.shaper = shaper
            }
            pair.flows[index] = flow
        }
        for timer in faults.timers {
            pair.timers.append((now + UInt64(max(0, timer.milliseconds)) * 1_000_000, timer))
            pair.timers.sort { $0.due < $1.due }
        }
        if !faults.removingTimers.isEmpty { pair.timers.removeAll { faults.removingTimers.contains($0.timer.fault) } }
        if pair.timers.isEmpty && pair.flows.allSatisfy({ $0.shaper == nil }) && pair.closingUntil == nil {
            timed.remove(pair.id)
        } else {
            timed.insert(pair.id)
        }
    }

    /// Reads what a pipe holds (`count` bytes) and returns the pipe to the pool.
    private func drain(_ pipe: Pipe, count: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        var left = count
        var chunk = [UInt8](repeating: 0, count: 65536)
        while left > 0 {
            let got = chunk.withUnsafeMutableBytes { Glibc.read(pipe.read, $0.baseAddress, min($0.count, left)) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { break }
            bytes += chunk[0..<got]
            left -= got
        }
        if left == 0 { release(pipe) } else { Glibc.close(pipe.read); Glibc.close(pipe.write) }
        return bytes
    }

    // MARK: Timers

    /// The soonest time something waits for: a delayed chunk, a rate, a pair's timer, a closing.
    func nextDeadline() -> UInt64? {
        guard !timed.isEmpty else { return nil }
        var soonest: UInt64?
        for id in timed {
            guard let pair = pairs[id] else { continue }
            for candidate in [pair.timers.first?.due, pair.closingUntil, pair.flows[0].shaper?.wakeAt, pair.flows[1].shaper?.wakeAt] {
                if let candidate, candidate < (soonest ?? .max) { soonest = candidate }
            }
        }
        return soonest
    }

    /// Runs what is due: pairs' timers close them, waiting directions go again.
    func fireTimers() {
        // Without faults (the common case) the loop pays nothing here: no clock read, no copy.
        guard !timed.isEmpty else { return }
        let now = monotonicNanoseconds()
        for id in Array(timed) {
            guard let pair = pairs[id] else {
                timed.remove(id)
                continue
            }
            if let closing = pair.closingUntil, closing <= now {
                finish(pair, first: 0, firstReset: false, otherReset: false)
                continue
            }
            if let (due, timer) = pair.timers.first, due <= now {
                pair.timers.removeFirst()
                let detail = timer.reset ? "reset" : "closed after \(timer.milliseconds) ms"
                for end in pair.ends { end.observer?.faultActed(fault: timer.fault, detail: detail) }
                finish(pair, first: 0, firstReset: timer.reset, otherReset: timer.reset)
                continue
            }
            for index in 0..<2 {
                if let shaper = pair.flows[index].shaper, let wake = shaper.wakeAt, wake <= now {
                    shaper.wakeAt = nil
                    schedule(pair)
                }
            }
        }
    }

    func descriptor(pair id: UInt64, side: Int) -> CInt? {
        pairs[id]?.ends[side].descriptor
    }

    func closeAll() {
        for pair in Array(pairs.values) { finish(pair, first: 0, firstReset: false, otherReset: false) }
        for pipe in pool { Glibc.close(pipe.read); Glibc.close(pipe.write) }
        pool.removeAll()
    }

    // MARK: Readiness

    func ready(token: UInt64, events: UInt32) {
        guard let pair = pairs[token >> 1] else { return }
        let end = pair.ends[Int(token & 1)]
        if events & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 { end.readable = true }
        if events & (EPOLLOUT.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 { end.writable = true }
        if events & EPOLLERR.rawValue != 0 {
            // A reset seen while no call was under way (a half-closed pair waiting on the other
            // direction) would go unnoticed until the next write; it fails the end now.
            var code: CInt = 0
            var length = socklen_t(MemoryLayout<CInt>.size)
            if getsockopt(end.descriptor, SOL_SOCKET, SO_ERROR, &code, &length) == 0, code != 0 { end.error = code }
        }
        schedule(pair)
    }

    private func schedule(_ pair: Pair) {
        guard !pair.scheduled else { return }
        pair.scheduled = true
        readyList.append(pair.id)
    }

    func pumpReady() {
        let batch = readyList
        readyList.removeAll(keepingCapacity: true)
        for id in batch {
            guard let pair = pairs[id] else { continue }
            pair.scheduled = false
            pump(pair)
        }
    }

    // MARK: Moving bytes

    private enum Outcome {
        /// Waiting for readiness (or done).
        case idle
        /// Moved its turn's worth; run again after the others.
        case more
        /// A side failed; the pair is gone.
        case failed
    }

    private func pump(_ pair: Pair) {
        if pair.closingUntil != nil { return drainClosing(pair) }
        for side in 0..<2 where pair.ends[side].error != 0 {
            let code = pair.ends[side].error
            return fail(pair, side: side, code: code, call: code == EPIPE ? "write" : "read")
        }
        var again = false
        for index in 0..<2 {
            switch move(pair, flow: index) {
            case .idle: break
            case .more: again = true
            case .failed:
                report(pair)
                return
            }
        }
        report(pair)
        if pair.flows[0].done && pair.flows[1].done {
            finish(pair, first: 0, firstReset: false, otherReset: false)
        } else if again {
            schedule(pair)
        }
    }

    /// Moves one direction until it would block, ends, fails, or has moved its turn.
    private func move(_ pair: Pair, flow index: Int) -> Outcome {
        var flow = pair.flows[index]
        defer { if pairs[pair.id] != nil { pair.flows[index] = flow } }
        guard !flow.done else { return .idle }
        if flow.shaper != nil { return moveShaped(pair, flow: &flow) }
        let source = pair.ends[flow.source]
        let destination = pair.ends[flow.destination]
        var moved = 0
        while moved < turnBytes {
            if flow.hasPending || flow.inPipe > 0 {
                // What is bound for the destination goes first: user-space bytes, then the pipe.
                guard destination.writable else { return .idle }
                let fromPending = flow.hasPending
                let count =
                    if fromPending {
                        flow.pending.withUnsafeBytes { bytes in
                            Glibc.write(destination.descriptor, bytes.baseAddress! + flow.pendingOffset, bytes.count - flow.pendingOffset)
                        }
                    } else {
                        netd_splice(flow.pipe!.read, destination.descriptor, UInt(flow.inPipe))
                    }
                if count < 0 {
                    let code = errno
                    if code == EINTR { continue }
                    if code == EAGAIN { destination.writable = false; return .idle }
                    pair.flows[index] = flow
                    fail(pair, side: flow.destination, code: code, call: "write")
                    return .failed
                }
                if fromPending {
                    flow.pendingOffset += count
                    if !flow.hasPending {
                        flow.pending = []
                        flow.pendingOffset = 0
                    }
                } else {
                    flow.inPipe -= count
                }
                destination.written += count
                moved += count
                continue
            }
            if let pipe = flow.pipe {
                flow.pipe = nil
                release(pipe)
            }
            if flow.stopReading {
                endOutput(pair, flow: &flow)
                return .idle
            }
            guard source.readable else { return .idle }
            let count: Int
            if !flow.spliceRefused {
                guard let pipe = acquire() else {
                    flow.spliceRefused = true
                    continue
                }
                flow.pipe = pipe
                count = netd_splice(source.descriptor, pipe.write, UInt(pipeBytes > 0 ? pipeBytes : 65536))
                if count > 0 { flow.inPipe = count }
            } else {
                count = scratch.withUnsafeMutableBytes { Glibc.read(source.descriptor, $0.baseAddress, $0.count) }
                if count > 0 { flow.pending = Array(scratch[0..<count]) }
            }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN { source.readable = false; continue }
                if code == EINVAL || code == ENOSYS, !flow.spliceRefused { flow.spliceRefused = true; continue }
                pair.flows[index] = flow
                fail(pair, side: flow.source, code: code, call: "read")
                return .failed
            }
            if count == 0 {
                sourceEnded(pair, flow: &flow)
                continue
            }
            source.read += count
            moved += count
        }
        return .more
    }

    /// The source ended (EOF was read): this direction reads no more. Node without allowHalfOpen:
    /// the source's own write side ends after what is already bound for it, so nothing more is
    /// read from the other side either.
    private func sourceEnded(_ pair: Pair, flow: inout Flow) {
        flow.sourceEnded = true
        flow.stopReading = true
        let source = pair.ends[flow.source]
        source.observer?.inputEnded()
        if source.endsWhenInputEnds {
            pair.flows[flow.destination].stopReading = true
            schedule(pair)
        }
    }

    /// One shaped direction: reads into the shaper's queue (unless it holds), writes what its
    /// delays, rate, slices and limit allow now, and asks for a wake-up when the next may go.
    private func moveShaped(_ pair: Pair, flow: inout Flow) -> Outcome {
        let shaper = flow.shaper!
        let source = pair.ends[flow.source]
        let destination = pair.ends[flow.destination]
        let now = monotonicNanoseconds()
        if shaper.holds {
            for shape in shaper.faults(where: { $0 == .hold }) where shaper.firstReport(shape.fault) {
                report(pair, fault: shape.fault, "holding data")
            }
            return .idle
        }
        var moved = 0
        while !flow.stopReading, source.readable, shaper.queuedBytes < shaper.queueLimit, moved < turnBytes {
            let count = scratch.withUnsafeMutableBytes { Glibc.read(source.descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN { source.readable = false; break }
                fail(pair, side: flow.source, code: code, call: "read")
                return .failed
            }
            if count == 0 {
                sourceEnded(pair, flow: &flow)
                break
            }
            source.read += count
            moved += count
            if shaper.discards {
                for shape in shaper.faults(where: { $0 == .blackhole }) where shaper.firstReport(shape.fault) {
                    report(pair, fault: shape.fault, "passing nothing")
                }
                continue
            }
            shaper.enqueue(scratch[0..<count], now: now)
            for shape in shaper.faults(where: { if case .latency = $0 { true } else { false } }) where shaper.firstReport(shape.fault) {
                if case .latency(let milliseconds, let jitter) = shape.kind {
                    report(pair, fault: shape.fault, jitter > 0 ? "delayed \(milliseconds) ms ± \(jitter) ms" : "delayed \(milliseconds) ms")
                }
            }
        }
        writing: while destination.writable {
            switch shaper.next(now: now) {
            case .empty:
                break writing
            case .wait(let until):
                shaper.wakeAt = until
                timed.insert(pair.id)
                for shape in shaper.faults(where: { if case .bandwidth = $0 { true } else if case .slicer = $0 { true } else { false } })
                where shaper.firstReport(shape.fault) {
                    switch shape.kind {
                    case .bandwidth(let rate): report(pair, fault: shape.fault, "limited to \(rate) bytes/s")
                    case .slicer(let average, let delay): report(pair, fault: shape.fault, "sliced into writes of about \(average) bytes, \(delay) ms apart")
                    default: break
                    }
                }
                break writing
            case .limitReached:
                for shape in shaper.faults(where: { if case .limit = $0 { true } else { false } }) {
                    if case .limit(let bytes) = shape.kind, shaper.passed >= bytes { report(pair, fault: shape.fault, "closed after \(bytes) bytes") }
                }
                closeGracefully(pair)
                return .failed
            case .write(let allowed):
                let count = shaper.withHead(allowed) { Glibc.write(destination.descriptor, $0.baseAddress, $0.count) }
                if count < 0 {
                    let code = errno
                    if code == EINTR { continue }
                    if code == EAGAIN { destination.writable = false; break writing }
                    fail(pair, side: flow.destination, code: code, call: "write")
                    return .failed
                }
                shaper.wrote(count, now: now)
                destination.written += count
                moved += count
            }
        }
        if shaper.isEmpty && flow.stopReading { endOutput(pair, flow: &flow) }
        return moved >= turnBytes ? .more : .idle
    }

    /// Tells both ends' observers what a fault did.
    private func report(_ pair: Pair, fault: UInt64, _ detail: String) {
        for end in pair.ends { end.observer?.faultActed(fault: fault, detail: detail) }
    }

    /// Closes after a limit without losing what went before it: both write sides are shut at
    /// once (each peer reads everything sent, then its end), and what still arrives is read and
    /// thrown away, so that closing finds nothing unread (which would make it a reset), until both
    /// ends have ended or a second has passed.
    private func closeGracefully(_ pair: Pair) {
        report(pair)
        for end in pair.ends { shutdown(end.descriptor, CInt(SHUT_WR)) }
        for index in 0..<2 {
            pair.flows[index].done = true
            pair.flows[index].stopReading = true
        }
        pair.closingUntil = monotonicNanoseconds() + 1_000_000_000
        timed.insert(pair.id)
        schedule(pair)
    }

    private func drainClosing(_ pair: Pair) {
        var ended = 0
        for end in pair.ends {
            while true {
                let count = scratch.withUnsafeMutableBytes { Glibc.read(end.descriptor, $0.baseAddress, $0.count) }
                if count > 0 { continue }
                if count < 0 && errno == EINTR { continue }
                if count < 0 && errno == EAGAIN { break }
                ended += 1
                break
            }
        }
        if ended == 2 { finish(pair, first: 0, firstReset: false, otherReset: false) }
    }

    /// The source ended and everything bound for the destination is written: FIN to it.
    private func endOutput(_ pair: Pair, flow: inout Flow) {
        guard !flow.done else { return }
        flow.done = true
        let destination = pair.ends[flow.destination]
        shutdown(destination.descriptor, CInt(SHUT_WR))
        destination.observer?.outputEnded()
    }

    private func report(_ pair: Pair) {
        for end in pair.ends where end.read > 0 || end.written > 0 {
            end.observer?.moved(read: end.read, written: end.written)
            end.read = 0
            end.written = 0
        }
    }

    // MARK: Ending

    /// `side` failed (`code` from `call`): it closes, and the other side is reset (or closed).
    private func fail(_ pair: Pair, side: Int, code: CInt, call: String) {
        let end = pair.ends[side]
        end.failed = true
        let name = RelayErrno.name(code)
        report(pair)
        end.observer?.failed(code: name, message: "\(call) \(name)")
        finish(pair, first: side, firstReset: false, otherReset: pair.resetPropagates)
    }

    /// Closes both ends (`first` first) and forgets the pair.
    private func finish(_ pair: Pair, first: Int, firstReset: Bool, otherReset: Bool) {
        guard pairs.removeValue(forKey: pair.id) != nil else { return }
        timed.remove(pair.id)
        pairFinished()
        report(pair)
        for flow in pair.flows {
            guard let pipe = flow.pipe else { continue }
            if flow.inPipe == 0 { release(pipe) } else { Glibc.close(pipe.read); Glibc.close(pipe.write) }
        }
        for (side, reset) in [(first, firstReset), (1 - first, otherReset)] {
            let end = pair.ends[side]
            epoll_ctl(epoll, EPOLL_CTL_DEL, end.descriptor, nil)
            if reset {
                // SO_LINGER with a zero timeout makes close send RST.
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                setsockopt(end.descriptor, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            }
            Glibc.close(end.descriptor)
        }
        for side in [first, 1 - first] {
            let end = pair.ends[side]
            end.observer?.closed(hadError: end.failed)
        }
    }

    // MARK: Pipes

    private func acquire() -> Pipe? {
        if let pipe = pool.popLast() { return pipe }
        var fds: [CInt] = [0, 0]
        guard netd_pipe(&fds) == 0 else { return nil }
        if pipeBytes > 0 { _ = netd_set_pipe_size(fds[1], CInt(pipeBytes)) }
        return Pipe(read: fds[0], write: fds[1])
    }

    private func release(_ pipe: Pipe) {
        if pool.count < poolLimit {
            pool.append(pipe)
        } else {
            Glibc.close(pipe.read)
            Glibc.close(pipe.write)
        }
    }
}

/// POSIX names for the errors a relay meets, as Node spells them in `error.code`.
enum RelayErrno {
    static func name(_ code: CInt) -> String {
        switch code {
        case ECONNRESET: "ECONNRESET"
        case EPIPE: "EPIPE"
        case ETIMEDOUT: "ETIMEDOUT"
        case ECONNABORTED: "ECONNABORTED"
        case EHOSTUNREACH: "EHOSTUNREACH"
        case ENETUNREACH: "ENETUNREACH"
        case EBADF: "EBADF"
        case ENOMEM: "ENOMEM"
        case ENOBUFS: "ENOBUFS"
        default: "E\(code)"
        }
    }
}
