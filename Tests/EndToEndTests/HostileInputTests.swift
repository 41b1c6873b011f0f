import Foundation
import NetdProtocol
import NetdTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Hostile input against a netd process: every line gets its one clear error, and none crashes
/// netd, leaks a descriptor (counted in /proc/PID/fd before and after) or changes any state (the
/// sockets, servers, faults and history it holds are the same after as before).
@Suite(.timeLimit(.minutes(2)))
struct HostileInputTests {
    /// One line sent as it is, and the error it must get (nil: it must succeed, with the id asked for).
    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let bytes: [UInt8]
        let code: Int64?
        /// The id the answer must carry.
        let id: JSONValue

        init(_ name: String, _ bytes: [UInt8], code: Int64?, id: JSONValue = .null) {
            self.name = name
            self.bytes = bytes
            self.code = code
            self.id = id
        }

        init(_ name: String, _ text: String, code: Int64?, id: JSONValue = .null) {
            self.init(name, Array(text.utf8), code: code, id: id)
        }

        /// A request whose params are `params` (JSON text), answered with `code` and its id.
        static func request(_ name: String, _ method: String, _ params: String, code: Int64?) -> Case {
            let id = name.replacingOccurrences(of: "\"", with: "'")
            return Case(name, #"{"jsonrpc":"2.0","id":"\#(id)","method":"\#(method)","params":\#(params)}"#, code: code, id: .string(id))
        }

        var description: String { name }
    }

    private static func request(withString bytes: [UInt8]) -> [UInt8] {
        Array(#"{"jsonrpc":"2.0","id":1,"method":"socket.connect","params":{"port":1,"label":""#.utf8) + bytes + Array(#""}}"#.utf8)
    }

    /// Malformed bytes and JSON: each a parse error or an invalid request, with id null.
    static let framing: [Case] = [
        Case("invalid UTF-8", request(withString: [0xC3, 0x28]), code: -32700),
        Case("a stray continuation byte", request(withString: [0x80]), code: -32700),
        Case("overlong '/' in two bytes", request(withString: [0xC0, 0xAF]), code: -32700),
        Case("overlong '/' in three bytes", request(withString: [0xE0, 0x80, 0xAF]), code: -32700),
        Case("overlong '/' in four bytes", request(withString: [0xF0, 0x80, 0x80, 0xAF]), code: -32700),
        Case("overlong NUL", request(withString: [0xC0, 0x80]), code: -32700),
        Case("a surrogate in UTF-8", request(withString: [0xED, 0xA0, 0x80]), code: -32700),
        Case("past U+10FFFF", request(withString: [0xF4, 0x90, 0x80, 0x80]), code: -32700),
        Case("a lone high surrogate", request(withString: Array(#"\ud800"#.utf8)), code: -32700),
        Case("a lone low surrogate", request(withString: Array(#"\udc00"#.utf8)), code: -32700),
        Case("a high surrogate before a letter", request(withString: Array(#"\ud800\u0041"#.utf8)), code: -32700),
        Case("arrays 100,000 deep", String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000), code: -32700),
        Case("objects 100,000 deep", String(repeating: #"{"a":"#, count: 100_000) + "1" + String(repeating: "}", count: 100_000), code: -32700),
        Case(
            "params 100,000 deep",
            #"{"jsonrpc":"2.0","id":1,"method":"netd.ping","params":"# + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}",
            code: -32700),
        Case("an id of 10,000 digits", #"{"jsonrpc":"2.0","id":"# + String(repeating: "9", count: 10_000) + #","method":"netd.ping"}"#, code: -32700),
        Case("a port of 10,000 digits", #"{"jsonrpc":"2.0","id":1,"method":"socket.connect","params":{"port":"# + String(repeating: "7", count: 10_000) + "}}", code: -32700),
        Case("an exponent past a double", #"{"jsonrpc":"2.0","id":1e400,"method":"netd.ping"}"#, code: -32700),
        Case("a repeated id", #"{"jsonrpc":"2.0","id":1,"id":2,"method":"netd.ping"}"#, code: -32600),
        Case("a NUL byte outside strings", [0x7B, 0x00, 0x7D], code: -32700),
        Case("an id that is true", #"{"jsonrpc":"2.0","id":true,"method":"netd.ping"}"#, code: -32600),
        Case("an id that is an object", #"{"jsonrpc":"2.0","id":{"a":1},"method":"netd.ping"}"#, code: -32600),
        Case("an id that is an array", #"{"jsonrpc":"2.0","id":[1],"method":"netd.ping"}"#, code: -32600),
        Case("an empty batch", "[]", code: -32600),
        Case("params that are a string", #"{"jsonrpc":"2.0","id":1,"method":"netd.ping","params":"x"}"#, code: -32600, id: .integer(1)),
        Case("a method of 100,000 bytes", #"{"jsonrpc":"2.0","id":1,"method":""# + String(repeating: "m", count: 100_000) + #""}"#, code: -32601, id: .integer(1)),
    ]

    /// Ids of every type JSON-RPC allows come back exactly as they were sent.
    static let ids: [Case] = [
        Case("a string id", #"{"jsonrpc":"2.0","id":"a\u00e9\ud83d\ude00","method":"netd.ping"}"#, code: nil, id: .string("aé😀")),
        Case("an empty string id", #"{"jsonrpc":"2.0","id":"","method":"netd.ping"}"#, code: nil, id: .string("")),
        Case("the largest integer id", #"{"jsonrpc":"2.0","id":9223372036854775807,"method":"netd.ping"}"#, code: nil, id: .integer(.max)),
        Case("the smallest integer id", #"{"jsonrpc":"2.0","id":-9223372036854775808,"method":"netd.ping"}"#, code: nil, id: .integer(.min)),
        Case("a zero id", #"{"jsonrpc":"2.0","id":0,"method":"netd.ping"}"#, code: nil, id: .integer(0)),
        Case("a fractional id", #"{"jsonrpc":"2.0","id":-1.5,"method":"netd.ping"}"#, code: nil, id: .double(-1.5)),
        Case("a null id", #"{"jsonrpc":"2.0","id":null,"method":"netd.ping"}"#, code: nil, id: .null),
    ]

    /// Params out of range, or holding what netd cannot keep: -32602, and nothing opened.
    static func params(folder: String) -> [Case] {
        let path107 = folder + "/" + String(repeating: "p", count: 107 - folder.utf8.count - 1)
        let path108 = path107 + "q"
        return [
            .request("port 0 to connect", "socket.connect", #"{"port":0}"#, code: -32602),
            .request("port -1", "socket.connect", #"{"port":-1}"#, code: -32602),
            .request("port 65536", "socket.connect", #"{"port":65536}"#, code: -32602),
            .request("port 2^31", "socket.connect", #"{"port":2147483648}"#, code: -32602),
            .request("port 80.5", "socket.connect", #"{"port":80.5}"#, code: -32602),
            .request("localPort 65536", "socket.connect", #"{"port":1,"localPort":65536}"#, code: -32602),
            .request("listen port 65536", "server.listen", #"{"port":65536}"#, code: -32602),
            .request("listen port -1", "server.listen", #"{"port":-1}"#, code: -32602),
            .request("query port 70000", "history.query", #"{"port":70000}"#, code: -32602),
            .request("forward port 0", "server.listen", #"{"port":0,"forward":{"port":0}}"#, code: -32602),
            .request("a 108-byte path to listen", "server.listen", #"{"path":"\#(path108)"}"#, code: -32602),
            .request("a 108-byte path to connect", "socket.connect", #"{"path":"\#(path108)"}"#, code: -32602),
            .request("a 108-byte forward path", "server.listen", #"{"port":0,"forward":{"path":"\#(path108)"}}"#, code: -32602),
            .request("a NUL in a path", "server.listen", #"{"path":"\#(folder)/a\u0000b"}"#, code: -32602),
            .request("a NUL in a label", "server.listen", #"{"port":0,"label":"a\u0000b"}"#, code: -32602),
            .request("a NUL in a host", "socket.connect", #"{"port":1,"host":"localhost\u0000.evil"}"#, code: -32602),
            .request("a label of 1 MiB", "socket.connect", #"{"port":1,"label":"\#(String(repeating: "L", count: 1 << 20))"}"#, code: -32602),
            .request("a label one byte too long", "server.listen", #"{"port":0,"label":"\#(String(repeating: "L", count: 1025))"}"#, code: -32602),
            .request("a host of 256 bytes", "socket.connect", #"{"port":1,"host":"\#(String(repeating: "h", count: 256))"}"#, code: -32602),
            .request("an unknown param of 100,000 bytes", "netd.status", #"{"\#(String(repeating: "k", count: 100_000))":1}"#, code: -32602),
            .request("a repeated param", "socket.get", #"{"id":1,"id":2}"#, code: -32602),
            .request("a repeated param deep inside", "server.listen", #"{"port":0,"forward":{"port":1,"port":2}}"#, code: -32602),
            .request("params by position", "socket.get", "[1]", code: -32602),
            .request("an unknown id", "socket.get", #"{"id":9007199254740993}"#, code: -32001),
        ]
    }

    /// Every param of every method given each type it is not, with the other required params
    /// present: -32602 naming that param. (From `netd.methods`, so that a new method is covered.)
    private static func wrongTypes(_ raw: RawConnection) async throws -> [(Case, String)] {
        let methods = try #require(try await raw.exchange(#"{"jsonrpc":"2.0","id":0,"method":"netd.methods"}"#)["result"]?["methods"]?.arrayValue)
        func valid(_ type: String) -> String {
            if type.hasPrefix("integer") { return "999999" }
            if type == "number" { return "0.5" }
            if type.contains("ISO 8601") { return #""2000-01-01T00:00:00Z""# }
            if type.hasPrefix("string: ") { return #""\#(type.dropFirst(8).split(whereSeparator: { $0 == "," || $0 == " " }).first ?? "")""# }
            if type.hasPrefix("string") { return #""x""# }
            if type == "boolean" { return "false" }
            if type.hasPrefix("array") { return "[]" }
            return "{}"
        }
        func wrong(_ type: String) -> [String] {
            if type.hasPrefix("integer") { return [#""1""#, "true", "1.5", "[]", "{}"] }
            if type == "number" { return [#""1""#, "true", "[]", "{}"] }
            if type.hasPrefix("string") { return ["1", "true", "[]", "{}"] }
            if type == "boolean" { return [#""true""#, "1", "[]", "{}"] }
            if type == "array of strings" { return [#""x""#, "1", "{}", "[1]"] }
            if type == "array of integers" { return [#""x""#, "{}", #"["a"]"#, "[1.5]"] }
            return [#""x""#, "1", "[]"]
        }
        var cases: [(Case, String)] = []
        for method in methods {
            let name = try #require(method["name"]?.stringValue)
            let fields = method["params"]?.arrayValue ?? []
            let required = fields.filter { $0["required"] == .bool(true) }
            for field in fields {
                let fieldName = try #require(field["name"]?.stringValue)
                let type = try #require(field["type"]?.stringValue)
                for value in wrong(type) {
                    var members = required.compactMap { other -> String? in
                        guard let otherName = other["name"]?.stringValue, otherName != fieldName else { return nil }
                        return #""\#(otherName)":\#(valid(other["type"]?.stringValue ?? ""))"#
                    }
                    members.append(#""\#(fieldName)":\#(value)"#)
                    let label = "\(name) \(fieldName)=\(value)"
                    cases.append((.request(label, name, "{" + members.joined(separator: ",") + "}", code: -32602), fieldName))
                }
            }
        }
        return cases
    }

    /// What netd holds, as its clients see it.
    private static func state(_ raw: RawConnection) async throws -> [JSONValue?] {
        var seen: [JSONValue?] = []
        for (method, params) in [("socket.list", "{}"), ("server.list", "{}"), ("fault.list", "{}"), ("history.query", #"{"limit":10000}"#)] {
            seen.append(try await PartOneFixesTests.call(raw, method, params)["result"])
        }
        let status = try await PartOneFixesTests.call(raw, "netd.status")["result"]
        seen.append(status?["sockets"])
        seen.append(status?["servers"])
        seen.append(status?["users"])
        return seen
    }

    private static func descriptors(of pid: Int32) throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
    }

    /// Sends the case on `raw` and checks its one answer.
    private static func check(_ test: Case, on raw: RawConnection, naming field: String? = nil) async throws {
        try await raw.send(bytes: test.bytes + [UInt8(ascii: "\n")])
        let answer = try await raw.json()
        #expect(answer["id"] == test.id, "\(test): \(answer)")
        if let code = test.code {
            #expect(answer["error"]?["code"] == .integer(code), "\(test): \(answer)")
            let message = answer["error"]?["message"]?.stringValue ?? ""
            #expect(message.utf8.count < 1000, "\(test): an error message of \(message.utf8.count) bytes")
            if let field { #expect(message.contains("`\(field)"), "\(test): \(message)") }
        } else {
            #expect(answer["result"]?["pong"] == .bool(true), "\(test): \(answer)")
        }
    }

    @Test func hostileInputIsAnsweredAndChangesNothing() async throws {
        // Room for a label of a megabyte, so that the label's own check answers.
        try await withNetdProcess(["--max-message-bytes", "\(4 << 20)"]) { socket, netd in
            let folder = URL(fileURLWithPath: socket).deletingLastPathComponent().path
            try await withRawConnection(socket) { raw in
                // Something held, so that "nothing changed" covers live objects too.
                let server = try await PartOneFixesTests.call(raw, "server.listen", #"{"host":"127.0.0.1","port":0,"label":"held"}"#)
                let port = try #require(server["result"]?["local"]?["port"]?.integerValue)
                _ = try await PartOneFixesTests.call(raw, "socket.connect", #"{"host":"127.0.0.1","port":\#(port)}"#)
                // A path of exactly 107 bytes is the longest allowed: it listens, and it closes.
                let path107 = folder + "/" + String(repeating: "p", count: 107 - folder.utf8.count - 1)
                let longest = try await PartOneFixesTests.call(raw, "server.listen", #"{"path":"\#(path107)"}"#)
                #expect(longest["result"]?["local"]?["path"] == .string(path107), "\(longest)")
                let longestID = try #require(longest["result"]?["id"]?.integerValue)
                _ = try await PartOneFixesTests.call(raw, "server.close", #"{"id":\#(longestID)}"#)
                let labelled = try await PartOneFixesTests.call(raw, "socket.connect", #"{"host":"127.0.0.1","port":\#(port),"label":"\#(String(repeating: "L", count: 1024))"}"#)
                #expect(labelled["result"]?["label"]?.stringValue?.utf8.count == 1024, "a label of 1024 bytes is allowed")

                // Once history has caught up with all that, and the state stands still.
                var before = try await Self.state(raw)
                for _ in 0..<20 {
                    try await Task.sleep(for: .milliseconds(300))
                    let now = try await Self.state(raw)
                    if now == before { break }
                    before = now
                }
                let descriptorsBefore = try Self.descriptors(of: netd.pid)

                // Every case on one connection, which stays usable after each.
                for test in Self.framing + Self.ids + Self.params(folder: folder) {
                    try await Self.check(test, on: raw)
                }
                let typed = try await Self.wrongTypes(raw)
                #expect(typed.count > 400, "\(typed.count) wrong-type cases")
                for (test, field) in typed {
                    try await Self.check(test, on: raw, naming: field)
                }
                // And each malformed line on a connection of its own, closed at once after its answer.
                for test in Self.framing {
                    try await withRawConnection(socket) { fresh in try await Self.check(test, on: fresh) }
                }
                // A connection that vanishes half-way through a hostile line.
                for test in Self.framing.prefix(5) {
                    try await withRawConnection(socket) { vanishing in
                        try await vanishing.send(bytes: Array(test.bytes.prefix(test.bytes.count / 2)))
                    }
                }

                #expect(try await Self.state(raw) == before, "state changed")
                for path in [folder + "/a", path107 + "q"] { #expect(!FileManager.default.fileExists(atPath: path), "\(path)") }
                var descriptorsAfter = 0
                let settled = try await eventually(seconds: 5) {
                    descriptorsAfter = try Self.descriptors(of: netd.pid)
                    return descriptorsAfter == descriptorsBefore
                }
                #expect(settled, "netd held \(descriptorsBefore) descriptors before and \(descriptorsAfter) after")
                #expect(netd.isRunning)
            }
        }
    }
}
