import Foundation
import NetdProtocol
import NetdTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Slow-loris clients: RPC connections that send a request a byte at a time and never finish it
/// are closed after `--rpc-idle-timeout`, and a normal client is served all along.
@Suite struct SlowClientTests {
    @Test func incompleteLinesAreClosedAfterTheTimeoutWhileOthersAreServed() async throws {
        try await withNetdProcess(["--rpc-idle-timeout", "1s"]) { socket, _ in
            let slow = try (0..<200).map { _ in try Sockets.connectUnix(socket) }
            defer { for fd in slow { close(fd) } }
            for fd in slow { Sockets.setNonBlocking(fd) }
            let started = ContinuousClock.now
            // One byte every 200 ms on each (for 5 s at most), until netd has closed them all.
            let outcome = try await blocking { () -> (closed: Int, answered: Int, firstClosedAfter: Double) in
                let request = Array(#"{"jsonrpc":"2.0","id":1,"method":"netd.ping"}"#.utf8)
                var sent = 0
                var gone = Set<Int>()
                var answered = 0
                var firstClosed: ContinuousClock.Instant?
                var buffer = [UInt8](repeating: 0, count: 4096)
                for _ in 0..<25 where gone.count < slow.count {
                    for (index, fd) in slow.enumerated() where !gone.contains(index) {
                        var byte = request[sent % (request.count - 1)]
                        _ = send(fd, &byte, 1, CInt(MSG_NOSIGNAL))
                        let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                        if got > 0, String(decoding: buffer[0..<got], as: UTF8.self).contains("rpc-idle-timeout") { answered += 1 }
                        if got == 0 || (got < 0 && errno != EAGAIN) || got > 0 {
                            gone.insert(index)
                            if firstClosed == nil { firstClosed = .now }
                        }
                    }
                    sent += 1
                    usleep(200_000)
                }
                let elapsed = (firstClosed ?? .now) - started
                return (gone.count, answered, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            }
            #expect(outcome.closed == 200, "every slow client was closed: \(outcome)")
            #expect(outcome.answered == 200, "each was told why first: \(outcome)")
            #expect(outcome.firstClosedAfter >= 0.95, "none before its second was up: \(outcome)")
            // A normal client was served throughout, and is still.
            let rpc = try BlockingRPC(socket)
            defer { rpc.close() }
            for _ in 0..<20 { #expect(try await rpc.call("netd.ping", "{}")["result"]?["pong"] == .bool(true)) }
        }
    }
}
