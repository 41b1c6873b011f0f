import Logging
import NIOCore
import NetdProtocol

/// The lines an RPC connection has made and not yet written: answers and notifications, in the
/// order they were made, taken as one buffer at the end of a read.
struct AnswerLines {
    enum Answer {
        case single(ResponseMessage)
        case batch([ResponseMessage])
    }

    private var json = JSONWriter(capacity: 4096)
    /// One encoder for every answer of the connection.
    private let encoder = JSONCoding.Reusable()

    var isEmpty: Bool { json.bytes.isEmpty }

    /// Appends the answer's line. A result that cannot be encoded (a double that is not finite)
    /// is answered -32603 for its id, never dropped.
    mutating func append(_ answer: Answer, logger: Logger?) {
        let start = json.bytes.count
        do {
            switch answer {
            case .single(let response): try response.write(line: &json, encoder: encoder)
            case .batch(let responses): try ResponseMessage.write(batch: responses, line: &json, encoder: encoder)
            }
        } catch {
            logger?.error("cannot encode a response", metadata: ["error": "\(error)"])
            json.bytes.removeSubrange(start...)
            let failed: (RequestID) -> ResponseMessage = {
                ResponseMessage(id: $0, outcome: .error(Dispatcher.responseError(.internalFailure("result could not be encoded"))))
            }
            switch answer {
            case .single(let response): try? failed(response.id).write(line: &json)
            case .batch(let responses): try? ResponseMessage.write(batch: responses.map { failed($0.id) }, line: &json)
            }
        }
    }

    /// Appends lines already made (notifications).
    mutating func append(lines: [UInt8]) {
        json.bytes.append(contentsOf: lines)
    }

    /// Everything made so far, as one buffer; the lines start again empty.
    mutating func take(allocator: ByteBufferAllocator) -> ByteBuffer {
        defer { json.bytes.removeAll(keepingCapacity: true) }
        return allocator.buffer(bytes: json.bytes)
    }
}
