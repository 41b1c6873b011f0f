import Foundation
import NetdRelay
import NetdTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
import NetdLocks
#endif

/// The relay between real sockets: loopback TCP pairs and Unix socket pairs, with blocking
/// peers on threads of their own (``Sockets/onThread(_:)``: blocking the few threads of Swift's
/// cooperative pool would starve the other tests running beside these).
@Suite("Relay: splice between real sockets")
struct RelayTests {
    @Test("several MiB each way at once arrive intact, TCP to TCP")
    func bothWaysTCP() async throws {
        try await bothWays(.tcp, .tcp)
    }

    @Test("several MiB each way at once arrive intact, TCP to Unix")
    func bothWaysTCPToUnix() async throws {
        try await bothWays(.tcp, .unix)
    }

    @Test("several MiB each way at once arrive intact, Unix to Unix")
    func bothWaysUnix() async throws {
        try await bothWays(.unix, .unix)
    }

    @Test("the read/write fallback (where splice is refused) moves the same bytes")
    func bothWaysWithoutSplice() async throws {
        try await bothWays(.tcp, .unix, splice: false)
    }

    private func bothWays(_ left: SocketKind, _ right: SocketKind, splice: Bool = true) async throws {
        let relay = try Relay(threads: 1, splice: splice)
        defer { relay.shutdown() }
        let a = try Sockets.pair(left)
        let b = try Sockets.pair(right)
        let observers = [Watcher(), Watcher()]
        relay.join(RelayEnd(descriptor: a.relayed, observer: observers[0]), RelayEnd(descriptor: b.relayed, observer: observers[1]), resetPropagates: true)
        let up = Sockets.pattern(5 << 20, seed: 1)
        let down = Sockets.pattern(3 << 20 + 17, seed: 2)
        async let fromA = Sockets.sendThenReadAll(a.peer, up)
        async let fromB = Sockets.sendThenReadAll(b.peer, down)
        let (gotAtA, gotAtB) = try await (fromA, fromB)
        #expect(Sockets.same(gotAtB, up))
        #expect(Sockets.same(gotAtA, down))
        try await observers[0].waitClosed()
        try await observers[1].waitClosed()
        #expect(observers[0].totals == (read: up.count, written: down.count))
        #expect(observers[1].totals == (read: down.count, written: up.count))
        #expect(observers[0].log.contains("inputEnded") && observers[0].log.contains("outputEnded"))
        #expect(!observers[0].log.contains("failed"))
        close(a.peer)
        close(b.peer)
    }

    @Test("a pair taken out mid-transfer and joined to another relay loses and repeats nothing")
    func detachAndJoinElsewhere() async throws {
        let first = try Relay(threads: 1)
        let second = try Relay(threads: 1)
        defer { second.shutdown() }
        let a = try Sockets.pair(.tcp)
        let b = try Sockets.pair(.unix)
        // b is full before the pair is made (its peer reads nothing yet), so nothing bound for it
        // can be written: its prefix, and what the relay reads from a, wait in the relay.
        var filler: [UInt8] = []
        let chunk = Sockets.pattern(4096, seed: 30)
        while true {
            let written = chunk.withUnsafeBytes { write(b.relayed, $0.baseAddress, $0.count) }
            if written > 0 { filler += chunk[0..<written] }
            if written != chunk.count { break }
        }
        let head = Array("in flight".utf8)
        let link = first.join(RelayEnd(descriptor: a.relayed), RelayEnd(descriptor: b.relayed, prefix: head), resetPropagates: true)
        let up = Sockets.pattern(4 << 20, seed: 31)
        let down = Sockets.pattern(1 << 20 + 9, seed: 32)
        async let sentUp: Void = Sockets.onThread { try Sockets.send(a.peer, up); shutdown(a.peer, CInt(SHUT_WR)) }
        try await Task.sleep(for: .milliseconds(100))
        let detached = try #require(await link.detach())
        #expect(await link.detach() == nil, "a pair is taken out once")
        #expect(detached.bound[1].starts(with: head), "what was bound for b came out of the relay, first")
        first.shutdown()
        let watchers = [Watcher(), Watcher()]
        second.join(detached.end(0, observer: watchers[0]), detached.end(1, observer: watchers[1]), resetPropagates: detached.resetPropagates)
        async let atB = Sockets.sendThenReadAll(b.peer, down)
        let atA = try await Sockets.onThread { try Sockets.readAll(a.peer) }
        try await sentUp
        #expect(Sockets.same(try await atB, filler + head + up))
        #expect(Sockets.same(atA, down))
        close(a.peer)
        close(b.peer)
    }

    @Test("prefixes go first, then the relayed bytes")
    func prefixesFirst() async throws {
        let relay = try Relay(threads: 1)
        defer { relay.shutdown() }
        let a = try Sockets.pair(.tcp)
        let b = try Sockets.pair(.unix)
        let watcher = Watcher()
        relay.join(
            RelayEnd(descriptor: a.relayed, prefix: Array("to-a:".utf8)),
            RelayEnd(descriptor: b.relayed, prefix: Array("to-b:".utf8), observer: watcher), resetPropagates: true)
        async let atA = Sockets.sendThenReadAll(a.peer, Array("hello".utf8))
        async let atB = Sockets.sendThenReadAll(b.peer, Array("world".utf8))
        let (gotA, gotB) = try await (atA, atB)
        #expect(String(decoding: gotA, as: UTF8.self) == "to-a:world")
        #expect(String(decoding: gotB, as: UTF8.self) == "to-b:hello")
        try await watcher.waitClosed()
        #expect(watcher.totals == (read: 5, written: 10))
        close(a.peer)
        close(b.peer)
    }

    @Test("a half-close passes through, and the other direction keeps flowing until it ends too")
    func halfClose() async throws {
        let relay = try Relay(threads: 1)
        defer { relay.shutdown() }
        let a = try Sockets.pair(.tcp)
        let b = try Sockets.pair(.tcp)
        let watcher = Watcher()
        relay.join(RelayEnd(descriptor: a.relayed), RelayEnd(descriptor: b.relayed, observer: watcher), resetPropagates: true)
        try await Sockets.onThread { try Sockets.send(a.peer, Array("one".utf8)) }
        shutdown(a.peer, CInt(SHUT_WR))
        // b sees a's bytes and then EOF, and may still write for as long as it likes.
        #expect(try await Sockets.onThread { try Sockets.readAll(b.peer) } == Array("one".utf8))
        for round in 0..<3 {
            try await Sockets.onThread { try Sockets.send(b.peer, Array("reply \(round);".utf8)) }
            try await Task.sleep(for: .milliseconds(5))
        }
        shutdown(b.peer, CInt(SHUT_WR))
        #expect(String(decoding: try await Sockets.onThread { try Sockets.readAll(a.peer) }, as: UTF8.self) == "reply 0;reply 1;reply 2;")
        try await watcher.waitClosed()
        #expect(watcher.log.first(where: { $0 == "outputEnded" }) != nil)
        close(a.peer)
        close(b.peer)
    }

    @Test("a reset on one side resets the other")
    func resetPropagates() async throws {
        let relay = try Relay(threads: 1)
        defer { relay.shutdown() }
        let a = try Sockets.pair(.tcp)
        let b = try Sockets.pair(.tcp)
        let watchers = [Watcher(), Watcher()]
        relay.join(RelayEnd(descriptor: a.relayed, observer: watchers[0]), RelayEnd(descriptor: b.relayed, observer: watchers[1]), resetPropagates: true)
        try await Sockets.onThread { try Sockets.send(a.peer, Array("before".utf8)) }
        #expect(try await Sockets.onThread { try Sockets.read(b.peer, count: 6) } == Array("before".utf8))
        Sockets.reset(a.peer)
        #expect(try await Sockets.onThread { Sockets.readError(b.peer) } == ECONNRESET)
        try await watchers[0].waitClosed()
        #expect(watchers[0].log.contains("failed ECONNRESET"))
        #expect(watchers[1].log.last == "closed false")
        close(b.peer)
    }

    @Test("closing one side from outside closes the pair; with reset the peers see RST")
    func closeFromOutside() async throws {
        let relay = try Relay(threads: 1)
        defer { relay.shutdown() }
        let a = try Sockets.pair(.tcp)
        let b = try Sockets.pair(.tcp)
        let watcher = Watcher()
        let link = relay.join(RelayEnd(descriptor: a.relayed, observer: watcher), RelayEnd(descriptor: b.relayed), resetPropagates: true)
        #expect(await link.withDescriptor(side: 0) { _ in })
        await link.close(side: 0, reset: true)
        #expect(try await Sockets.onThread { Sockets.readError(a.peer) } == ECONNRESET)
        #expect(try await Sockets.onThread { Sockets.readError(b.peer) } == ECONNRESET)
        try await watcher.waitClosed()
        #expect(await !link.withDescriptor(side: 0) { _ in })
        #expect(relay.pairCount == 0)
        close(a.peer)
        close(b.peer)
    }

    @Test("a slow reader holds the sender back; what is in flight stays within the pipe and the kernel buffers")
    func backpressure() async throws {
        let relay = try Relay(threads: 1)
        defer { relay.shutdown() }
        let a = try Sockets.pair(.tcp)
        let b = try Sockets.pair(.tcp)
        let watcher = Watcher()
        relay.join(RelayEnd(descriptor: a.relayed, observer: watcher), RelayEnd(descriptor: b.relayed), resetPropagates: true)
        // Nobody reads at b: a's sender blocks once the kernel buffers and one pipe are full.
        let sent = Atomic<Int>(0)
        let chunk = [UInt8](repeating: 7, count: 65536)
        Sockets.setNonBlocking(a.peer)
        for _ in 0..<400 {
            let count = chunk.withUnsafeBytes { write(a.peer, $0.baseAddress, $0.count) }
            if count > 0 { sent.add(count, ordering: .relaxed) } else { try await Task.sleep(for: .milliseconds(5)) }
        }
        let stuck = sent.load(ordering: .relaxed)
        #expect(stuck < 400 * 65536, "the sender was never held back")
        // Now b reads everything: all of it arrives.
        Sockets.setBlocking(a.peer)
        shutdown(a.peer, CInt(SHUT_WR))
        let got = try await Sockets.onThread { try Sockets.readAll(b.peer) }
        #expect(got.count == stuck)
        shutdown(b.peer, CInt(SHUT_WR))
        try await watcher.waitClosed()
        close(a.peer)
        close(b.peer)
    }

    @Test("once the relay has stopped, its pairs are closed and late calls are answered")
    func lateCallsAfterShutdown() async throws {
        let relay = try Relay(threads: 1)
        let a = try Sockets.pair(.tcp)
        let b = try Sockets.pair(.tcp)
        let watcher = Watcher()
        let link = relay.join(RelayEnd(descriptor: a.relayed, observer: watcher), RelayEnd(descriptor: b.relayed), resetPropagates: true)
        relay.shutdown()
        #expect(watcher.log.last == "closed false")
        #expect(try await Sockets.onThread { try Sockets.readAll(a.peer) }.isEmpty)
        #expect(await !link.withDescriptor(side: 0) { _ in })
        await link.close(side: 1, reset: false)
        // A pair joined after the stop is closed at once, not left open.
        let c = try Sockets.pair(.unix)
        let d = try Sockets.pair(.unix)
        let late = Watcher()
        relay.join(RelayEnd(descriptor: c.relayed, observer: late), RelayEnd(descriptor: d.relayed), resetPropagates: true)
        #expect(late.log.last == "closed true")
        #expect(try await Sockets.onThread { try Sockets.readAll(c.peer) }.isEmpty)
        for fd in [a.peer, b.peer, c.peer, d.peer] { close(fd) }
    }

    @Test("200 pairs at once on two loops")
    func manyPairs() async throws {
        let relay = try Relay(threads: 2)
        defer { relay.shutdown() }
        var pairs: [(Sockets.Pair, Sockets.Pair)] = []
        for _ in 0..<200 {
            let a = try Sockets.pair(.unix)
            let b = try Sockets.pair(.unix)
            relay.join(RelayEnd(descriptor: a.relayed), RelayEnd(descriptor: b.relayed), resetPropagates: true)
            pairs.append((a, b))
        }
        #expect(relay.pairCount == 200)
        for (index, (a, b)) in pairs.enumerated() {
            try await Sockets.onThread { try Sockets.send(a.peer, Array("pair \(index)".utf8)) }
            shutdown(a.peer, CInt(SHUT_WR))
            #expect(try await Sockets.onThread { try Sockets.readAll(b.peer) } == Array("pair \(index)".utf8))
            shutdown(b.peer, CInt(SHUT_WR))
            #expect(try await Sockets.onThread { try Sockets.readAll(a.peer) }.isEmpty)
            close(a.peer)
            close(b.peer)
        }
        for _ in 0..<200 where relay.pairCount > 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(relay.pairCount == 0)
    }
}

/// Records what a relay tells one end, for the tests to check.
final class Watcher: RelayObserver {
    private let state = Locked<(log: [String], read: Int, written: Int)>(([], 0, 0))

    var log: [String] { state.withLock { $0.log } }
    var totals: (read: Int, written: Int) { state.withLock { ($0.read, $0.written) } }

    func moved(read: Int, written: Int) { state.withLock { $0.read += read; $0.written += written } }
    func inputEnded() { state.withLock { $0.log.append("inputEnded") } }
    func outputEnded() { state.withLock { $0.log.append("outputEnded") } }
    func failed(code: String, message: String) { state.withLock { $0.log.append("failed \(code)") } }
    func closed(hadError: Bool) { state.withLock { $0.log.append("closed \(hadError)") } }
    func faultActed(fault: UInt64, detail: String) { state.withLock { $0.log.append("fault \(fault): \(detail)") } }

    /// Waits (bounded: 10 s) until the relay has closed this end.
    func waitClosed() async throws {
        for _ in 0..<1000 {
            if log.contains(where: { $0.hasPrefix("closed") }) { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("the relay never closed the end; log: \(log)")
    }
}
