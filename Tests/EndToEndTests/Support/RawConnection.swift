import Foundation
import NIOCore
import NIOPosix
import NetdFraming
import NetdProtocol

/// A connection that sends exact bytes and reads exact lines, for testing netd's wire behaviour.
final class RawConnection {
    private var lines: NIOAsyncChannelInboundStream<LineFrame>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

    init(inbound: NIOAsyncChannelInboundStream<LineFrame>, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.lines = inbound.makeAsyncIterator()
        self.outbound = outbound
    }

    /// Sends `text` followed by a newline.
    func send(_ text: String) async throws {
        try await outbound.write(ByteBuffer(string: text + "\n"))
    }

    func send(bytes: [UInt8]) async throws {
        try await outbound.write(ByteBuffer(bytes: bytes))
    }

    /// Half-closes: netd sees end of input and still answers what it had.
    func finishSending() {
        outbound.finish()
    }

    /// The next line netd sent, or nil at end of stream.
    func line() async throws -> String? {
        while let frame = try await lines.next() {
            if case .line(let buffer) = frame { return String(buffer: buffer) }
        }
        return nil
    }

    /// The next line as JSON; throws if the stream ended.
    func json() async throws -> JSONValue {
        guard let line = try await line() else { throw RawConnectionError.closed }
        return try JSONDecoder().decode(JSONValue.self, from: Data(line.utf8))
    }

    /// Sends `text` and returns the line that answers it.
    func exchange(_ text: String) async throws -> JSONValue {
        try await send(text)
        return try await json()
    }
}

enum RawConnectionError: Error {
    case closed
    case answer(String)
}

/// Connects to `path`, runs `body` with a ``RawConnection``, and closes.
func withRawConnection<T: Sendable>(_ path: String, _ body: (RawConnection) async throws -> T) async throws -> T {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .channelOption(.allowRemoteHalfClosure, value: true)
        .connect(unixDomainSocketPath: path) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maximumLineBytes: 64 << 20)))
                return try NIOAsyncChannel<LineFrame, ByteBuffer>(
                    wrappingChannelSynchronously: channel,
                    configuration: .init(isOutboundHalfClosureEnabled: true))
            }
        }
    return try await channel.executeThenClose { inbound, outbound in
        try await body(RawConnection(inbound: inbound, outbound: outbound))
    }
}

extension JSONValue {
    /// `error.code` of a response, if it is an error.
    var errorCode: Int64? { self["error"]?["code"]?.integerValue }
    var id: JSONValue? { self["id"] }
}
