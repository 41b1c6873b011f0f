import CNetdRelay
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
import NetdLocks
#endif

/// The relays of netd: a few threads, each with its own epoll loop, that move bytes between
/// pairs of descriptors with splice(2). Pairs are spread over the loops in turn.
///
/// Why beside SwiftNIO and not inside it: NIO's channels read into `ByteBuffer`s whenever their
/// descriptor is readable, and NIO has no way to hand readiness to a handler without reading, so
/// a NIO handler could only copy through user space. A relayed socket therefore leaves NIO (its
/// channel is closed after netd takes a `dup` of its descriptor) and belongs to one relay loop
/// from then on: one owner per descriptor at a time.
public final class Relay: Sendable {
    private let loops: [RelayLoop]
    private let next = Atomic<Int>(0)

    /// - Parameters:
    ///   - threads: relay loops (each one thread).
    ///   - pipeBytes: the capacity asked for each splice pipe (the kernel rounds it to pages);
    ///     0 keeps the kernel's default (64 KiB). A pipe holds at most this many bytes of one
    ///     direction, so it bounds what netd holds in flight per direction.
    ///   - splice: false copies through user space (read and write) from the start: the fallback
    ///     that descriptors refusing splice get, exercised by tests.
    public init(threads: Int, pipeBytes: Int = 0, splice: Bool = true) throws {
        loops = try (0..<max(1, threads)).map { try RelayLoop(index: $0, pipeBytes: pipeBytes, splice: splice) }
    }

    /// Joins two ends and relays bytes both ways until the pair is done (both directions ended,
    /// or one side failed or was closed).
    ///
    /// - Parameter resetPropagates: a reset (or any failure) on one side resets the other (socat,
    ///   forwards and pipes); otherwise the other side gets a plain close (an attached stream).
    @discardableResult
    ///   - faults: faults that act on the pair from its first byte (contract section 12).
    public func join(_ first: RelayEnd, _ second: RelayEnd, resetPropagates: Bool, faults: RelayFaults = RelayFaults()) -> RelayLink {
        let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
        let loop = loops[index % loops.count]
        let pair = loop.allocatePair()
        loop.submit { $0.add(pair: pair, first, second, resetPropagates: resetPropagates, faults: faults) }
        return RelayLink(loop: loop, pair: pair)
    }

    /// Pairs held right now, over every loop.
    public var pairCount: Int { loops.reduce(0) { $0 + $1.pairCount } }

    /// Closes every pair (plain closes) and stops the threads; returns once they have stopped.
    public func shutdown() {
        for loop in loops { loop.stop() }
    }
}

/// One relay thread: its epoll descriptor, an eventfd that wakes it for commands, and the
/// commands queued by other threads. Everything else lives in its ``RelayEngine``, on its thread.
final class RelayLoop: Sendable {
    typealias Command = @Sendable (RelayEngine) -> Void

    private let epoll: CInt
    private let wake: CInt
    private let commands = Locked<[Command]>([])
    private let nextPair = Atomic<UInt64>(1)
    private let pairs = Atomic<Int>(0)
    private let stopped = Locked<(stopping: Bool, done: Bool)>((false, false))
    private let finished = DispatchSemaphore(value: 0)

    init(index: Int, pipeBytes: Int, splice: Bool) throws {
        epoll = epoll_create1(CInt(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw RelayError.system("epoll_create1", errno) }
        wake = netd_eventfd()
        guard wake >= 0 else {
            close(epoll)
            throw RelayError.system("eventfd", errno)
        }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = 0
        guard epoll_ctl(epoll, EPOLL_CTL_ADD, wake, &event) == 0 else {
            close(wake)
            close(epoll)
            throw RelayError.system("epoll_ctl", errno)
        }
        let epoll = self.epoll
        let wake = self.wake
        OwnThread.start(name: "netd-relay-\(index)") { [self] in
            let engine = RelayEngine(epoll: epoll, pipeBytes: pipeBytes, splice: splice, pairFinished: { self.pairs.subtract(1, ordering: .relaxed) })
            self.run(engine, wake: wake)
            // Under the queue's lock: a command is either queued before this (and run below) or
            // sees the loop done and runs on its own.
            let late = self.commands.withLock { queue -> [Command] in
                self.stopped.withLock { $0.done = true }
                defer { queue.removeAll() }
                return queue
            }
            for command in late { command(engine) }
            engine.closeAll()
            self.finished.signal()
        }
    }

    var pairCount: Int { pairs.load(ordering: .relaxed) }

    /// A new pair's id; the pair counts from here until the engine finishes it.
    func allocatePair() -> UInt64 {
        pairs.add(1, ordering: .relaxed)
        return nextPair.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    /// Runs `command` on the loop's thread, soon. Once the loop has stopped, it runs at once on an
    /// empty engine (every pair is closed by then), so that a late caller is answered, not left waiting.
    func submit(_ command: @escaping Command) {
        let first = commands.withLock { queue -> Bool? in
            if stopped.withLock({ $0.done }) { return nil }
            queue.append(command)
            return queue.count == 1
        }
        guard let first else {
            return command(RelayEngine(epoll: -1, pipeBytes: 0, splice: false, pairFinished: {}))
        }
        if first {
            var one: UInt64 = 1
            _ = write(wake, &one, 8)
        }
    }

    func stop() {
        let already = stopped.withLock { state -> Bool in
            defer { state.stopping = true }
            return state.stopping
        }
        guard !already else { return }
        submit { $0.closeAll() }
        finished.wait()
        close(wake)
        close(epoll)
    }

    private func run(_ engine: RelayEngine, wake: CInt) {
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        while true {
            // Faults wait on time: the wait ends at the soonest deadline (rounded up to the millisecond).
            var timeout: CInt = -1
            if engine.hasReadyWork {
                timeout = 0
            } else if let deadline = engine.nextDeadline() {
                let now = monotonicNanoseconds()
                timeout = deadline <= now ? 0 : CInt(min(60_000, (deadline - now + 999_999) / 1_000_000))
            }
            let count = events.withUnsafeMutableBufferPointer { buffer in
                epoll_wait(epoll, buffer.baseAddress, CInt(buffer.count), timeout)
            }
            if count < 0 {
                if errno == EINTR { continue }
                // Nothing can be relayed without epoll; this cannot happen with valid descriptors.
                fatalError("netd relay: epoll_wait failed with errno \(errno)")
            }
            for index in 0..<Int(count) {
                let token = events[index].data.u64
                if token == 0 {
                    var value: UInt64 = 0
                    _ = read(wake, &value, 8)
                    let queued = commands.withLock { queue -> [Command] in
                        defer { queue.removeAll(keepingCapacity: true) }
                        return queue
                    }
                    for command in queued { command(engine) }
                } else {
                    engine.ready(token: token, events: events[index].events)
                }
            }
            engine.fireTimers()
            engine.pumpReady()
            if stopped.withLock({ $0.stopping }) && engine.isEmpty && commands.withLock({ $0.isEmpty }) { return }
        }
    }
}

enum RelayError: Error, CustomStringConvertible {
    case system(String, CInt)

    var description: String {
        switch self {
        case .system(let call, let code): "\(call) failed: \(String(cString: strerror(code)))"
        }
    }
}

/// A thread of its own, from pthread_create: Foundation's Thread would link all of Foundation, ICU
/// included, into every program that uses this module (netctl does, for descriptor passing), and
/// make it start several milliseconds slower.
enum OwnThread {
    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    static func start(name: String, _ body: @escaping @Sendable () -> Void) {
        let shortName = String(decoding: name.utf8.prefix(15), as: UTF8.self)
        let context = Unmanaged.passRetained(Body {
            _ = netd_name_this_thread(shortName)
            body()
        }).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { context in
            Unmanaged<Body>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, context)
        precondition(created == 0, "pthread_create: \(created)")
        pthread_detach(thread)
    }
}
