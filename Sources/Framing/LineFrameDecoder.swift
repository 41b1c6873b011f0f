import NIOCore

/// One newline-delimited message, or the news that one was too long to keep.
public enum LineFrame: Sendable, Equatable {
    /// A line without its `\n` (and without a `\r` before it).
    case line(ByteBuffer)
    /// A line longer than the limit was skipped up to its newline; `bytes` is how much of it was seen.
    case oversized(bytes: Int)
}

/// Splits a byte stream into lines of at most `maximumLineBytes`, without ever closing the stream:
/// an over-long line is skipped up to its newline and reported as ``LineFrame/oversized(bytes:)``,
/// so the connection stays usable. Blank lines are skipped: they carry nothing.
///
/// Memory stays bounded by the limit: bytes of an over-long line are discarded as they arrive.
public struct LineFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = LineFrame

    public let maximumLineBytes: Int
    /// How far the current partial line has been searched for a newline already.
    private var scanned = 0
    /// Non-nil while skipping the rest of an over-long line: how many bytes it has had.
    private var skipping: Int?

    public init(maximumLineBytes: Int) {
        self.maximumLineBytes = maximumLineBytes
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if let frame = next(&buffer) {
            context.fireChannelRead(Self.wrapInboundOut(frame))
            return .continue
        }
        return .needMoreData
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext,
        buffer: inout ByteBuffer,
        seenEOF: Bool
    ) throws -> DecodingState {
        if let frame = next(&buffer) {
            context.fireChannelRead(Self.wrapInboundOut(frame))
            return .continue
        }
        if let frame = last(&buffer) { context.fireChannelRead(Self.wrapInboundOut(frame)) }
        return .needMoreData
    }

    /// Once the input has ended and ``next(_:)`` has nothing more: what is left, as a last line.
    /// A last line without its newline still counts: `printf '{...}' | socat` sends one.
    public mutating func last(_ buffer: inout ByteBuffer) -> LineFrame? {
        if let skipped = skipping {
            skipping = nil
            return .oversized(bytes: skipped)
        }
        guard buffer.readableBytes > 0, let line = buffer.readSlice(length: buffer.readableBytes) else { return nil }
        scanned = 0
        return Self.frame(line)
    }

    /// Takes the next complete frame out of `buffer`, if there is one. Public for tests and other transports.
    public mutating func next(_ buffer: inout ByteBuffer) -> LineFrame? {
        while true {
            let view = buffer.readableBytesView
            if let skipped = skipping {
                if let newline = view.firstIndex(of: UInt8(ascii: "\n")) {
                    let length = newline - view.startIndex
                    buffer.moveReaderIndex(forwardBy: length + 1)
                    skipping = nil
                    return .oversized(bytes: skipped + length)
                }
                skipping = skipped + view.count
                buffer.moveReaderIndex(forwardBy: view.count)
                return nil
            }
            let searchFrom = view.startIndex + scanned
            guard let newline = view[searchFrom...].firstIndex(of: UInt8(ascii: "\n")) else {
                scanned = view.count
                if view.count > maximumLineBytes {
                    skipping = view.count
                    scanned = 0
                    buffer.moveReaderIndex(forwardBy: view.count)
                }
                return nil
            }
            let length = newline - view.startIndex
            scanned = 0
            if length > maximumLineBytes {
                buffer.moveReaderIndex(forwardBy: length + 1)
                return .oversized(bytes: length)
            }
            let line = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: 1)
            if let frame = Self.frame(line) { return frame }
        }
    }

    /// The frame for a line, or nil for a blank one.
    private static func frame(_ line: ByteBuffer) -> LineFrame? {
        var line = line
        if line.readableBytesView.last == UInt8(ascii: "\r") {
            line.moveWriterIndex(to: line.writerIndex - 1)
        }
        let blank = line.readableBytesView.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
        return blank ? nil : .line(line)
    }
}
