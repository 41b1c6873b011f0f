import Foundation
@testable import NetdProtocol
import Testing

/// Decoding of what clients send: every way a line can be right or wrong.
@Suite struct IncomingFrameTests {
    private func single(_ text: String) -> IncomingCall {
        guard case .single(let call) = IncomingFrame.decode(Data(text.utf8)) else {
            Issue.record("expected a single call for \(text)")
            return IncomingCall(reply: .none, methodName: nil, content: .failure(.internalError("")))
        }
        return call
    }

    private func error(_ call: IncomingCall) -> ResponseError? {
        if case .failure(let error) = call.content { error } else { nil }
    }

    @Test func validRequest() {
        let call = single(#"{"jsonrpc":"2.0","id":1,"method":"netd.ping"}"#)
        #expect(call.reply == .respond(.number(1)))
        guard case .success(let valid) = call.content else { Issue.record("not valid"); return }
        #expect(valid.name == "netd.ping")
        #expect(valid.params is NoParams)
    }

    @Test func notificationHasNoReply() {
        #expect(single(#"{"jsonrpc":"2.0","method":"netd.ping"}"#).reply == .none)
        // A notification of an unknown method is still not answered.
        let unknown = single(#"{"jsonrpc":"2.0","method":"nope"}"#)
        #expect(unknown.reply == .none)
        #expect(error(unknown)?.code == .methodNotFound)
    }

    @Test func nullIDIsARequest() {
        #expect(single(#"{"jsonrpc":"2.0","id":null,"method":"netd.ping"}"#).reply == .respond(.null))
    }

    @Test(arguments: [
        #"{"jsonrpc":"2.0","id":{"a":1},"method":"netd.ping"}"#,
        #"{"jsonrpc":"2.0","id":[1],"method":"netd.ping"}"#,
        #"{"jsonrpc":"2.0","id":true,"method":"netd.ping"}"#,
    ])
    func badIDIsInvalidRequestWithNullID(text: String) {
        let call = single(text)
        #expect(call.reply == .respond(.null))
        #expect(error(call)?.code == .invalidRequest)
    }

    @Test(arguments: [
        (#"{"id":1,"method":"netd.ping"}"#, "jsonrpc"),
        (#"{"jsonrpc":"1.0","id":1,"method":"netd.ping"}"#, "jsonrpc"),
        (#"{"jsonrpc":2.0,"id":1,"method":"netd.ping"}"#, "jsonrpc"),
        (#"{"jsonrpc":"2.0","id":1}"#, "method"),
        (#"{"jsonrpc":"2.0","id":1,"method":1}"#, "method"),
        (#"{"jsonrpc":"2.0","id":1,"method":"netd.ping","params":"bar"}"#, "params"),
        (#"{"jsonrpc":"2.0","id":1,"method":"netd.ping","params":null}"#, "params"),
    ])
    func invalidRequestsKeepTheirID(text: String, mentions: String) {
        let call = single(text)
        #expect(call.reply == .respond(.number(1)))
        #expect(error(call)?.code == .invalidRequest)
        #expect(error(call)?.message.contains(mentions) == true)
    }

    @Test(arguments: ["1", #""x""#, "null", "true"])
    func nonObjectIsInvalidRequest(text: String) {
        let call = single(text)
        #expect(call.reply == .respond(.null))
        #expect(error(call)?.code == .invalidRequest)
    }

    @Test(arguments: ["{bad", #"{"jsonrpc":"2.0""#, "[1,2", "\u{FFFD}garbage"])
    func unparsableIsParseError(text: String) {
        let call = single(text)
        #expect(call.reply == .respond(.null))
        #expect(error(call)?.code == .parseError)
    }

    @Test func invalidUTF8IsParseError() {
        let bytes: [UInt8] = Array(#"{"jsonrpc":"2.0","id":1,"method":""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8)
        guard case .single(let call) = IncomingFrame.decode(Data(bytes)) else { Issue.record("not single"); return }
        #expect(error(call)?.code == .parseError)
    }

    @Test func deepNestingIsAnErrorNotACrash() {
        let text = String(repeating: "[", count: 200_000) + String(repeating: "]", count: 200_000)
        guard case .single(let call) = IncomingFrame.decode(Data(text.utf8)) else {
            Issue.record("expected one error for the whole line")
            return
        }
        #expect(error(call)?.code == .parseError)
    }

    @Test func reservedAndUnknownMethods() {
        #expect(error(single(#"{"jsonrpc":"2.0","id":1,"method":"rpc.discover"}"#))?.code == .methodNotFound)
        let unknown = single(#"{"jsonrpc":"2.0","id":"q","method":"socket.teleport"}"#)
        #expect(unknown.reply == .respond(.string("q")))
        #expect(error(unknown)?.code == .methodNotFound)
    }

    @Test func paramsByName() {
        #expect(error(single(#"{"jsonrpc":"2.0","id":1,"method":"netd.ping","params":{}}"#)) == nil)
        #expect(error(single(#"{"jsonrpc":"2.0","id":1,"method":"netd.ping","params":[]}"#)) == nil)
        let positional = single(#"{"jsonrpc":"2.0","id":1,"method":"netd.ping","params":[42,23]}"#)
        #expect(error(positional)?.code == .invalidParams)
        #expect(error(positional)?.message.contains("by name") == true)
        let unknown = single(#"{"jsonrpc":"2.0","id":1,"method":"netd.status","params":{"verbose":true}}"#)
        #expect(error(unknown)?.code == .invalidParams)
        #expect(error(unknown)?.message.contains("`verbose`") == true)
    }

    @Test func batches() {
        guard case .batch(let calls) = IncomingFrame.decode(Data(#"[{"jsonrpc":"2.0","id":1,"method":"netd.ping"},{"jsonrpc":"2.0","method":"netd.ping"},1,{"foo":"boo"}]"#.utf8)) else {
            Issue.record("not a batch")
            return
        }
        #expect(calls.map(\.reply) == [.respond(.number(1)), .none, .respond(.null), .respond(.null)])
        #expect(calls.map { error($0)?.code } == [nil, nil, .invalidRequest, .invalidRequest])

        let empty = single("[]")
        #expect(empty.reply == .respond(.null))
        #expect(error(empty)?.code == .invalidRequest)
    }
}

/// The byte-level path for the commonest requests takes only what it reads exactly as the full
/// decoder would, and leaves everything else to it.
@Suite struct SimpleRequestTests {
    @Test(arguments: [
        (#"{"jsonrpc":"2.0","id":1,"method":"netd.ping"}"#, RequestID.number(1), "netd.ping"),
        (#" { "method" : "netd.status" , "id" : -42 , "jsonrpc" : "2.0" } "#, .number(-42), "netd.status"),
        (#"{"jsonrpc":"2.0","id":"a b","method":"netd.methods","params":[]}"#, .string("a b"), "netd.methods"),
        (#"{"jsonrpc":"2.0","id":null,"method":"netd.ping"}"#, .null, "netd.ping"),
        ("{\"jsonrpc\":\"2.0\",\n\"id\":0,\t\"method\":\"netd.ping\"}", .number(0), "netd.ping"),
    ] as [(String, RequestID, String)])
    func takesTheCommonestRequests(line: String, id: RequestID, method: String) throws {
        let call = try #require(SimpleRequest.decode(Data(line.utf8)))
        #expect(call.reply == .respond(id))
        #expect(call.methodName == method)
        guard case .success(let valid) = call.content else { Issue.record("not valid: \(call.content)"); return }
        #expect(valid.name == method)
        #expect(valid.params is NoParams)
    }

    @Test func bytesThatAreNotUTF8NeverTakeThisPath() {
        var bytes = Array(#"{"jsonrpc":"2.0","id":"x","method":"netd.ping"}"#.utf8)
        bytes[28] = 0xFF
        #expect(bytes.withUnsafeBytes(IncomingFrame.decodeSimple) == nil)
        guard case .single(let call) = IncomingFrame.decode(Data(bytes)), case .failure(let error) = call.content else {
            Issue.record("invalid UTF-8 was accepted")
            return
        }
        #expect(error.code == .parseError)
    }

    @Test func aNotificationHasNoReply() throws {
        let call = try #require(SimpleRequest.decode(Data(#"{"jsonrpc":"2.0","method":"netd.ping"}"#.utf8)))
        #expect(call.reply == .none)
    }

    @Test(arguments: [
        #"{"jsonrpc":"2.0","id":1,"method":"socket.list"}"#,  // takes params, even if none are sent
        #"{"jsonrpc":"2.0","id":1.5,"method":"netd.ping"}"#,
        #"{"jsonrpc":"2.0","id":1e3,"method":"netd.ping"}"#,
        #"{"jsonrpc":"2.0","id":01,"method":"netd.ping"}"#,
        #"{"jsonrpc":"2.0","id":99999999999999999999,"method":"netd.ping"}"#,
        #"{"jsonrpc":"2.0","id":"\u0041","method":"netd.ping"}"#,
        #"{"jsonrpc":"1.0","id":1,"method":"netd.ping"}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"netd.ping","extra":true}"#,
        #"{"jsonrpc":"2.0","id":1,"id":2,"method":"netd.ping"}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"netd.ping",}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"no.such"}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"rpc.ping"}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"netd.ping"} x"#,
        #"{"jsonrpc":"2.0","id":1}"#,
        #"{}"#,
        #"[{"jsonrpc":"2.0","id":1,"method":"netd.ping"}]"#,
        #"{"jsonrpc":"2.0","id":"café","method":"netd.ping"}"#,  // not ASCII: the full decoder checks UTF-8
    ])
    func leavesEverythingElseToTheFullDecoder(line: String) {
        #expect(SimpleRequest.decode(Data(line.utf8)) == nil)
    }

    /// Flat params (strings without escapes, integers, booleans, null) are read from the bytes too,
    /// and only when they give what the full decoder gives; anything it would refuse or explain
    /// (unknown names, wrong types, failed checks, nesting, escapes, fractions) is left to it.
    @Test(arguments: [
        (#"{"jsonrpc":"2.0","id":1,"method":"socket.get","params":{"id":3}}"#, true),
        (#"{"jsonrpc":"2.0","id":1,"method":"netd.ping","params":{}}"#, true),
        (#"{"jsonrpc":"2.0","id":2,"method":"socket.write","params":{"id":7,"data":"aGVsbG8=","encoding":"base64"}}"#, true),
        (#"{"jsonrpc":"2.0","id":2,"method":"socket.write","params":{"data":"hi","id":7,"encoding":null}}"#, true),
        (#"{"jsonrpc":"2.0","id":3,"method":"socket.connect","params":{"host":"127.0.0.1","port":6379,"noDelay":true,"label":"x"}}"#, true),
        (#"{"jsonrpc":"2.0","id":3,"method":"socket.connect","params":{"path":"/tmp/a.sock","allowHalfOpen":false}}"#, true),
        (#"{"jsonrpc":"2.0","id":4,"method":"socket.read","params":{"id":1,"maxBytes":65536,"encoding":"hex","waitMs":0}}"#, true),
        (#"{"jsonrpc":"2.0","id":5,"method":"socket.close","params":{"id":9,"reset":true}}"#, true),
        (#"{"jsonrpc":"2.0","id":6,"method":"server.listen","params":{"port":0,"host":"::1","backlog":8}}"#, true),
        (#"{"jsonrpc":"2.0","id":7,"method":"history.query","params":{"label":"a","limit":10,"role":"server"}}"#, true),
        (#"{"jsonrpc":"2.0","id":8,"method":"socket.list","params":{"state":"open"}}"#, true),
        // Left to the full decoder, which explains each.
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.connect","params":{"port":70000}}"#, false),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.connect","params":{"port":"80"}}"#, false),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.connect","params":{"port":80,"bogus":1}}"#, false),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.get","params":{"id":1.5}}"#, false),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.get","params":{"id":null}}"#, false),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.get","params":{}}"#, false),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.get","params":{"id":1,"id":2}}"#, false),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.write","params":{"id":1,"data":"a\nb"}}"#, false),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.write","params":{"id":1,"data":"é"}}"#, false),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.write","params":{"id":1,"data":"x","encoding":"rot13"}}"#, false),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.list","params":{"label":{"a":1}}}"#, false),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.list","params":{"label":["a"]}}"#, false),
        (#"{"jsonrpc":"2.0","id":9,"method":"no.such","params":{"id":1}}"#, false),
        (#"{"jsonrpc":"2.0","id":9,"method":"rpc.x","params":{"id":1}}"#, false),
    ] as [(String, Bool)])
    func flatParamsAreReadAsTheFullDecoderReadsThem(line: String, takenHere: Bool) throws {
        let data = Data(line.utf8)
        guard case .single(let full) = IncomingFrame.decodeFully(data, decoder: JSONDecoder()) else {
            Issue.record("not a single call")
            return
        }
        guard let simple = SimpleRequest.decode(data) else {
            #expect(!takenHere, "the byte-level path refused \(line)")
            return
        }
        #expect(takenHere, "the byte-level path took \(line)")
        #expect(simple.reply == full.reply)
        #expect(simple.methodName == full.methodName)
        guard case .success(let fast) = simple.content, case .success(let slow) = full.content else {
            Issue.record("the byte-level path accepted what the full decoder refuses: \(full.content)")
            return
        }
        #expect(fast.name == slow.name)
        let encoder = JSONCoding.encoder()
        #expect(try encoder.encode(fast.params) == encoder.encode(slow.params))
    }
}
