/// What a relay tells the owner of one of its ends, on the relay's own thread.
///
/// Calls come in this order for an end: any number of ``moved(read:written:)``, at most one
/// ``inputEnded()`` and one ``outputEnded()``, at most one ``failed(code:message:)``, then
/// exactly one ``closed(hadError:)``, after which nothing more.
public protocol RelayObserver: AnyObject, Sendable {
    /// Bytes moved since the last call: `read` from this end's descriptor, `written` to it.
    func moved(read: Int, written: Int)
    /// This end's peer ended its writing (an EOF was read).
    func inputEnded()
    /// The relay ended this end's write side (FIN) after the last byte bound for it.
    func outputEnded()
    /// This end failed: `code` is the POSIX name (`ECONNRESET`), `message` Node's form (`read ECONNRESET`).
    func failed(code: String, message: String)
    /// The relay closed this end's descriptor; nothing more moves.
    func closed(hadError: Bool)
    /// A fault (``Shaping``, ``PairTimer``) acted on this end's pair: `detail` says what it did
    /// (`delayed 200 ms`, `closed after 4096 bytes`, `reset`). Once per fault and direction.
    func faultActed(fault: UInt64, detail: String)
}

extension RelayObserver {
    public func faultActed(fault: UInt64, detail: String) {}
}

/// The faults of one pair, as the relay applies them (contract section 12).
public struct RelayFaults: Sendable, Equatable {
    /// Per direction (0 carries side 0's bytes to side 1, 1 the other way): the shaping it gets;
    /// nil leaves a direction as it is, an empty list takes its shaping away.
    public var shaping: [[Shaping]?]
    /// Timers to start now.
    public var timers: [PairTimer]
    /// Timers of these faults to stop.
    public var removingTimers: Set<UInt64>

    public init(shaping: [[Shaping]?] = [nil, nil], timers: [PairTimer] = [], removingTimers: Set<UInt64> = []) {
        self.shaping = shaping
        self.timers = timers
        self.removingTimers = removingTimers
    }

    public var isEmpty: Bool { shaping.allSatisfy { $0 == nil } && timers.isEmpty && removingTimers.isEmpty }
}

/// One side of a relayed pair, as handed to ``Relay/join(_:_:resetPropagates:)``.
///
/// - Important: The descriptor belongs to the relay from the moment it is handed over: the relay
///   reads, writes, shuts down and closes it, and nobody else may touch it. It must be a
///   non-blocking stream socket (TCP or Unix).
public struct RelayEnd: Sendable {
    public var descriptor: CInt
    /// Bytes to write to this end before anything read from the other one: what the other side's
    /// owner had already taken out of the kernel (a socket's unread buffer, bytes an RPC client
    /// sent after its request line).
    public var prefix: [UInt8]
    /// netd ended this end's write side already (`socket.end`): nothing more is written to it,
    /// and what the other end sends stays unread until the pair closes.
    public var outputEnded: Bool
    /// Node's `allowHalfOpen: false`: when this end's peer ends, its own write side ends too
    /// (after the bytes already bound for it), so the pair closes.
    public var endsWhenInputEnds: Bool
    public var observer: (any RelayObserver)?

    public init(
        descriptor: CInt, prefix: [UInt8] = [], outputEnded: Bool = false, endsWhenInputEnds: Bool = false,
        observer: (any RelayObserver)? = nil
    ) {
        self.descriptor = descriptor
        self.prefix = prefix
        self.outputEnded = outputEnded
        self.endsWhenInputEnds = endsWhenInputEnds
        self.observer = observer
    }
}

/// A handle on a pair a relay holds, for what its owners may still ask of it: closing one side
/// (which closes the pair) and setting socket options on a side's descriptor.
public struct RelayLink: Sendable, Hashable {
    let loop: RelayLoop
    let pair: UInt64

    public static func == (left: RelayLink, right: RelayLink) -> Bool { left.loop === right.loop && left.pair == right.pair }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(loop))
        hasher.combine(pair)
    }

    /// Closes the pair: `side` (0 or 1, the order given to `join`) first, with RST if `reset`,
    /// then the other side (RST too if `reset`, else a plain close). Bytes still in flight are
    /// discarded, as `socket.close` discards unread bytes.
    /// Returns once both descriptors are closed and their observers told.
    public func close(side: Int, reset: Bool) async {
        await withCheckedContinuation { continuation in
            loop.submit { engine in
                engine.close(pair: pair, side: side, reset: reset)
                continuation.resume()
            }
        }
    }

    /// Takes the pair out of the relay, open, with what was in flight (``DetachedPair``); nil
    /// when it has closed already. Nothing moves on it from then on.
    public func detach() async -> DetachedPair? {
        await withCheckedContinuation { continuation in
            loop.submit { engine in continuation.resume(returning: engine.detach(pair: pair)) }
        }
    }

    /// Changes the pair's faults (``RelayFaults``); false when it has closed already.
    @discardableResult
    public func setFaults(_ faults: RelayFaults) async -> Bool {
        await withCheckedContinuation { continuation in
            loop.submit { engine in
                guard engine.descriptor(pair: pair, side: 0) != nil else { return continuation.resume(returning: false) }
                engine.setFaults(pair: pair, faults)
                continuation.resume(returning: true)
            }
        }
    }

    /// Runs `body` with the descriptor of `side` on the relay's thread, while it is open; false
    /// when the pair has closed already.
    public func withDescriptor(side: Int, _ body: @escaping @Sendable (CInt) -> Void) async -> Bool {
        await withCheckedContinuation { continuation in
            loop.submit { engine in
                guard let descriptor = engine.descriptor(pair: pair, side: side) else { return continuation.resume(returning: false) }
                body(descriptor)
                continuation.resume(returning: true)
            }
        }
    }
}

/// A pair taken out of a relay, still open (``RelayLink/detach()``): everything needed to join
/// it again, here or in another process, as if it had never stopped.
public struct DetachedPair: Sendable, Equatable {
    /// The two descriptors, in the order given to `join`; the caller owns them now.
    public var descriptors: [CInt]
    /// Bytes read from one side and not yet written to the other: `bound[i]` goes to side `i` first.
    public var bound: [[UInt8]]
    /// The relay had ended side `i`'s write side (FIN sent).
    public var outputEnded: [Bool]
    public var endsWhenInputEnds: [Bool]
    public var resetPropagates: Bool
    /// Fault timers still running, with the time each had left.
    public var timers: [PairTimer]

    public init(
        descriptors: [CInt], bound: [[UInt8]], outputEnded: [Bool], endsWhenInputEnds: [Bool], resetPropagates: Bool, timers: [PairTimer] = []
    ) {
        self.timers = timers
        self.descriptors = descriptors
        self.bound = bound
        self.outputEnded = outputEnded
        self.endsWhenInputEnds = endsWhenInputEnds
        self.resetPropagates = resetPropagates
    }

    /// Side `side` as an end to join again, telling `observer`.
    public func end(_ side: Int, observer: (any RelayObserver)?) -> RelayEnd {
        RelayEnd(
            descriptor: descriptors[side], prefix: bound[side], outputEnded: outputEnded[side],
            endsWhenInputEnds: endsWhenInputEnds[side], observer: observer)
    }
}
