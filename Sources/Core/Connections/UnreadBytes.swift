import NIOCore
import NetdProtocol

/// What a socket's peer sent and no client has read yet, handed out in the encoding asked for.
struct UnreadBytes {
    private var buffer = ByteBuffer()

    var count: Int { buffer.readableBytes }

    mutating func append(_ bytes: inout ByteBuffer) {
        buffer.writeBuffer(&bytes)
    }

    /// Everything, as plain bytes: what goes first when the socket is joined to a relay.
    mutating func takeAll() -> [UInt8] {
        defer { buffer = ByteBuffer() }
        return Array(buffer.readableBytesView)
    }

    /// Up to `maxBytes`, encoded, and how many bytes that was; nil while the only bytes are part
    /// of a UTF-8 character whose rest has not arrived (`utf8` never splits a character).
    ///
    /// - Parameter ended: nothing more will arrive, so a cut character at the end is an error.
    mutating func take(maxBytes: Int, encoding: DataEncoding, ended: Bool, id: Int64) throws(NetdError) -> (data: String, bytes: Int)? {
        var length = min(maxBytes, buffer.readableBytes)
        if encoding == .utf8 {
            let view = buffer.readableBytesView
            let isAll = length == view.count
            guard let whole = ByteCoding.utf8Length(view.prefix(length), final: ended && isAll) else {
                throw Self.notUTF8(id)
            }
            if whole == 0 {
                // One character is longer than maxBytes, or not all here yet.
                let longer = min(view.count, length + 3)
                guard let extended = ByteCoding.utf8Length(view.prefix(longer), final: ended && longer == view.count) else {
                    throw Self.notUTF8(id)
                }
                guard extended > 0 else { return nil }
                length = extended
            } else {
                length = whole
            }
        }
        let slice = buffer.readSlice(length: length)!
        let data = ByteCoding.encode(slice.readableBytesView, encoding)
        if buffer.readableBytes == 0 {
            buffer = ByteBuffer()
        } else if buffer.readerIndex > 65536 {
            buffer.discardReadBytes()
        }
        return (data, length)
    }

    private static func notUTF8(_ id: Int64) -> NetdError {
        SocketErrors.invalidState("EILSEQ", "the bytes buffered on socket \(id) are not valid UTF-8; read them with encoding base64 or hex")
    }
}
