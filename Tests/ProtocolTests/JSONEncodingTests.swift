import Foundation
import NetdProtocol
import Testing

/// ``JSONCoding``, the one encoder of netd and its clients, against the exact text it must write.
@Suite struct JSONEncodingTests {
    private func json<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try JSONCoding.encode(value), as: UTF8.self)
    }

    @Test(arguments: [
        ("", #""""#),
        ("/tmp/a b/netd.sock", #""/tmp/a b/netd.sock""#),
        ("quote \" backslash \\ slash /", #""quote \" backslash \\ slash /""#),
        ("tab\tnewline\ncr\rbell\u{07}", #""tab\tnewline\ncr\rbell\u0007""#),
        ("\u{08}\u{0C}\u{00}\u{1F}\u{7F}", "\"\\b\\f\\u0000\\u001f\u{7F}\""),
        ("héllo 日本語 🧪 \u{2028}", "\"héllo 日本語 🧪 \u{2028}\""),
    ])
    func stringsAreEscapedOnlyWhereJSONRequires(_ text: String, _ expected: String) throws {
        #expect(try json(text) == expected)
        #expect(try JSONDecoder().decode(String.self, from: Data(expected.utf8)) == text)
    }

    @Test func integersAtTheirLimits() throws {
        #expect(try json([0, 1, 9, 10, -1, -9, -10, 65535, Int.max, Int.min]) == "[0,1,9,10,-1,-9,-10,65535,9223372036854775807,-9223372036854775808]")
        #expect(try json([UInt64.max]) == "[18446744073709551615]")
        #expect(try json(Owner(uid: .max, pid: .min)) == #"{"pid":-2147483648,"uid":4294967295}"#)
    }

    @Test func doublesAsFoundationWritesThem() throws {
        #expect(try json([1.0, 1.5, 0.1, 1e21, 1e-7, -0.0, 2.5e-5]) == "[1,1.5,0.1,1e+21,1e-07,-0,2.5e-05]")
        #expect(throws: EncodingError.self) { try JSONCoding.encode([Double.nan]) }
        #expect(throws: EncodingError.self) { try JSONCoding.encode(["x": Double.infinity]) }
    }

    /// Keys declared out of order, nested objects among them, and a dictionary.
    private struct Unsorted: Encodable {
        var zeta = 1
        var alpha: [String: Int] = ["b": 2, "a": 1, "B": 0, "_": 3]
        var mid: Owner? = Owner(uid: 1, pid: 2)
        var beta: String? = nil
        var Capital = [Endpoint(port: 1), Endpoint()]
    }

    @Test func everyObjectComesOutWithItsKeysInByteOrder() throws {
        #expect(try json(Unsorted()) == #"{"Capital":[{"port":1},{}],"alpha":{"B":0,"_":3,"a":1,"b":2},"mid":{"pid":2,"uid":1},"zeta":1}"#)
        let value = JSONValue.object(["z": .array([.object(["y": .null, "x": .bool(true)])]), "a": .double(2.5)])
        #expect(try json(value) == #"{"a":2.5,"z":[{"x":true,"y":null}]}"#)
    }

    /// An object put in order after it is written: its entries are found again in the text, so
    /// values holding commas, quotes, escapes, brackets and braces must not cut an entry short.
    @Test func unsortedEntriesWithTrickyValuesKeepTheirValues() throws {
        let value = JSONValue.object([
            "k": .string(#"a,"b"}\,{"#), "c": .array([.string("],["), .object(["q": .string("}"), "p": .integer(-2)])]),
            "x\"y": .string("\n,\u{1}"), "a": .object([:]), "b": .array([]), "e": .string(""),
        ])
        #expect(try json(value) == #"{"a":{},"b":[],"c":["],[",{"p":-2,"q":"}"}],"e":"","k":"a,\"b\"}\\,{","x\"y":"\n,\u0001"}"#)
        // Every integer width, through the concrete paths.
        let integers: [String: Int64] = ["min": .min, "max": .max, "zero": 0, "nine": 9, "ten": -10]
        #expect(try json(integers) == #"{"max":9223372036854775807,"min":-9223372036854775808,"nine":9,"ten":-10,"zero":0}"#)
        #expect(try json([UInt64.max, 0]) == "[18446744073709551615,0]")
        #expect(try json([Int8.min, Int8.max]) == "[-128,127]")
    }

    /// A constant answer encoded once is written as the value itself would be, inside others.
    @Test func encodedOnceIsWrittenAsTheValue() throws {
        let ping = PingMethod.Result()
        let once = try JSONCoding.EncodedOnce(ping)
        #expect(try json(once) == json(ping))
        let response = ResponseMessage(id: .number(3), outcome: .result(once))
        #expect(try response.line() == ResponseMessage(id: .number(3), outcome: .result(ping)).line())
        #expect(try json(["b": once, "a": once]) == "{\"a\":\(json(ping)),\"b\":\(json(ping))}")
    }

    /// A socket whose never-changing members are encoded once writes the same text as one encoded
    /// member by member, whatever its values (nulls, Unix paths, errors, escapes), alone or inside
    /// other values; changing one of those members drops what was encoded, never shows it stale.
    @Test func aSocketWithItsIdentityEncodedOnceWritesTheSameText() throws {
        let tcp = SocketInfo(
            id: 9, role: .client, kind: .tcp, state: .open, local: .tcp("127.0.0.1", 40000), remote: .tcp("::1", 80),
            host: "localhost", server: nil, label: #"a "quoted", {odd} label\"#, owner: Owner(uid: 1000, pid: 42),
            bytesRead: 5, bytesWritten: 6, buffered: 7, openedAt: "2026-12-07T10:00:00.000Z", closedAt: nil, error: nil)
        let unix = SocketInfo(
            id: 10, role: .accepted, kind: .unix, state: .closed, local: .unix("/tmp/a.sock"), remote: nil, host: nil,
            server: 3, label: nil, owner: Owner(uid: 0, pid: 1), bytesRead: 0, bytesWritten: 0, buffered: 0,
            openedAt: "2026-12-07T10:00:01.000Z", closedAt: "2026-12-07T10:00:02.000Z",
            error: SocketFailure(code: "ECONNRESET", message: "read ECONNRESET"))
        for socket in [tcp, unix] {
            let once = try socket.withIdentityEncoded()
            #expect(once.identity != nil)
            #expect(try json(once) == json(socket))
            let live = once.with(state: .readOnly, bytesRead: 100, bytesWritten: 200, buffered: 3, closedAt: nil, error: nil)
            #expect(live.identity != nil)
            #expect(try json(live) == json(socket.with(state: .readOnly, bytesRead: 100, bytesWritten: 200, buffered: 3, closedAt: nil, error: nil)))
            #expect(try json(SocketListMethod.Result(sockets: [once, live, socket])) == json(SocketListMethod.Result(sockets: [socket, live, socket])))
            #expect(try ResponseMessage(id: .number(1), outcome: .result(once)).line() == ResponseMessage(id: .number(1), outcome: .result(socket)).line())
            #expect(once == socket && once.hashValue == socket.hashValue)
            var relabelled = once
            relabelled.label = "new"
            #expect(relabelled.identity == nil)
            #expect(try json(relabelled).contains(#""label":"new""#))
        }
    }

    /// The container calls the synthesized code never makes: nested containers, super encoders,
    /// a second request for the same container, a value that encodes nothing.
    private struct Handwritten: Encodable {
        enum Key: String, CodingKey { case outer, list, again, parent }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            var outer = container.nestedContainer(keyedBy: Key.self, forKey: .outer)
            try outer.encode(1, forKey: .list)
            var list = container.nestedUnkeyedContainer(forKey: .list)
            try list.encode("a")
            var inner = list.nestedContainer(keyedBy: Key.self)
            try inner.encodeNil(forKey: .again)
            try list.encode(true)
            var same = encoder.container(keyedBy: Key.self)
            try same.encode(2, forKey: .again)
            try Empty().encode(to: container.superEncoder(forKey: .parent))
        }
    }

    private struct Empty: Encodable {
        func encode(to encoder: any Encoder) throws {}
    }

    @Test func containersNestedByHand() throws {
        #expect(try json(Handwritten()) == #"{"again":2,"list":["a",{"again":null},true],"outer":{"list":1},"parent":{}}"#)
        #expect(try json(Empty()) == "{}")
        #expect(try json([Empty(), Empty()]) == "[{},{}]")
        #expect(try json([[Int]]()) == "[]")
        #expect(try json([[Int](), [1]]) == "[[],[1]]")
    }

    @Test func aSocketAndItsRoundTrip() throws {
        let socket = SocketInfo(
            id: 9_007_199_254_740_993, role: .accepted, kind: .tcp, state: .closed, local: .tcp("::1", 8080),
            remote: .tcp("127.0.0.1", 54321), host: nil, server: 7, label: "web \"front\"", owner: Owner(uid: 0, pid: 1),
            bytesRead: 1 << 40, bytesWritten: 12, buffered: 65536, openedAt: "2026-11-25T10:00:00.123Z",
            closedAt: "2026-11-25T10:00:01.000Z", error: SocketFailure(code: "ECONNRESET", message: "read ECONNRESET"))
        let text = try json(socket)
        #expect(text == #"{"buffered":65536,"bytesRead":1099511627776,"bytesWritten":12,"closedAt":"2026-11-25T10:00:01.000Z","error":{"code":"ECONNRESET","message":"read ECONNRESET"},"host":null,"id":9007199254740993,"kind":"tcp","label":"web \"front\"","local":{"address":"::1","family":"IPv6","port":8080},"openedAt":"2026-11-25T10:00:00.123Z","owner":{"pid":1,"uid":0},"remote":{"address":"127.0.0.1","family":"IPv4","port":54321},"role":"accepted","server":7,"state":"closed"}"#)
        #expect(try JSONDecoder().decode(SocketInfo.self, from: Data(text.utf8)) == socket)
        let read = SocketReadMethod.Result(data: "AAEC", encoding: .base64, bytes: 3, eof: true)
        #expect(try json(read) == #"{"bytes":3,"data":"AAEC","encoding":"base64","eof":true}"#)
    }

    @Test func prettyForPeople() throws {
        let text = String(decoding: try JSONCoding.encodePretty(JSONValue.object([
            "b": .array([.integer(1), .object([:])]), "a": .string("x: {y}, [z]"), "c": .array([]),
        ])), as: UTF8.self)
        #expect(text == """
            {
              "a": "x: {y}, [z]",
              "b": [
                1,
                {}
              ],
              "c": []
            }
            """)
    }
}
