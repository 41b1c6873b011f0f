import Foundation
import NetdRelay
import NetdTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Faults in the relay (contract section 12) between real sockets: each one's effect measured
/// on the bytes that cross a pair, with blocking peers on threads of their own. Times are checked
/// from below exactly (a delay is never shorter than asked, a rate never faster) and from above
/// loosely, as other tests share the machine; the accuracy is measured in docs/FAULTS.md.
@Suite("Relay: faults shape the bytes of one pair")
struct ShapingTests {
    /// A TCP pair and a Unix pair joined, with `faults` from the first byte; side 0 is `a`.
    private static func joined(_ faults: RelayFaults, relay: Relay, watcher: Watcher? = nil) throws -> (a: Sockets.Pair, b: Sockets.Pair, link: RelayLink) {
        let a = try Sockets.pair(.tcp)
        let b = try Sockets.pair(.unix)
        let link = relay.join(RelayEnd(descriptor: a.relayed, observer: watcher), RelayEnd(descriptor: b.relayed), resetPropagates: true, faults: faults)
        return (a, b, link)
    }

    private static func milliseconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    }

    @Test("latency delays every chunk by at least what was asked")
    func latency() async throws {
        let relay = try Relay(threads: 1)
        defer { relay.shutdown() }
        let watcher = Watcher()
        let (a, b, _) = try Self.joined(RelayFaults(shaping: [[Shaping(fault: 7, kind: .latency(milliseconds: 60, jitter: 0))], nil]), relay: relay, watcher: watcher)
        defer { close(a.peer); close(b.peer) }
        let delays = try await Sockets.onThread { () -> [Double] in
            var delays: [Double] = []
            for round in 0..<15 {
                let start = ContinuousClock.now
                try Sockets.send(a.peer, [UInt8(round)])
                guard try Sockets.read(b.peer, count: 1) == [UInt8(round)] else { return [] }
                delays.append(Self.milliseconds(since: start))
                // The other way has no fault.
                try Sockets.send(b.peer, [1])
                _ = try Sockets.read(a.peer, count: 1)
            }
            return delays.sorted()
        }
        #expect(delays.count == 15 && delays[0] >= 60, "never sooner than the 60 ms asked: \(delays)")
        #expect(watcher.log.contains("fault 7: delayed 60 ms"), "\(watcher.log)")
    }

    @Test("bandwidth is never faster than asked, and the bytes arrive intact")
    func bandwidth() async throws {
        let relay = try Relay(threads: 1)
        defer { relay.shutdown() }
        let rate = 2_000_000
        let (a, b, _) = try Self.joined(RelayFaults(shaping: [[Shaping(fault: 1, kind: .bandwidth(bytesPerSecond: rate))], nil]), relay: relay)
        defer { close(b.peer) }
        let bytes = Sockets.pattern(1_000_000, seed: 41)
        let start = ContinuousClock.now
        async let sent: Void = Sockets.onThread { try Sockets.send(a.peer, bytes); shutdown(a.peer, CInt(SHUT_WR)) }
        let received = try await Sockets.onThread { try Sockets.readAll(b.peer) }
        let seconds = Self.milliseconds(since: start) / 1000
        try await sent
        close(a.peer)
        #expect(Sockets.same(received, bytes))
        let measured = Double(bytes.count) / seconds
        #expect(measured <= Double(rate) * 1.05, "never faster than asked: \(rate) B/s asked, \(Int(measured)) B/s measured")
    }

    @Test("limit passes exactly that many bytes, then both sides see the end")
    func limit() async throws {
        let relay = try Relay(threads: 1)
        defer { relay.shutdown() }
        let watcher = Watcher()
        let (a, b, _) = try Self.joined(RelayFaults(shaping: [[Shaping(fault: 3, kind: .limit(bytes: 4096))], nil]), relay: relay, watcher: watcher)
        defer { close(a.peer); close(b.peer) }
        let bytes = Sockets.pattern(100_000, seed: 42)
        // The sender may find the connection closed before it has sent everything.
        async let sent: Void = Sockets.onThread { _ = try? Sockets.send(a.peer, bytes) }
        let received = try await Sockets.onThread { try Sockets.readAll(b.peer) }
        try await sent
        #expect(received.count == 4096 && Sockets.same(received, Array(bytes.prefix(4096))), "\(received.count) bytes")
        let atSender = try await Sockets.onThread { Sockets.readError(a.peer) }
        #expect(atSender == 0 || atSender == ECONNRESET, "the sender's side ends too (errno \(atSender))")
        try await watcher.waitClosed()
        #expect(watcher.log.contains("fault 3: closed after 4096 bytes"), "\(watcher.log)")
    }

    @Test("hold passes nothing and keeps it unread, then closes the pair when its timer ends")
    func holdThenClose() async throws {
        let relay = try Relay(threads: 1)
        defer { relay.shutdown() }
        let watcher = Watcher()
        let faults = RelayFaults(shaping: [[Shaping(fault: 5, kind: .hold)], nil], timers: [PairTimer(fault: 5, milliseconds: 300, reset: false)])
        let (a, b, _) = try Self.joined(faults, relay: relay, watcher: watcher)
        defer { close(a.peer); close(b.peer) }
        let start = ContinuousClock.now
        try Sockets.send(a.peer, Array("held".utf8))
        let got = try await Sockets.onThread { try Sockets.readAll(b.peer) }
        let waited = Self.milliseconds(since: start)
        #expect(got.isEmpty, "nothing passed")
        #expect(waited >= 295, "closed after \(waited) ms")
        try await watcher.waitClosed()
        #expect(watcher.log.contains("fault 5: holding data") && watcher.log.contains("fault 5: closed after 300 ms"), "\(watcher.log)")
    }

    @Test("blackhole reads everything and passes nothing; the sender never blocks")
    func blackhole() async throws {
        let relay = try Relay(threads: 1)
        defer { relay.shutdown() }
        let watcher = Watcher()
        let (a, b, link) = try Self.joined(RelayFaults(shaping: [[Shaping(fault: 9, kind: .blackhole)], nil]), relay: relay, watcher: watcher)
        defer { close(a.peer); close(b.peer) }
        // Bounded: a relay that did not read would leave this send blocked, and it fails instead.
        var limit = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(a.peer, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        try await Sockets.onThread { try Sockets.send(a.peer, Sockets.pattern(8 << 20, seed: 43)) }
        Sockets.setNonBlocking(b.peer)
        var byte: UInt8 = 0
        #expect(read(b.peer, &byte, 1) == -1 && errno == EAGAIN, "nothing reached the other side")
        #expect(watcher.log.contains("fault 9: passing nothing"))
        await link.close(side: 0, reset: false)
    }

    @Test("reset sends RST to both sides when its time comes")
    func reset() async throws {
        let relay = try Relay(threads: 1)
        defer { relay.shutdown() }
        let watcher = Watcher()
        let (a, b, _) = try Self.joined(RelayFaults(timers: [PairTimer(fault: 2, milliseconds: 100, reset: true)]), relay: relay, watcher: watcher)
        defer { close(a.peer); close(b.peer) }
        try Sockets.send(a.peer, Array("before".utf8))
        #expect(try await Sockets.onThread { try Sockets.read(b.peer, count: 6) } == Array("before".utf8))
        #expect(try await Sockets.onThread { Sockets.readError(a.peer) } == ECONNRESET)
        try await watcher.waitClosed()
        #expect(watcher.log.contains("fault 2: reset"))
    }

    @Test("slicer cuts the bytes into small writes, spaced in time, all of them in order")
    func slicer() async throws {
        let relay = try Relay(threads: 1)
        defer { relay.shutdown() }
        let watcher = Watcher()
        let (a, b, _) = try Self.joined(RelayFaults(shaping: [[Shaping(fault: 4, kind: .slicer(averageBytes: 10, delay: 5))], nil]), relay: relay, watcher: watcher)
        defer { close(b.peer) }
        let bytes = Sockets.pattern(200, seed: 44)
        let start = ContinuousClock.now
        try Sockets.send(a.peer, bytes)
        shutdown(a.peer, CInt(SHUT_WR))
        let reads = try await Sockets.onThread { () -> [[UInt8]] in
            var reads: [[UInt8]] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let got = buffer.withUnsafeMutableBytes { read(b.peer, $0.baseAddress, $0.count) }
                if got <= 0 { return reads }
                reads.append(Array(buffer[0..<got]))
            }
        }
        let waited = Self.milliseconds(since: start)
        close(a.peer)
        #expect(Sockets.same(reads.flatMap { $0 }, bytes))
        #expect(watcher.log.contains("fault 4: sliced into writes of about 10 bytes, 5 ms apart"), "\(watcher.log)")
        // At most 15 bytes a write, 5 ms apart: 14 writes at least, so 65 ms at least (a reader
        // that falls behind may find two writes in one read, never faster ones).
        #expect(reads.count >= 2, "\(reads.map(\.count))")
        #expect(waited >= 65, "200 bytes in \(reads.count) reads over \(waited) ms")
    }

    @Test("taking a fault away puts the direction back on splice, queued bytes first")
    func removeFault() async throws {
        let relay = try Relay(threads: 1)
        defer { relay.shutdown() }
        let (a, b, link) = try Self.joined(RelayFaults(shaping: [[Shaping(fault: 6, kind: .latency(milliseconds: 60_000, jitter: 0))], nil]), relay: relay)
        defer { close(a.peer); close(b.peer) }
        try Sockets.send(a.peer, Array("queued".utf8))
        try await Task.sleep(for: .milliseconds(50))
        let start = ContinuousClock.now
        #expect(await link.setFaults(RelayFaults(shaping: [[], nil])))
        try Sockets.send(a.peer, Array(" then spliced".utf8))
        let got = try await Sockets.onThread { try Sockets.read(b.peer, count: 19) }
        #expect(String(decoding: got, as: UTF8.self) == "queued then spliced")
        // Far sooner than the minute the removed latency would have held them.
        #expect(Self.milliseconds(since: start) < 30_000)
    }
}
