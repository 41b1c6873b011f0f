import Foundation
import NIOCore
import NIOPosix
import NetdClient
import NetdProtocol
import NetdTestSupport
import Testing

#if canImport(Glibc)
import Glibc
import NetdLocks
#endif

/// Bounds a slow party cannot break (a subscriber that stops reading, a server nobody accepts
/// from), EPIPE, connect and listen options, and a request/response protocol through netd.
@Suite(.timeLimit(.minutes(2)))
struct FlowAndOptionsTests {
    @Test func aSubscriberThatStopsReadingLosesEventsKnowinglyAndSlowsNobody() async throws {
        let refusingPort = try Sockets.refusingTCP()
        defer { refusingPort.close() }
        let refusing = refusingPort.port
        try await withRunningDaemon { netd in
            // A prompt subscriber that reads everything, beside the slow one.
            let prompt = try await NetdClient.connect(socketPath: netd.socketPath)
            _ = try await prompt.call(EventsSubscribeMethod.self, .init(types: ["error", "close"]))
            let promptSeqs = Locked<[Int64]>([])
            let promptTypes = Locked<Set<String>>([])
            let reader = Task {
                for await line in prompt.notifications {
                    guard let event = try? JSONDecoder().decode(JSONValue.self, from: line)["params"] else { continue }
                    promptSeqs.withLock { $0.append(event["seq"]?.integerValue ?? -1) }
                    promptTypes.withLock { _ = $0.insert(event["type"]?.stringValue ?? "") }
                }
            }
            defer { reader.cancel() }

            try await withRawConnection(netd.socketPath) { slow in
                let subscribed = try await slow.exchange(#"{"jsonrpc":"2.0","id":0,"method":"events.subscribe","params":{"types":["error","close"]}}"#)
                #expect(subscribed["result"]?["subscription"]?.integerValue != nil)
                // From here `slow` reads nothing while 10,000 events happen: every refused connect
                // is an `error` and a `close`.
                let attempts = 5000
                try await withRawConnection(netd.socketPath) { loader in
                    for batch in 0..<(attempts / 250) {
                        var lines = ""
                        for index in 0..<250 {
                            let id = batch * 250 + index
                            lines += #"{"jsonrpc":"2.0","id":\#(id),"method":"socket.connect","params":{"host":"127.0.0.1","port":\#(refusing)}}"# + "\n"
                        }
                        try await loader.send(bytes: Array(lines.utf8))
                        for _ in 0..<250 {
                            let answer = try await loader.json()
                            #expect(answer["error"]?["data"]?["code"] == .string("ECONNREFUSED"), "\(answer)")
                        }
                    }
                }
                // The prompt subscriber saw all of them, in order, with nothing lost.
                #expect(await eventually { promptSeqs.withLock { $0.count } >= 2 * attempts })
                #expect(promptSeqs.withLock { Array($0.prefix(2 * attempts)) } == Array(1...Int64(2 * attempts)))
                #expect(promptTypes.withLock { $0 } == ["error", "close"])

                // More events keep coming while the slow subscriber catches up, so the loss it
                // suffered is reported (an `overflow` goes out before the next event that fits).
                let ticker = Task {
                    let client = try await NetdClient.connect(socketPath: netd.socketPath)
                    for _ in 0..<2000 where !Task.isCancelled {
                        _ = try? await client.call(SocketConnectMethod.self, .init(port: refusing, host: "127.0.0.1"))
                        try? await Task.sleep(for: .milliseconds(20))
                    }
                    await client.close()
                }
                defer { ticker.cancel() }

                var previous: Int64 = 0
                var dropped: Int64 = 0
                var delivered = 0
                var linesAfterOverflow = 0
                for _ in 0..<(4 * attempts) {
                    let event = try #require(try await slow.json()["params"])
                    let seq = try #require(event["seq"]?.integerValue)
                    if event["type"] == .string("overflow") {
                        let lost = try #require(event["dropped"]?.integerValue)
                        // The gap in seq is exactly what the overflow event says was lost.
                        #expect(seq - previous - 1 == lost, "overflow at seq \(seq) after \(previous) says \(lost)")
                        dropped += lost
                    } else {
                        #expect(seq == previous + 1, "seq \(seq) after \(previous) with no overflow event")
                        delivered += 1
                    }
                    previous = seq
                    if dropped > 0 { linesAfterOverflow += 1 }
                    if linesAfterOverflow > 4 { break }
                }
                #expect(dropped > 0, "the slow subscriber's queue never overflowed")
                // It got a good share before falling behind: its bounded queue, at least.
                #expect(delivered >= 4096)
            }
            await prompt.close()
        }
    }

    @Test func aServerHoldsAtMostItsLimitOfUnclaimedConnections() async throws {
        try await withRunningDaemon(configure: { $0.limits.pendingPerServer = 2 }) { netd in
            try await netd.withClient { client in
                let server = try await client.call(ServerListenMethod.self, .init(port: 0, host: "127.0.0.1"))
                let port = try #require(server.local?.port)
                // Five peers connect; the kernel completes every handshake, netd takes two.
                var peers: [any Channel] = []
                for _ in 0..<5 {
                    peers.append(try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get())
                }
                defer { for peer in peers { peer.close(promise: nil) } }
                func counts() async throws -> (pending: Int, accepted: Int64) {
                    let info = try await client.call(ServerGetMethod.self, .init(id: server.id))
                    return (info.pending, info.accepted)
                }
                #expect(try await eventually { try await counts().pending == 2 })
                try await Task.sleep(for: .milliseconds(300))
                var now = try await counts()
                #expect(now.pending == 2 && now.accepted == 2, "\(now)")
                #expect(try await client.call(StatusMethod.self).sockets == 2)

                // Claiming one makes room for exactly one more.
                let first = try #require(try await client.call(ServerAcceptMethod.self, .init(id: server.id)).socket)
                #expect(try await eventually { try await counts().accepted == 3 })
                try await Task.sleep(for: .milliseconds(300))
                now = try await counts()
                #expect(now.pending == 2 && now.accepted == 3, "\(now)")

                // The rest come through as they are claimed, and every one carries its bytes.
                var claimed = [first]
                for _ in 0..<4 {
                    let next = try await client.call(ServerAcceptMethod.self, .init(id: server.id, waitMs: 5000))
                    claimed.append(try #require(next.socket))
                }
                #expect(try await counts().accepted == 5)
                #expect(Set(claimed.map(\.id)).count == 5)
                for (index, peer) in peers.enumerated() {
                    try await peer.writeAndFlush(ByteBuffer(string: "peer \(index)"))
                }
                var heard: Set<String> = []
                for socket in claimed {
                    let read = try await client.call(SocketReadMethod.self, .init(id: socket.id, waitMs: 5000))
                    heard.insert(read.data)
                }
                #expect(heard == Set((0..<5).map { "peer \($0)" }))
            }
        }
    }

    @Test func theBacklogIsTheKernelsQueueBehindAFullServer() async throws {
        try await withRunningDaemon(configure: { $0.limits.pendingPerServer = 1 }) { netd in
            try await netd.withClient { client in
                let server = try await client.call(ServerListenMethod.self, .init(port: 0, host: "127.0.0.1", backlog: 1))
                #expect(server.backlog == 1)
                let port = try #require(server.local?.port)
                // netd holds one unclaimed and stops accepting; Linux queues backlog + 1 more; the
                // next handshake gets no answer and the connect times out.
                var connected = 0
                var failure: ResponseError?
                for _ in 0..<8 where failure == nil {
                    do {
                        _ = try await client.call(SocketConnectMethod.self, .init(port: port, host: "127.0.0.1", timeoutMs: 500))
                        connected += 1
                    } catch let error as ResponseError {
                        failure = error
                    }
                }
                #expect(connected == 3)
                #expect(failure?.systemCode == "ETIMEDOUT")
            }
        }
    }

    @Test func writingToAPeerThatClosedGivesEPIPE() async throws {
        let peer = try await Peer.start(.closeAtOnce)
        defer { Task { await peer.close() } }
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                let socket = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1", allowHalfOpen: true))
                let ended = try await client.call(SocketReadMethod.self, .init(id: socket.id, waitMs: 5000))
                #expect(ended.eof)
                // Still writable (half-open), but the peer's kernel answers the bytes with RST.
                var failure: ResponseError?
                for _ in 0..<100 where failure == nil {
                    do {
                        _ = try await client.call(SocketWriteMethod.self, .init(id: socket.id, data: "anyone there?"))
                        try await Task.sleep(for: .milliseconds(20))
                    } catch let error as ResponseError {
                        failure = error
                    }
                }
                let error = try #require(failure)
                // Either the write itself failed with EPIPE, or the socket had closed with it.
                #expect(error.systemCode == "EPIPE" || error.systemCode == "ERR_SOCKET_CLOSED", "\(error)")
                let closed = try await client.call(SocketGetMethod.self, .init(id: socket.id))
                #expect(closed.state == .closed)
                #expect(closed.error?.code == "EPIPE", "\(String(describing: closed.error))")
            }
            let row = try await run("/usr/bin/sqlite3", [netd.databasePath, "SELECT error_code FROM connections WHERE role = 'client'"], folder: netd.folder.path)
            #expect(row.stdout == "EPIPE\n")
        }
    }

    @Test func connectFromAChosenLocalAddressAndPort() async throws {
        let peer = try await Peer.start(.echo)
        defer { Task { await peer.close() } }
        let localPort = try #require(unusedLoopbackPort(host: "127.0.0.2"))
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                let socket = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1", localAddress: "127.0.0.2", localPort: localPort))
                #expect(socket.local?.address == "127.0.0.2")
                #expect(socket.local?.port == localPort)
                // The peer sees the connection come from there.
                #expect(await eventually { peer.connections.withLock { $0.count } == 1 })
                let seenFrom = peer.connections.withLock { $0.first?.remoteAddress }
                #expect(seenFrom?.ipAddress == "127.0.0.2")
                #expect(seenFrom?.port == localPort)

                // `localhost` resolves to both families; an IPv4 local address picks the IPv4 one.
                let byName = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "localhost", localAddress: "127.0.0.3"))
                #expect(byName.local?.address == "127.0.0.3")
                #expect(byName.remote?.address == "127.0.0.1")

                // The same local address and port while the first is open: taken.
                do {
                    _ = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1", localAddress: "127.0.0.2", localPort: localPort))
                    Issue.record("a second connect from the same local port succeeded")
                } catch let error as ResponseError {
                    #expect(error.systemCode == "EADDRINUSE", "\(error)")
                }
                // Not an address at all: refused before anything is opened.
                do {
                    _ = try await client.call(SocketConnectMethod.self, .init(port: peer.port, host: "127.0.0.1", localAddress: "localhost"))
                    Issue.record("a host name was taken as a local address")
                } catch let error as ResponseError {
                    #expect(error.code == .invalidParams)
                    #expect(error.message.contains("localAddress"))
                }
            }
        }
    }

    @Test func reusePortAndIPv6Only() async throws {
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                // Two servers on one port, both with reusePort: the kernel spreads connections.
                let first = try await client.call(ServerListenMethod.self, .init(port: 0, host: "127.0.0.1", reusePort: true))
                let port = try #require(first.local?.port)
                let second = try await client.call(ServerListenMethod.self, .init(port: port, host: "127.0.0.1", reusePort: true))
                #expect(second.local?.port == port)
                // Without it the port is taken.
                do {
                    _ = try await client.call(ServerListenMethod.self, .init(port: port, host: "127.0.0.1"))
                    Issue.record("a third server bound a taken port without reusePort")
                } catch let error as ResponseError {
                    #expect(error.systemCode == "EADDRINUSE")
                }
                for _ in 0..<20 {
                    _ = try await client.call(SocketConnectMethod.self, .init(port: port, host: "127.0.0.1"))
                }
                #expect(try await eventually {
                    let a = try await client.call(ServerGetMethod.self, .init(id: first.id)).accepted
                    let b = try await client.call(ServerGetMethod.self, .init(id: second.id)).accepted
                    return a + b == 20
                })

                // ipv6Only on ::1's wildcard sibling: IPv6 connects, IPv4 is refused.
                let v6only = try await client.call(ServerListenMethod.self, .init(port: 0, host: "::", ipv6Only: true))
                let v6port = try #require(v6only.local?.port)
                let overV6 = try await client.call(SocketConnectMethod.self, .init(port: v6port, host: "::1"))
                #expect(overV6.remote?.family == "IPv6")
                do {
                    _ = try await client.call(SocketConnectMethod.self, .init(port: v6port, host: "127.0.0.1"))
                    Issue.record("IPv4 reached an ipv6Only server")
                } catch let error as ResponseError {
                    #expect(error.systemCode == "ECONNREFUSED")
                }
                // Without ipv6Only, `::` takes IPv4 too (dual stack, Node's default).
                let dual = try await client.call(ServerListenMethod.self, .init(port: 0, host: "::"))
                let overV4 = try await client.call(SocketConnectMethod.self, .init(port: try #require(dual.local?.port), host: "127.0.0.1"))
                #expect(overV4.state == .open)
            }
        }
    }

    @Test func anHTTPRequestAndItsResponse() async throws {
        let web = try await Peer.start(.http)
        defer { Task { await web.close() } }
        try await withRunningDaemon { netd in
            try await netd.withClient { client in
                let socket = try await client.call(SocketConnectMethod.self, .init(port: web.port, host: "127.0.0.1", label: "web"))
                let request = "GET /status?verbose=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: netd-test\r\n\r\n"
                let wrote = try await client.call(SocketWriteMethod.self, .init(id: socket.id, data: request))
                #expect(wrote.bytes == request.utf8.count)
                // Read until the server closes: the whole response, then eof.
                var response = ""
                for _ in 0..<50 {
                    let read = try await client.call(SocketReadMethod.self, .init(id: socket.id, waitMs: 5000))
                    response += read.data
                    if read.eof { break }
                }
                let body = "you asked for GET /status?verbose=1\n"
                #expect(response == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
                let done = try await client.call(SocketGetMethod.self, .init(id: socket.id))
                #expect(done.state == .closed)
                #expect(done.bytesWritten == Int64(request.utf8.count))
                #expect(done.bytesRead == Int64(response.utf8.count))
                #expect(done.error == nil)
            }
        }
    }
}

/// A loopback TCP port nothing listens on right now (bound, read, released): for a local port
/// on 127.0.0.2, where no other test binds; a port to be refused is `Sockets.refusingTCP()`.
func unusedLoopbackPort(host: String = "127.0.0.1") -> Int? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr(host)
    var size = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) }
    }
    guard bound == 0 else { return nil }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}
