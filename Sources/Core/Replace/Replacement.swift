import Foundation
import Logging
import NetdProtocol
import NetdStore

#if canImport(Glibc)
import Glibc
import NetdLocks
#endif

/// The running netd's side of `netd --replace` (contract section 13), behind `netd.replace`:
/// quiet everything, take it all out, send it to the new netd, and either stop (the new one
/// confirmed) or take it all back in and go on serving (it did not).
final class Replacement: Sendable {
    private struct Parts {
        var server: RPCServer?
        var shutdown: (@Sendable () async -> Void)?
        var busy = false
    }

    private let manager: ConnectionManager
    private let clients: ClientTable
    private let writer: HistoryWriter
    private let logger: Logger
    private let parts = Locked(Parts())
    /// How long requests in flight may take to finish before the replacement is given up.
    private let settleLimit: Duration = .seconds(10)

    init(manager: ConnectionManager, clients: ClientTable, writer: HistoryWriter, logger: Logger) {
        self.manager = manager
        self.clients = clients
        self.writer = writer
        self.logger = logger
    }

    /// The RPC server, and how to stop this netd once replaced; known after the method table is made.
    func attach(server: RPCServer, shutdown: @escaping @Sendable () async -> Void) {
        parts.withLock {
            $0.server = server
            $0.shutdown = shutdown
        }
    }

    func register(in table: inout MethodTable) {
        table.on(NetdReplaceMethod.self) { params, context in
            try await self.handOver(to: params.socket, context: context)
        }
    }

    private func handOver(to name: String, context: RequestContext) async throws(NetdError) -> NetdReplaceMethod.Result {
        guard context.isAdmin else {
            throw NetdError.permissionDenied("only admins (root, netd's own user uid \(getuid()), --admin-group members) may replace netd")
        }
        guard let (server, shutdown) = parts.withLock({ parts -> (RPCServer, @Sendable () async -> Void)? in
            guard !parts.busy, let server = parts.server, let shutdown = parts.shutdown else { return nil }
            parts.busy = true
            return (server, shutdown)
        }) else {
            throw SocketErrors.invalidState("ERR_REPLACING", "netd is being replaced already")
        }
        var replaced = false
        defer { if !replaced { parts.withLock { $0.busy = false } } }

        let connected = await HandoverChannel.onThread { () -> Result<HandoverChannel, HandoverChannel.Failure> in
            Result { () throws(HandoverChannel.Failure) in try HandoverChannel.connect(to: name, timeout: 30) }
        }
        let channel: HandoverChannel
        switch connected {
        case .success(let opened): channel = opened
        case .failure(let failure): throw NetdError.invalidParams(failure.description)
        }
        defer { channel.close() }
        guard channel.peerPID == context.peer.pid else {
            throw NetdError.permissionDenied("the process listening on the private socket is not the one that asked (pid \(context.peer.pid))")
        }

        logger.notice("handing over to a new netd", metadata: ["netd.new_pid": "\(context.peer.pid)"])
        let clock = ContinuousClock()
        let began = clock.now
        await server.setAccepting(false)
        await clients.pauseReading()
        manager.quiesce()
        let resume: @Sendable () async -> Void = { [manager, clients] in
            manager.resumeAfterQuiesce()
            clients.resumeReading()
            await server.setAccepting(true)
        }
        // Every other request answered, and nothing caught between two states.
        let deadline = ContinuousClock.now + settleLimit
        while clients.gate.requestsInFlight > 1 || manager.unsettled() != nil {
            guard ContinuousClock.now < deadline else {
                let reason = manager.unsettled() ?? "\(clients.gate.requestsInFlight - 1) requests are still in flight"
                await resume()
                throw SocketErrors.invalidState("ERR_REPLACE_BUSY", "cannot hand over after \(settleLimit): \(reason); this netd goes on serving")
            }
            try? await Task.sleep(for: .milliseconds(5))
        }

        let quiet = clock.now
        let carried = await manager.carry()
        let takenOut = clock.now
        var descriptors = carried.descriptors
        guard let listener = await server.duplicateListener() else {
            await takeBack(carried, into: descriptors, reason: "cannot duplicate the RPC listening socket")
            await resume()
            throw NetdError.internalFailure("cannot duplicate the RPC listening socket; this netd goes on serving")
        }
        descriptors.append(listener)
        var handing = Handover(
            version: NetdVersion.current, pid: getpid(), nextID: manager.store.nextID, listener: descriptors.count - 1,
            servers: carried.servers, sockets: carried.sockets, pairs: carried.pairs,
            faults: manager.faults.all.map(\.info), nextFaultID: manager.faults.nextID, descriptors: descriptors.count)
        handing.listenerActivated = server.isActivated
        let handover = handing
        // The new netd updates these records from now on: they must all be in the database first.
        guard await writer.settle(atMost: .seconds(5)) else {
            Glibc.close(listener)
            await takeBack(carried, into: descriptors, reason: "history is not being written")
            await resume()
            throw SocketErrors.invalidState("ERR_HISTORY_UNWRITTEN", "the history database cannot be written now, so its records cannot be handed over; this netd goes on serving")
        }

        let written = clock.now
        let handed = descriptors
        let answer = await HandoverChannel.onThread { () -> Result<String?, HandoverChannel.Failure> in
            Result { () throws(HandoverChannel.Failure) in
                try channel.send(handover, descriptors: handed)
                return channel.readLine()
            }
        }
        guard case .success("ready") = answer else {
            let reason: String =
                switch answer {
                case .success(let line?): line.hasPrefix("error: ") ? String(line.dropFirst(7)) : line
                case .success(nil): "it closed the private socket, or did not answer within 30 s"
                case .failure(let failure): failure.description
                }
            logger.warning("the new netd did not take over; going on serving", metadata: ["reason": "\(reason)"])
            Glibc.close(listener)
            await takeBack(carried, into: descriptors, reason: reason)
            await resume()
            throw SocketErrors.invalidState("ERR_REPLACE_FAILED", "the new netd did not take over: \(reason); this netd goes on serving")
        }

        // The new netd holds everything: let go of this netd's copies, and stop.
        replaced = true
        server.keepSocketFile()
        for descriptor in descriptors { Glibc.close(descriptor) }
        logger.notice("replaced; stopping", metadata: [
            "netd.new_pid": "\(context.peer.pid)", "netd.sockets": "\(carried.sockets.count)",
            "netd.servers": "\(carried.servers.count)", "netd.pairs": "\(carried.pairs.count)",
            "replace.quiet_ms": (quiet - began).millisecondsText, "replace.take_out_ms": (takenOut - quiet).millisecondsText,
            "replace.history_ms": (written - takenOut).millisecondsText, "replace.hand_over_ms": (clock.now - written).millisecondsText,
        ])
        // Under systemd (Type=notify, NotifyAccess=all) the unit follows netd to its new process.
        SystemdNotify.send("MAINPID=\(context.peer.pid)")
        Task { await shutdown() }
        return NetdReplaceMethod.Result(
            replacedBy: context.peer.pid, sockets: carried.sockets.count, servers: carried.servers.count, pairs: carried.pairs.count)
    }

    /// Takes back in what was taken out for a new netd that did not take over.
    private func takeBack(_ carried: Carried, into descriptors: [CInt], reason: String) async {
        let handover = Handover(
            version: NetdVersion.current, pid: getpid(), nextID: manager.store.nextID, listener: -1,
            servers: carried.servers, sockets: carried.sockets, pairs: carried.pairs,
            faults: manager.faults.all.map(\.info), nextFaultID: manager.faults.nextID, descriptors: descriptors.count)
        do {
            try await manager.adopt(handover, descriptors: descriptors)
        } catch {
            logger.error("cannot take back what was handed over; some connections are lost", metadata: ["error": "\(error)"])
        }
    }
}

/// The new netd's side of `netd --replace`: ask the running netd to hand over, receive
/// everything on a private socket, take it in, confirm.
struct Takeover: Sendable {
    struct Failure: Error, CustomStringConvertible, Sendable {
        var description: String
    }

    /// The running netd's process, once known.
    let previousPID: Int32
    private let rpc: CInt
    private let listener: CInt
    let channel: HandoverChannel
    let handover: Handover
    let descriptors: [CInt]

    /// Asks the netd on `socketPath` to hand over and receives what it sends.
    static func begin(socketPath: String, timeout: Int = 30) async throws(Failure) -> Takeover {
        let outcome = await HandoverChannel.onThread { () -> Result<Takeover, Failure> in
            Result { () throws(Failure) in try receive(socketPath: socketPath, timeout: timeout) }
        }
        return try outcome.get()
    }

    private static func receive(socketPath: String, timeout: Int) throws(Failure) -> Takeover {
        let (listener, name): (CInt, String)
        do {
            (listener, name) = try HandoverChannel.listen()
        } catch {
            throw Failure(description: error.description)
        }
        let rpc = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        var address = SocketFile.address(socketPath)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(rpc, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rpc >= 0, connected == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(listener)
            if rpc >= 0 { Glibc.close(rpc) }
            throw Failure(description: "cannot reach the running netd on \(socketPath): \(reason)")
        }
        func fail(_ reason: String) -> Failure {
            Glibc.close(listener)
            Glibc.close(rpc)
            return Failure(description: reason)
        }
        guard let previous = PeerCredentials.read(descriptor: rpc) else { throw fail("cannot tell which process serves \(socketPath)") }
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(rpc, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let request = #"{"jsonrpc":"2.0","id":"replace","method":"netd.replace","params":{"socket":"\#(name)"}}"# + "\n"
        guard Array(request.utf8).withUnsafeBytes({ send(rpc, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL)) }) == request.utf8.count else {
            throw fail("cannot ask the running netd (pid \(previous.pid)) to hand over: \(String(cString: strerror(errno)))")
        }
        // The running netd connects to the private socket, or answers at once with an error.
        var polled = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0), pollfd(fd: rpc, events: Int16(POLLIN), revents: 0)]
        let ready = poll(&polled, 2, CInt(timeout * 1000))
        if ready > 0, polled[0].revents == 0 {
            throw fail("the running netd (pid \(previous.pid)) refused: \(answerMessage(HandoverChannel.readLine(rpc)))")
        }
        let channel: HandoverChannel
        do {
            channel = try HandoverChannel.accept(on: listener, timeout: timeout)
        } catch {
            throw fail(error.description)
        }
        guard channel.peerPID == previous.pid else {
            channel.close()
            throw fail("a process other than the running netd (pid \(previous.pid)) connected to the private socket")
        }
        do {
            let (handover, descriptors) = try channel.receive()
            return Takeover(previousPID: previous.pid, rpc: rpc, listener: listener, channel: channel, handover: handover, descriptors: descriptors)
        } catch {
            // The running netd may have said why it stopped sending.
            channel.close()
            let said = HandoverChannel.readLine(rpc)
            throw fail(said.map { "the running netd (pid \(previous.pid)) did not hand over: \(answerMessage($0))" } ?? error.description)
        }
    }

    /// Tells the running netd that this netd could not take over: it takes everything back.
    func refuse(_ reason: String) async {
        let (channel, rpc, listener, descriptors) = (self.channel, self.rpc, self.listener, self.descriptors)
        await HandoverChannel.onThread {
            try? channel.write(Array("error: \(reason)\n".utf8))
            // Its copies stay with the running netd; these go.
            for descriptor in descriptors { Glibc.close(descriptor) }
            _ = HandoverChannel.readLine(rpc)
            channel.close()
            Glibc.close(rpc)
            Glibc.close(listener)
        }
    }

    /// Tells the running netd that this netd holds everything; returns its answer to `netd.replace`.
    func confirm() async -> String {
        let (channel, rpc, listener) = (self.channel, self.rpc, self.listener)
        return await HandoverChannel.onThread {
            try? channel.write(Array("ready\n".utf8))
            let answer = HandoverChannel.readLine(rpc)
            channel.close()
            Glibc.close(rpc)
            Glibc.close(listener)
            return answer ?? "no answer"
        }
    }

    /// The message of a JSON-RPC error answer, or the line itself.
    private static func answerMessage(_ line: String?) -> String {
        guard let line else { return "it closed the connection without an answer" }
        if let data = line.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let error = object["error"] as? [String: Any], let message = error["message"] as? String
        {
            return message
        }
        return line
    }
}

extension Duration {
    /// Milliseconds with one decimal, for the log: `12.5`.
    var millisecondsText: Logger.MetadataValue {
        let (seconds, attoseconds) = components
        return "\(String(format: "%.1f", Double(seconds) * 1000 + Double(attoseconds) / 1e15))"
    }
}
