import Foundation
import NetdProtocol
import NetdTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Forwards against a netd process: listens kept across restarts, and the memory a relay holds
/// while one side does not read.
@Suite struct RelayProcessTests {
    @Test func persistedForwardsComeBackAfterARestartUntilClosed() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let socket = folder.path + "/netd.sock"
        let database = folder.path + "/h.sqlite3"
        let target = try Sockets.listenTCP()
        defer { target.close() }
        let busy = try Sockets.listenTCP()
        defer { busy.close() }
        let frontPort = try Sockets.freeListeningPort()

        var netd = try await startNetdProcess(socket: socket, database: database, folder: folder.path)
        do {
            let rpc = try BlockingRPC(socket)
            let kept = try await rpc.call(
                "server.listen", #"{"host":"127.0.0.1","port":\#(frontPort),"label":"kept","persist":true,"forward":{"host":"127.0.0.1","port":\#(target.port)}}"#)
            #expect(kept["result"]?["persist"] == .bool(true), "\(kept)")
            // A second kept listen on a Unix path, and a plain one that is not kept.
            let unix = try await rpc.call("server.listen", #"{"path":"\#(folder.path)/front.sock","label":"kept-unix","persist":true,"forward":{"host":"127.0.0.1","port":\#(target.port)}}"#)
            #expect(unix.resultID != nil, "\(unix)")
            #expect(try await rpc.call("server.listen", #"{"host":"127.0.0.1","port":0,"label":"gone"}"#).resultID != nil)
            // A kept listen on a port that will be busy at the next start.
            let doomedPort = try Sockets.freeListeningPort()
            #expect(try await rpc.call("server.listen", #"{"host":"127.0.0.1","port":\#(doomedPort),"label":"doomed","persist":true,"forward":{"path":"/tmp/nowhere.sock"}}"#).resultID != nil)
            rpc.close()
            netd.signal(SIGTERM)
            #expect(try await netd.wait().status == 0)

            let squatter = try Sockets.listenTCP(port: doomedPort)
            defer { squatter.close() }
            netd = try await startNetdProcess(socket: socket, database: database, folder: folder.path)
            let again = try BlockingRPC(socket)
            defer { again.close() }
            let restored = await eventually {
                (await again.peek("server.list", "{}")["result"]?["servers"]?.arrayValue ?? []).filter { $0["state"] == .string("listening") }.count == 2
            }
            #expect(restored, "both working kept listens are back, the busy one failed and the plain one is gone")
            let servers = try await again.call("server.list", #"{"state":"listening"}"#)["result"]?["servers"]?.arrayValue ?? []
            #expect(Set(servers.compactMap { $0["label"]?.stringValue }) == ["kept", "kept-unix"], "\(servers)")
            let server = try #require(servers.first { $0["label"] == .string("kept") })
            #expect(server["forward"]?["port"] == .integer(Int64(target.port)) && server["persist"] == .bool(true))
            let history = try await again.call("history.get", #"{"id":\#(server["id"]?.integerValue ?? 0)}"#)
            #expect(history["result"]?["events"]?.arrayValue?.contains { $0["type"] == .string("restored") } == true, "\(history)")
            // The failed one left its record.
            let failed = try await again.call("history.query", #"{"role":"server","label":"doomed","limit":1}"#)["result"]?["items"]?.arrayValue?.first
            #expect(failed?["error"]?["code"] == .string("EADDRINUSE"), "\(String(describing: failed))")

            // The restored forward forwards.
            async let accepted = target.accept()
            let client = try await blocking { try Sockets.connectTCP(frontPort) }
            let far = try await accepted
            try await blocking { try Sockets.send(client, Array("after restart".utf8)) }
            #expect(try await blocking { try Sockets.read(far, count: 13) } == Array("after restart".utf8))
            close(client)
            close(far)

            // Closed by its owner, it stays closed at the next start.
            #expect(try await again.call("server.close", #"{"id":\#(server["id"]?.integerValue ?? 0)}"#)["result"]?["state"] == .string("closed"))
            netd.signal(SIGTERM)
            #expect(try await netd.wait().status == 0)
            netd = try await startNetdProcess(socket: socket, database: database, folder: folder.path)
            let third = try BlockingRPC(socket)
            defer { third.close() }
            let labels = await eventually {
                let listening = (await third.peek("server.list", #"{"state":"listening"}"#)["result"]?["servers"]?.arrayValue ?? []).compactMap { $0["label"]?.stringValue }
                return listening == ["kept-unix"]
            }
            #expect(labels)
        } catch {
            netd.signal(SIGKILL)
            _ = try? await netd.wait()
            throw error
        }
        netd.signal(SIGTERM)
        #expect(try await netd.wait().status == 0)
    }

    /// A target that never reads holds the client back through the relay: netd's memory does not
    /// grow with what the client tries to send (the bytes wait in kernel buffers and one pipe).
    @Test func aSlowReaderHoldsTheSenderBackWithoutNetdGrowing() async throws {
        try await withNetdProcess { socket, netd in
            let target = try Sockets.listenTCP()
            defer { target.close() }
            let rpc = try BlockingRPC(socket)
            defer { rpc.close() }
            let (_, port) = try await rpc.listenTCP(#","forward":{"host":"127.0.0.1","port":\#(target.port)}"#)
            async let accepted = target.accept()
            let client = try await blocking { try Sockets.connectTCP(port) }
            let far = try await accepted
            defer { close(client); close(far) }
            let before = try #require(Sockets.residentBytes(of: netd.pid))

            // Send until the client is held back (non-blocking writes that stop succeeding), at most 256 MiB.
            Sockets.setNonBlocking(client)
            let chunk = [UInt8](repeating: 0x5A, count: 1 << 16)
            var sent = 0
            var stalls = 0
            while sent < 256 << 20 && stalls < 50 {
                let count = chunk.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
                if count > 0 {
                    sent += count
                    stalls = 0
                } else {
                    stalls += 1
                    try await Task.sleep(for: .milliseconds(10))
                }
            }
            #expect(sent < 64 << 20, "the client was never held back: \(sent) bytes sent")
            let during = try #require(Sockets.residentBytes(of: netd.pid))
            #expect(during - before < 8 << 20, "netd grew by \(during - before) bytes while holding \(sent)")

            // The target reads: every byte arrives.
            Sockets.setBlocking(client)
            shutdown(client, CInt(SHUT_WR))
            let received = try await blocking { try Sockets.readAll(far) }
            #expect(received.count == sent)
        }
    }
}
