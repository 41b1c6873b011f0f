import Foundation
import NIOCore
import NIOPosix
import NetdFraming

/// A JSON-RPC client at the level of lines: it sends prepared request lines and hands back the
/// answer's bytes, so that the benchmark measures netd rather than a client's JSON decoding.
final class LineClient {
    private var lines: NIOAsyncChannelInboundStream<LineFrame>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

    private init(inbound: NIOAsyncChannelInboundStream<LineFrame>, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.lines = inbound.makeAsyncIterator()
        self.outbound = outbound
    }

    /// Connects to `path`, runs `body` with the client, and closes.
    static func with<T>(_ path: String, _ body: (LineClient) async throws -> T) async throws -> T {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(unixDomainSocketPath: path) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maximumLineBytes: 64 << 20)))
                    return try NIOAsyncChannel<LineFrame, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await body(LineClient(inbound: inbound, outbound: outbound))
        }
    }

    /// Sends one request line (with its newline) and returns the answer line.
    func call(_ request: ByteBuffer) async throws -> ByteBuffer {
        try await outbound.write(request)
        while let frame = try await lines.next() {
            if case .line(let line) = frame { return line }
        }
        throw BenchError("netd closed the connection")
    }

    func call(_ request: String) async throws -> ByteBuffer {
        try await call(ByteBuffer(string: request + "\n"))
    }

    /// The answer's `result` as JSON, or the error it carries.
    func result(_ request: String) async throws -> [String: Any] {
        let answer = try await call(request)
        guard let object = try JSONSerialization.jsonObject(with: Data(answer.readableBytesView)) as? [String: Any] else {
            throw BenchError("not a JSON object: \(String(buffer: answer))")
        }
        guard let result = object["result"] as? [String: Any] else {
            throw BenchError("netd answered \(String(buffer: answer))")
        }
        return result
    }
}
