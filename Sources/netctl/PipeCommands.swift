import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import NetdBlockingClient
import NetdProtocol

struct Pipe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipe",
        abstract: "Join the terminal to a socket, like nc: stdin to the socket, the socket to stdout.",
        discussion: """
            The bytes go through unchanged (binary-safe). The end of stdin ends the socket's write side \\
            (socket.end); the peer's end ends stdout; netctl exits when both directions are done, or \\
            when either side closes. Exit status 0 on a clean end, 1 when the socket ended in an error \\
            (a reset, say).

            Examples:
              printf 'PING\\\\r\\\\n' | netctl pipe 5
              netctl pipe 5 < request.bin > response.bin
            """)

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "The socket's id.") var id: Int64

    func validate() throws {
        if globals.json { throw ValidationError("pipe prints the socket's bytes, not JSON: leave out --json") }
    }

    func run() throws {
        try StreamRelay.run(globals: globals) { client in
            _ = try client.callAttaching(SocketAttachMethod.self, .init(id: id))
            return id
        }
    }
}

struct Join: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "join",
        abstract: "Join two of your open sockets: each one's bytes go to the other, moved by the kernel (socket.pipe).",
        discussion: """
            Bytes either socket had buffered go first; an end is passed on, a reset resets both. \\
            `netctl fault add ID ...` on either socket breaks the pair on purpose.

            Example: netctl join 3 5
            """)

    @OptionGroup var globals: GlobalOptions
    @Argument(help: "One socket's id (upstream faults run from it toward the other).") var id: Int64
    @Argument(help: "The other socket's id.") var to: Int64

    func run() throws {
        let result = try globals.withClient { try $0.call(SocketPipeMethod.self, .init(id: id, to: to)) }
        try globals.print(result) { "joined socket \($0.socket.id) and socket \($0.to.id)" }
    }
}

/// Moves bytes between netctl's stdin and stdout and an attached stream (contract section 9),
/// with poll(2) and a non-blocking stream socket, so that neither direction waits on the other:
/// a peer that answers only once it has read everything (an echo of megabytes) cannot deadlock it.
enum StreamRelay {
    /// Connects, lets `open` make the call that attaches (it returns the socket's id), relays, and
    /// exits 1 when the socket ended in an error.
    static func run(globals: GlobalOptions, open: (NetdBlockingClient) throws -> Int64) throws {
        let (id, reset) = try globals.withClient { client -> (Int64, Bool) in
            let id = try open(client)
            let (descriptor, unread) = client.takeStream()
            return (id, relay(descriptor, first: unread))
        }
        // How the socket ended is in netd's record of it: ask on a fresh connection.
        let failure = try globals.withClient { client -> SocketFailure? in
            for _ in 0..<100 {
                let socket = try client.call(SocketGetMethod.self, .init(id: id))
                if socket.error != nil || socket.state == .closed { return socket.error }
                usleep(10_000)
            }
            return nil
        }
        if let failure {
            Terminal.err("netctl: socket \(id): \(failure.code): \(failure.message)\n")
            throw ExitCode(1)
        }
        if reset {
            Terminal.err("netctl: socket \(id): the stream was reset\n")
            throw ExitCode(1)
        }
    }

    /// Relays until both directions are done; true when the stream was reset.
    static func relay(_ stream: Int32, first: [UInt8]) -> Bool {
        signal(SIGPIPE, SIG_IGN)
        _ = fcntl(stream, F_SETFL, fcntl(stream, F_GETFL) | O_NONBLOCK)
        let capacity = 256 * 1024
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        if !first.isEmpty, !first.withUnsafeBytes({ writeAll(STDOUT_FILENO, $0) }) { return false }

        var inputOpen = true  // stdin not at its end; the stream's write side not ended
        var outputOpen = true  // the stream not at its end
        var toStream = 0..<0  // bytes of stdin in `buffer`'s first half not yet sent
        let half = capacity / 2
        while inputOpen || outputOpen || !toStream.isEmpty {
            var fds = [
                pollfd(fd: STDIN_FILENO, events: inputOpen && toStream.isEmpty ? Int16(POLLIN) : 0, revents: 0),
                pollfd(fd: stream, events: Int16(outputOpen ? POLLIN : 0) | Int16(toStream.isEmpty ? 0 : POLLOUT), revents: 0),
            ]
            if !(inputOpen && toStream.isEmpty) { fds[0].fd = -1 }
            guard poll(&fds, 2, -1) >= 0 || errno == EINTR else { return false }
            let streamEvents = Int32(fds[1].revents)

            if outputOpen, streamEvents & (POLLIN | POLLHUP | POLLERR) != 0 {
                let count = recv(stream, buffer.baseAddress! + half, capacity - half, 0)
                if count > 0 {
                    if !writeAll(STDOUT_FILENO, UnsafeRawBufferPointer(rebasing: buffer[half..<(half + count)])) {
                        return false  // stdout went away: nobody to give the rest to
                    }
                } else if count == 0 {
                    outputOpen = false
                } else if errno != EAGAIN && errno != EINTR {
                    return errno == ECONNRESET
                }
            }
            if !outputOpen, streamEvents & POLLHUP != 0 {
                // netd closed the stream entirely (the socket is closed): nothing more can be sent.
                return false
            }
            if !toStream.isEmpty, streamEvents & (POLLOUT | POLLERR | POLLHUP) != 0 {
                let count = send(stream, buffer.baseAddress! + toStream.lowerBound, toStream.count, Int32(MSG_NOSIGNAL))
                if count > 0 {
                    toStream = (toStream.lowerBound + count)..<toStream.upperBound
                } else if errno != EAGAIN && errno != EINTR {
                    return errno == ECONNRESET
                }
                if toStream.isEmpty && !inputOpen { shutdown(stream, Int32(SHUT_WR)) }
            }
            if fds[0].fd >= 0, Int32(fds[0].revents) & (POLLIN | POLLHUP | POLLERR) != 0 {
                let count = read(STDIN_FILENO, buffer.baseAddress!, half)
                if count > 0 {
                    toStream = 0..<count
                } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                    inputOpen = false
                    shutdown(stream, Int32(SHUT_WR))
                }
            }
        }
        return false
    }

    /// Writes everything, waiting as long as it takes; false when the descriptor refuses.
    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var rest = bytes[...]
        while !rest.isEmpty {
            let count = write(fd, bytes.baseAddress! + rest.startIndex, rest.count)
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN {
                    var out = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&out, 1, -1)
                    continue
                }
                return false
            }
            rest = rest.dropFirst(count)
        }
        return true
    }
}
