import Foundation
import Logging
import NIOCore
import NetdProtocol

/// One RPC client's connection: decodes each line, serves its requests concurrently, writes the answers.
///
/// - Important: `send` may be called from any task; the outbound writer orders concurrent writes.
struct RPCSession: Sendable {
    let context: RequestContext
    let dispatcher: Dispatcher
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

    /// Serves one decoded line: a single call, or a batch whose answers go back as one array.
    func serve(_ frame: IncomingFrame) async {
        switch frame {
        case .single(let call):
            if let response = await dispatcher.respond(to: call, context: context) {
                await send(response)
            }
        case .batch(let calls):
            let responses = await withTaskGroup(of: (Int, ResponseMessage?).self) { group in
                for (index, call) in calls.enumerated() {
                    group.addTask { (index, await dispatcher.respond(to: call, context: context)) }
                }
                var slots = [ResponseMessage?](repeating: nil, count: calls.count)
                for await (index, response) in group { slots[index] = response }
                return slots.compactMap { $0 }
            }
            // A batch of notifications gets nothing back, not even an empty array.
            if !responses.isEmpty { await send(batch: responses) }
        }
    }

    /// Answers a line that was over the size limit, as contract section 1 says.
    func refuseOversized(bytes: Int, limit: Int) async {
        let error = ResponseError.invalidRequest(
            "message of \(bytes) bytes is over the \(limit)-byte limit (--max-message-bytes); it was skipped",
            data: .object(["code": .string("EMSGSIZE"), "limit": .integer(Int64(limit))]))
        await send(ResponseMessage(id: .null, outcome: .error(error)))
    }

    /// Answers every call of a line that would take the connection past `--max-requests-per-client`.
    func refuseBusy(_ frame: IncomingFrame, limit: Int) async {
        let error = ResponseError.netd(
            .limitReached, "EBUSY",
            "this connection has \(limit) requests waiting for answers already (--max-requests-per-client); wait for some")
        switch frame {
        case .single(let call):
            if case .respond(let id) = call.reply { await send(ResponseMessage(id: id, outcome: .error(error))) }
        case .batch(let calls):
            let responses = calls.compactMap { call -> ResponseMessage? in
                guard case .respond(let id) = call.reply else { return nil }
                return ResponseMessage(id: id, outcome: .error(error))
            }
            if !responses.isEmpty { await send(batch: responses) }
        }
    }

    func send(_ response: ResponseMessage) async {
        await write { json, encoder in
            do {
                try response.write(line: &json, encoder: encoder)
            } catch {
                context.logger.error("cannot encode a response", metadata: ["error": "\(error)"])
                json.bytes.removeAll()
                try ResponseMessage(id: response.id, outcome: .error(.internalError("result could not be encoded")))
                    .write(line: &json, encoder: encoder)
            }
        }
    }

    func send(batch responses: [ResponseMessage]) async {
        await write { json, encoder in
            do {
                try ResponseMessage.write(batch: responses, line: &json, encoder: encoder)
            } catch {
                context.logger.error("cannot encode a batch response", metadata: ["error": "\(error)"])
                json.bytes.removeAll()
                let failed = responses.map { ResponseMessage(id: $0.id, outcome: .error(.internalError("result could not be encoded"))) }
                try ResponseMessage.write(batch: failed, line: &json, encoder: encoder)
            }
        }
    }

    private func write(_ body: (inout JSONWriter, JSONEncoder) throws -> Void) async {
        do {
            var json = JSONWriter()
            try body(&json, JSONCoding.encoder())
            try await outbound.write(ByteBuffer(bytes: json.bytes))
        } catch {
            // The client went away; there is nobody left to tell.
            context.logger.debug("cannot write to RPC client", metadata: ["error": "\(error)"])
        }
    }
}
