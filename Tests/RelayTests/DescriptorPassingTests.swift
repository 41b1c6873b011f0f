import Foundation
import NetdRelay
import NetdTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// SCM_RIGHTS over a real Unix socket pair.
@Suite struct DescriptorPassingTests {
    @Test func aDescriptorArrivesWithTheFirstByteOfItsBytesAndWorks() throws {
        var pair: [CInt] = [0, 0]
        #expect(socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0, &pair) == 0)
        defer { close(pair[0]); close(pair[1]) }
        var pipe: [CInt] = [0, 0]
        #expect(Glibc.pipe(&pipe) == 0)
        defer { close(pipe[0]) }

        // Bytes before, read before the descriptor's bytes are sent (netd waits until the client has
        // read every earlier answer, SIOCOUTQ); then the bytes carrying it, then bytes after: the
        // read that takes the descriptor begins with its bytes and stops at their end.
        try Sockets.send(pair[0], Array("before|".utf8))
        let first = try DescriptorPassing.receive(on: pair[1])
        #expect(String(decoding: first.bytes, as: UTF8.self) == "before|")
        #expect(first.descriptor == nil)
        #expect(DescriptorPassing.unread(on: pair[0]) == 0)
        #expect(DescriptorPassing.send(Array("{\"result\":1}\n".utf8), with: pipe[1], on: pair[0]) == .bytes(13))
        close(pipe[1])  // the sender's copy; the receiver has its own
        #expect((DescriptorPassing.unread(on: pair[0]) ?? 0) > 0)
        try Sockets.send(pair[0], Array("after".utf8))

        let second = try DescriptorPassing.receive(on: pair[1])
        #expect(String(decoding: second.bytes, as: UTF8.self) == "{\"result\":1}\n")
        let received = try #require(second.descriptor)
        #expect(fcntl(received, F_GETFD) & FD_CLOEXEC != 0, "received descriptors are close-on-exec")
        try Sockets.send(received, Array("through the passed descriptor".utf8))
        close(received)
        #expect(String(decoding: try Sockets.readAll(pipe[0]), as: UTF8.self) == "through the passed descriptor")
        let third = try DescriptorPassing.receive(on: pair[1])
        #expect(String(decoding: third.bytes, as: UTF8.self) == "after" && third.descriptor == nil)
    }

    @Test func aFullSocketSaysWouldBlockAndSendsNothing() throws {
        var pair: [CInt] = [0, 0]
        #expect(socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0, &pair) == 0)
        // pair[1] is closed half-way, by the test itself; closing it again here would close
        // whatever another test running beside this one had opened under that number since.
        defer { close(pair[0]) }
        Sockets.setNonBlocking(pair[0])
        let chunk = [UInt8](repeating: 1, count: 65536)
        var filled = 0
        while filled < 64 << 20 {
            let count = chunk.withUnsafeBytes { write(pair[0], $0.baseAddress, $0.count) }
            if count <= 0 { break }
            filled += count
        }
        #expect(DescriptorPassing.send([1], with: pair[0], on: pair[0]) == .wouldBlock)
        close(pair[1])
        #expect(DescriptorPassing.send([1], with: pair[0], on: pair[0]) == .failed(EPIPE))
    }
}
