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
        #"{"jsonrpc":"2.0","id":1,"method":"socket.get","params":{"id":3}}"#,  // params: the full decoder's
        #"{"jsonrpc":"2.0","id":1,"method":"netd.ping","params":{}}"#,
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
}
