import Foundation
import NetdProtocol
import NetdRelay
import NetdTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Descriptor hand-off (contract section 11): the descriptor travels with SCM_RIGHTS on the
/// first byte of the answer line, to Python's `socket.recv_fds` and to recvmsg in Swift.
@Suite struct HandoffTests {
    /// The Python of docs/METHODS.md: `socket.recv_fds` on the RPC connection. The peer is a
    /// listening socket of the script's own, on loopback.
    @Test func aPythonClientTakesASocketWithItsUnreadBytesAndNetdLetsGo() async throws {
        try await withRunningDaemon { netd in
            let script = #"""
                import base64, json, socket, sys, time
                peer_listener = socket.socket(); peer_listener.bind(("127.0.0.1", 0)); peer_listener.listen(1)
                rpc = socket.socket(socket.AF_UNIX); rpc.connect(sys.argv[1])
                def call(method, params):
                    rpc.sendall((json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}) + "\n").encode())
                    data, fds, _, _ = socket.recv_fds(rpc, 65536, 1)
                    return json.loads(data), fds
                answer, _ = call("socket.connect", {"host": "127.0.0.1", "port": peer_listener.getsockname()[1]})
                sid = answer["result"]["id"]
                peer, _ = peer_listener.accept()
                peer.sendall(b"unread")
                for _ in range(500):
                    if call("socket.get", {"id": sid})[0]["result"]["buffered"] == 6: break
                    time.sleep(0.01)
                answer, fds = call("socket.handoff", {"id": sid})
                result = answer["result"]
                taken = socket.socket(fileno=fds[0])
                taken.sendall(b"written by python")
                got = peer.recv(100)
                peer.sendall(b"to python")
                print(sid, result["socket"]["state"], result["socket"]["handedOff"]["pid"] > 0, result["encoding"],
                      base64.b64decode(result["data"]).decode(), len(fds), got.decode(), taken.recv(100).decode(), sep="|")
                """#
            let output = try await run("/usr/bin/python3", ["-c", script, netd.socketPath], folder: netd.folder.path)
            #expect(output.status == 0, "\(output.stderr)")
            let fields = output.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "|").map(String.init)
            #expect(fields.dropFirst() == ["closed", "True", "base64", "unread", "1", "written by python", "to python"], "\(output.stdout)")
            let id = try #require(fields.first.flatMap { Int64($0) })

            let rpc = try BlockingRPC(netd.socketPath)
            defer { rpc.close() }
            let socket = try await rpc.call("socket.get", #"{"id":\#(id)}"#)
            #expect(socket["result"]?["state"] == .string("closed") && socket["result"]?["handedOff"] != nil, "\(socket)")
            #expect(socket["result"]?["bytesRead"] == .integer(6))
            let events = try await rpc.call("history.get", #"{"id":\#(id)}"#)["result"]?["events"]?.arrayValue?.compactMap { $0["type"]?.stringValue }
            #expect(events == ["connect", "handoff", "close"], "\(String(describing: events))")
            let refused = try await rpc.call("socket.write", #"{"id":\#(id),"data":"x"}"#)
            #expect(refused.errorCode == -32003)
        }
    }

    @Test func serverHandoffGivesTheListeningSocketAndKeepsItsFile() async throws {
        try await withRunningDaemon { netd in
            let rpc = try BlockingRPC(netd.socketPath)
            defer { rpc.close() }
            let path = netd.folder.path + "/api.sock"
            let server = try #require(try await rpc.call("server.listen", #"{"path":"\#(path)"}"#).resultID)
            let (answer, descriptor) = try await rpc.callTakingDescriptor("server.handoff", #"{"id":\#(server)}"#)
            let listening = try #require(descriptor, "no descriptor came with \(answer)")
            defer { close(listening) }
            #expect(answer["result"]?["server"]?["state"] == .string("closed") && answer["result"]?["server"]?["handedOff"] != nil, "\(answer)")
            #expect(FileManager.default.fileExists(atPath: path), "the socket file stays for its new owner")
            // The test now serves on the descriptor netd listened on.
            async let accepted = blocking { accept(listening, nil, nil) }
            let client = try await blocking { try Sockets.connectUnix(path) }
            defer { close(client) }
            let served = try await accepted
            defer { close(served) }
            try await blocking { try Sockets.send(client, Array("hello".utf8)) }
            #expect(try await blocking { try Sockets.read(served, count: 5) } == Array("hello".utf8))
            let history = try await rpc.call("history.get", #"{"id":\#(server)}"#)
            #expect(history["result"]?["events"]?.arrayValue?.contains { $0["type"] == .string("handoff") } == true, "\(history)")
        }
    }

    @Test func acceptWithHandoffServesWaitersInTheOrderTheyBeganToWait() async throws {
        try await withRunningDaemon { netd in
            let rpc = try BlockingRPC(netd.socketPath)
            defer { rpc.close() }
            let (server, port) = try await rpc.listenTCP()
            let first = try BlockingRPC(netd.socketPath)
            let second = try BlockingRPC(netd.socketPath)
            defer { first.close(); second.close() }
            // The first waits (the server says how many do) before the second begins to.
            async let firstTaken = first.callTakingDescriptor("server.accept", #"{"id":\#(server),"waitMs":10000,"handoff":true}"#)
            #expect(await eventually { await rpc.peek("server.get", #"{"id":\#(server)}"#)["result"]?["waiting"] == .integer(1) })
            async let secondTaken = second.callTakingDescriptor("server.accept", #"{"id":\#(server),"waitMs":10000,"handoff":true}"#)
            #expect(await eventually { await rpc.peek("server.get", #"{"id":\#(server)}"#)["result"]?["waiting"] == .integer(2) })
            // One connection: the first waiter gets it (the second would leave the first waiting
            // until its waitMs ran out); then another, for the second.
            let one = try await blocking { try Sockets.connectTCP(port) }
            defer { close(one) }
            try await blocking { try Sockets.send(one, Array("one".utf8)) }
            let a = try await firstTaken
            let two = try await blocking { try Sockets.connectTCP(port) }
            defer { close(two) }
            try await blocking { try Sockets.send(two, Array("two".utf8)) }
            let b = try await secondTaken
            let fdA = try #require(a.descriptor, "\(a.answer)")
            let fdB = try #require(b.descriptor, "\(b.answer)")
            defer { close(fdA); close(fdB) }
            // Bytes that arrived before the hand-off come back in the answer; the rest waits in the descriptor.
            func took(_ taken: (answer: JSONValue, descriptor: CInt?), _ fd: CInt) async throws -> String {
                let early = Data(base64Encoded: taken.answer["result"]?["data"]?.stringValue ?? "") ?? Data()
                let rest = early.count < 3 ? try await blocking { try Sockets.read(fd, count: 3 - early.count) } : []
                return String(decoding: Array(early) + rest, as: UTF8.self)
            }
            let (gotA, gotB) = (try await took(a, fdA), try await took(b, fdB))
            #expect(gotA == "one", "\(a.answer)")
            #expect(gotB == "two", "\(b.answer)")
            #expect(a.answer["result"]?["socket"]?["handedOff"] != nil && a.answer["result"]?["encoding"] == .string("base64"))
        }
    }

    @Test func handoffRefusalsChangeNothing() async throws {
        try await withRunningDaemon { netd in
            let listener = try Sockets.listenTCP()
            defer { listener.close() }
            let rpc = try BlockingRPC(netd.socketPath)
            defer { rpc.close() }
            #expect(try await rpc.call("socket.handoff", #"{"id":424242}"#).errorCode == -32001)
            #expect(try await rpc.call("server.handoff", #"{"id":424242}"#).errorCode == -32001)
            #expect(try await rpc.call("server.accept", #"{"id":1,"attach":true,"handoff":true}"#).errorCode == -32602)
            async let accepted = listener.accept()
            let id = try #require(try await rpc.call("socket.connect", #"{"host":"127.0.0.1","port":\#(listener.port)}"#).resultID)
            let peer = try await accepted
            defer { close(peer) }
            // In a batch there is no line of its own to carry the descriptor: refused, the socket untouched.
            try await blocking {
                try Sockets.send(rpc.descriptor, Array(#"[{"jsonrpc":"2.0","id":1,"method":"socket.handoff","params":{"id":\#(id)}}]"#.utf8) + [10])
            }
            let batch = try await rpc.answer()
            #expect(batch.arrayValue?.first?.errorName == "ERR_HANDOFF_NOT_ALONE", "\(batch)")
            #expect(try await rpc.call("socket.get", #"{"id":\#(id)}"#)["result"]?["state"] == .string("open"))
            let written = try await rpc.call("socket.write", #"{"id":\#(id),"data":"still mine"}"#)
            #expect(written["result"]?["bytes"] == .integer(10))
            _ = try await rpc.call("socket.close", #"{"id":\#(id)}"#)
            let closed = try await rpc.call("socket.handoff", #"{"id":\#(id)}"#)
            #expect(closed.errorCode == -32003, "\(closed)")
        }
    }

    /// `netctl exec` gives a socket-activation-aware server (here Python's socketserver on fd 3,
    /// as it would take it from systemd) the server netd listened on.
    @Test func netctlExecRunsASocketActivatedServerOnNetdsListener() async throws {
        try await withRunningDaemon { netd in
            let rpc = try BlockingRPC(netd.socketPath)
            defer { rpc.close() }
            let (server, port) = try await rpc.listenTCP(#","label":"web""#)
            let script = #"""
                import os, socket, socketserver
                assert os.environ["LISTEN_FDS"] == "1" and int(os.environ["LISTEN_PID"]) == os.getpid()
                class Handler(socketserver.StreamRequestHandler):
                    def handle(self):
                        name = self.rfile.readline().strip().decode()
                        self.wfile.write(f"hello {name} from {os.environ['LISTEN_FDNAMES']}\n".encode())
                class Activated(socketserver.TCPServer):
                    def __init__(self):
                        socketserver.BaseServer.__init__(self, None, Handler)
                        self.socket = socket.socket(fileno=3)
                Activated().handle_request()
                """#
            let exec = try ChildProcess(
                try Binaries.path("netctl"), ["--socket", netd.socketPath, "exec", "\(server)", "--", "python3", "-c", script], folder: netd.folder.path)
            // Once netd has let go of it, a connection waits in the listening socket's backlog
            // until python accepts it (before that, netd would have accepted it itself).
            #expect(await eventually { await rpc.peek("server.get", #"{"id":\#(server)}"#)["result"]?["state"] == .string("closed") })
            let client = try await blocking { try Sockets.connectTCP(port) }
            defer { close(client) }
            Sockets.setReceiveTimeout(client, seconds: 20)
            try await blocking { try Sockets.send(client, Array("test\n".utf8)) }
            #expect(String(decoding: try await blocking { try Sockets.readAll(client) }, as: UTF8.self) == "hello test from web\n")
            let output = try await exec.wait()
            #expect(output.status == 0, "\(output.stderr)")
            let info = try await rpc.call("server.get", #"{"id":\#(server)}"#)
            #expect(info["result"]?["handedOff"] != nil, "\(info)")
        }
    }

    /// docs/examples/worker.py: four Python workers loop on `server.accept` with `handoff: true`
    /// and serve HTTP themselves; 200 short connections are all served, by every worker.
    @Test func fourWorkersShareTheConnections() async throws {
        try await withRunningDaemon { netd in
            let rpc = try BlockingRPC(netd.socketPath)
            defer { rpc.close() }
            let (server, port) = try await rpc.listenTCP()
            let worker = try repositoryFile("docs/examples/worker.py")
            let workers = try (0..<4).map { index in
                try ChildProcess("/usr/bin/python3", [worker, netd.socketPath, "\(server)", "w\(index)"], folder: netd.folder.path)
            }
            defer { for process in workers { process.signal(SIGKILL) } }
            var servedBy: [String: Int] = [:]
            for _ in 0..<200 {
                let body = try await blocking { () throws -> String in
                    let client = try Sockets.connectTCP(port)
                    defer { close(client) }
                    Sockets.setReceiveTimeout(client, seconds: 20)
                    try Sockets.send(client, Array("GET / HTTP/1.0\r\n\r\n".utf8))
                    return String(decoding: try Sockets.readAll(client), as: UTF8.self)
                }
                let name = body.range(of: "served by ").map { body[$0.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines) } ?? "?"
                servedBy[name, default: 0] += 1
            }
            #expect(servedBy.values.reduce(0, +) == 200)
            #expect(Set(servedBy.keys) == ["w0", "w1", "w2", "w3"], "\(servedBy)")
            let info = try await rpc.call("server.get", #"{"id":\#(server)}"#)
            #expect(info["result"]?["accepted"] == .integer(200) && info["result"]?["pending"] == .integer(0), "\(info)")
        }
    }
}
