import Foundation
import NetdProtocol
import Testing

/// netd writes its commonest results with ``JSONWriter``; clients and golden tests know the
/// encoder's output. Both must be the same bytes, for every value.
@Suite struct JSONWriterTests {
    private func expectSame<T: JSONWritable & Encodable>(_ value: T, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let encoded = String(decoding: try JSONCoding.encoder().encode(value), as: UTF8.self)
        let written = String(decoding: value.jsonBytes, as: UTF8.self)
        #expect(written == encoded, sourceLocation: sourceLocation)
    }

    /// Every ASCII character, escapes, slashes, non-ASCII and characters outside the BMP.
    static let awkwardStrings: [String] = [
        "", "plain", "/tmp/a b/netd.sock", "quote \" backslash \\ slash /", "tab\tnewline\ncr\rbell\u{07}",
        "\u{08}\u{0C}\u{00}\u{1F}\u{7F}", "héllo wörld", "日本語", "emoji 🧪 and \u{2028}\u{2029}",
        String(decoding: (0..<128).map { UInt8($0) }, as: UTF8.self),
    ]

    @Test(arguments: awkwardStrings) func stringsAreEscapedAsTheEncoderDoes(_ text: String) throws {
        try expectSame(SocketFailure(code: text, message: text))
        try expectSame(SocketReadMethod.Result(data: text, encoding: .utf8, bytes: text.utf8.count, eof: false))
    }

    @Test func integersAtTheirLimits() throws {
        for value in [0, 1, 9, 10, -1, -9, -10, 65535, Int.max, Int.min] {
            try expectSame(SocketWriteMethod.Result(bytes: value))
        }
        try expectSame(Owner(uid: .max, pid: .min))
        try expectSame(Owner(uid: 0, pid: 0))
    }

    static let sockets: [SocketInfo] = [
        SocketInfo(
            id: 1, role: .client, kind: .tcp, state: .opening, local: nil, remote: Endpoint(port: 80), host: "localhost",
            server: nil, label: nil, owner: Owner(uid: 1000, pid: 4242), bytesRead: 0, bytesWritten: 0, buffered: 0,
            openedAt: "2026-11-25T10:00:00.123Z", closedAt: nil, error: nil),
        SocketInfo(
            id: 9_007_199_254_740_993, role: .accepted, kind: .tcp, state: .closed, local: .tcp("::1", 8080),
            remote: .tcp("127.0.0.1", 54321), host: nil, server: 7, label: "web \"front\"", owner: Owner(uid: 0, pid: 1),
            bytesRead: 1 << 40, bytesWritten: 12, buffered: 65536, openedAt: "2026-11-25T10:00:00.123Z",
            closedAt: "2026-11-25T10:00:01.000Z", error: SocketFailure(code: "ECONNRESET", message: "read ECONNRESET")),
        SocketInfo(
            id: 3, role: .client, kind: .unix, state: .readOnly, local: .unix(""), remote: .unix("/run/redis/redis.sock"),
            host: nil, server: nil, label: "日本", owner: Owner(uid: 65534, pid: 99), bytesRead: 5, bytesWritten: 6,
            buffered: 7, openedAt: "2026-11-25T10:00:00.000Z", closedAt: nil, error: nil),
    ]

    @Test func socketsServersAndTheResultsThatHoldThem() throws {
        for socket in Self.sockets {
            try expectSame(socket)
            try expectSame(ServerAcceptMethod.Result(socket: socket))
        }
        try expectSame(ServerAcceptMethod.Result(socket: nil))
        try expectSame(SocketListMethod.Result(sockets: Self.sockets))
        try expectSame(SocketListMethod.Result(sockets: []))
        try expectSame(Endpoint(address: "127.0.0.1", port: 1, family: "IPv4", path: "/p"))
        try expectSame(Endpoint())
        for encoding in DataEncoding.allCases {
            try expectSame(SocketReadMethod.Result(data: "AAEC", encoding: encoding, bytes: 3, eof: true))
        }
        try expectSame(PingMethod.Result())
        try expectSame(PingMethod.Result(pong: false, version: "9.9.9"))
        let servers = [
            ServerInfo(
                id: 2, kind: .tcp, state: .listening, local: .tcp("::", 0), backlog: 511, connections: 3, accepted: 10,
                pending: 1, maxConnections: nil, label: nil, owner: Owner(uid: 1000, pid: 2), openedAt: "2026-11-25T10:00:00.123Z",
                closedAt: nil, error: nil),
            ServerInfo(
                id: 4, kind: .unix, state: .closed, local: .unix("/tmp/s.sock"), backlog: 1, connections: 0, accepted: 0,
                pending: 0, maxConnections: 5, label: "x/y", owner: Owner(uid: 0, pid: 0), openedAt: "2026-11-25T10:00:00.123Z",
                closedAt: "2026-11-25T10:00:02.000Z", error: SocketFailure(code: "EADDRINUSE", message: "listen EADDRINUSE")),
        ]
        for server in servers { try expectSame(server) }
    }

    @Test func responsesWithWrittenResultsMatchEncodedOnes() throws {
        let socket = Self.sockets[1]
        for id in [RequestID.number(7), .string("a/\"b\""), .null, .fractional(1.5)] {
            let written = try ResponseMessage(id: id, outcome: .json(socket.jsonBytes)).line(encoder: JSONCoding.encoder())
            let encoded = try ResponseMessage(id: id, outcome: .result(socket)).line(encoder: JSONCoding.encoder())
            #expect(String(decoding: written, as: UTF8.self) == String(decoding: encoded, as: UTF8.self))
            // And through an encoder (a batch element written by Codable) it is the same value.
            let reencoded = try JSONCoding.encoder().encode(ResponseMessage(id: id, outcome: .json(socket.jsonBytes)))
            let decoded = try JSONDecoder().decode(TypedResponse<SocketInfo>.self, from: reencoded)
            #expect(decoded.result == socket)
        }
    }
}
