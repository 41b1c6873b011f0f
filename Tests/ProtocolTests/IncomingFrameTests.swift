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

/// The one request reader: each line parsed once, every request checked, params decoded by
/// the decoder that explains what is wrong.
@Suite struct RequestReaderTests {
    private func read(_ line: String) -> IncomingCall? {
        guard case .single(let call) = IncomingFrame.decode(Array(line.utf8)) else { return nil }
        return call
    }

    @Test(arguments: [
        (#"{"jsonrpc":"2.0","id":1,"method":"netd.ping"}"#, RequestID.number(1), "netd.ping"),
        (#" { "method" : "netd.status" , "id" : -42 , "jsonrpc" : "2.0" } "#, .number(-42), "netd.status"),
        (#"{"jsonrpc":"2.0","id":"a b","method":"netd.methods","params":[]}"#, .string("a b"), "netd.methods"),
        (#"{"jsonrpc":"2.0","id":null,"method":"netd.ping"}"#, .null, "netd.ping"),
        (#"{"jsonrpc":"2.0","id":"\u0041\u00e9\ud83d\ude00","method":"netd.ping"}"#, .string("Aé😀"), "netd.ping"),
        (#"{"jsonrpc":"2.0","id":1.5,"method":"netd.ping"}"#, .fractional(1.5), "netd.ping"),
        ("{\"jsonrpc\":\"2.0\",\n\"id\":0,\t\"method\":\"netd.ping\"}", .number(0), "netd.ping"),
    ] as [(String, RequestID, String)])
    func readsRequestsWithTheirIDs(line: String, id: RequestID, method: String) throws {
        let call = try #require(read(line))
        #expect(call.reply == .respond(id))
        guard case .success(let valid) = call.content else { Issue.record("not valid: \(call.content)"); return }
        #expect(valid.name == method)
    }

    /// Params as every method's decoder reads them, compared by their encoding.
    @Test(arguments: [
        (#"{"jsonrpc":"2.0","id":1,"method":"socket.get","params":{"id":3}}"#, #"{"id":3}"#),
        (#"{"jsonrpc":"2.0","id":2,"method":"socket.write","params":{"id":7,"data":"a\nb\u00e9","encoding":"utf8"}}"#, #"{"data":"a\nbé","encoding":"utf8","id":7}"#),
        (#"{"jsonrpc":"2.0","id":2,"method":"socket.write","params":{"data":"hi","id":7,"encoding":null}}"#, #"{"data":"hi","id":7}"#),
        (#"{"jsonrpc":"2.0","id":3,"method":"socket.connect","params":{"host":"127.0.0.1","port":6379,"noDelay":true,"label":"x"}}"#, #"{"host":"127.0.0.1","label":"x","noDelay":true,"port":6379}"#),
        (#"{"jsonrpc":"2.0","id":7,"method":"events.subscribe","params":{"types":["data","end"],"ids":[1,2]}}"#, #"{"ids":[1,2],"types":["data","end"]}"#),
        (#"{"jsonrpc":"2.0","id":8,"method":"socket.list"}"#, #"{}"#),
    ] as [(String, String)])
    func decodesParams(line: String, expected: String) throws {
        let call = try #require(read(line))
        guard case .success(let valid) = call.content else { Issue.record("not valid: \(call.content)"); return }
        #expect(String(decoding: try JSONCoding.encode(valid.params), as: UTF8.self) == expected)
    }

    /// What is wrong is answered with its code and said in words.
    @Test(arguments: [
        (#"{"jsonrpc":"2.0","id":1,"id":2,"method":"netd.ping"}"#, ErrorCode.invalidRequest, "`id` appears more than once"),
        (#"{"method":"server.listen","jsonrpc":"2.0","id":4,"method":"netd.ping"}"#, .invalidRequest, "`method` appears more than once"),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.get","params":{"id":1,"id":2}}"#, .invalidParams, "`id` is given more than once"),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.list","params":{"label":"a","label":"b"}}"#, .invalidParams, "`label` is given more than once"),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.connect","params":{"port":70000}}"#, .invalidParams, "65535"),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.connect","params":{"port":"80"}}"#, .invalidParams, "`port` must be an integer"),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.connect","params":{"port":80,"bogus":1}}"#, .invalidParams, "unknown param `bogus`"),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.get","params":{"id":1.5}}"#, .invalidParams, "`id`"),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.get","params":{"id":null}}"#, .invalidParams, "`id` must not be null"),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.get","params":{}}"#, .invalidParams, "missing required param `id`"),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.write","params":{"id":1,"data":"x","encoding":"rot13"}}"#, .invalidParams, "`encoding`"),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.list","params":{"label":["a"]}}"#, .invalidParams, "`label` must be a string"),
        (#"{"jsonrpc":"2.0","id":9,"method":"events.subscribe","params":{"types":["a",3]}}"#, .invalidParams, "`types[1]` must be a string"),
        (#"{"jsonrpc":"2.0","id":9,"method":"socket.get","params":[1]}"#, .invalidParams, "by name"),
        (#"{"jsonrpc":"2.0","id":9,"method":"no.such","params":{"id":1}}"#, .methodNotFound, "no.such"),
        (#"{"jsonrpc":"2.0","id":9,"method":"rpc.x"}"#, .methodNotFound, "rpc.x"),
        (#"{"jsonrpc":"1.0","id":1,"method":"netd.ping"}"#, .invalidRequest, "jsonrpc"),
        (#"{"jsonrpc":"2.0","id":1,"method":"netd.ping","params":3}"#, .invalidRequest, "params"),
        (#"{"jsonrpc":"2.0","id":{},"method":"netd.ping"}"#, .invalidRequest, "id must be"),
        (#"{"jsonrpc":"2.0","id":1,"method":"netd.ping",}"#, .parseError, "member name"),
        (#"{"jsonrpc":"2.0","id":01,"method":"netd.ping"}"#, .parseError, "leading zeros"),
        (#"{"jsonrpc":"2.0","id":1,"method":"netd.ping"} x"#, .parseError, "after the JSON value"),
        (#"{"jsonrpc":"2.0","id":"\ud800","method":"netd.ping"}"#, .parseError, "surrogate"),
        ("{\"jsonrpc\":\"2.0\",\"id\":\"a\u{01}b\",\"method\":\"netd.ping\"}", .parseError, "control character"),
        (#"{"jsonrpc":"2.0","id":1e999,"method":"netd.ping"}"#, .parseError, "out of range"),
    ] as [(String, ErrorCode, String)])
    func explainsWhatIsWrong(line: String, code: ErrorCode, words: String) throws {
        let call = try #require(read(line))
        guard case .failure(let error) = call.content else { Issue.record("accepted \(line)"); return }
        #expect(error.code == code, "\(line): \(error.message)")
        #expect(error.message.contains(words), "\(line): \(error.message)")
    }

    @Test func bytesThatAreNotUTF8AreAParseError() {
        for bad: [UInt8] in [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82]] {
            let bytes = Array(#"{"jsonrpc":"2.0","id":"x"#.utf8) + bad + Array(#"","method":"netd.ping"}"#.utf8)
            guard case .single(let call) = IncomingFrame.decode(bytes), case .failure(let error) = call.content else {
                Issue.record("invalid UTF-8 \(bad) was accepted")
                continue
            }
            #expect(error.code == .parseError)
            #expect(error.message.contains("UTF-8"))
        }
    }

    @Test func nestingIsBoundedNotRecursedInto() {
        let deep = String(repeating: "[", count: 100_000)
        guard case .single(let call) = IncomingFrame.decode(Array(deep.utf8)), case .failure(let error) = call.content else {
            Issue.record("accepted")
            return
        }
        #expect(error.code == .parseError)
        #expect(error.message.contains("deep"))
    }

    @Test func aNotificationHasNoReply() throws {
        #expect(try #require(read(#"{"jsonrpc":"2.0","method":"netd.ping"}"#)).reply == .none)
    }
}
