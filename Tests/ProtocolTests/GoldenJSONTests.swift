import Foundation
import NetdProtocol
import Testing

/// Every message type against the exact JSON it must produce.
@Suite struct GoldenJSONTests {
    private func line(_ response: ResponseMessage) throws -> String {
        String(decoding: try response.line(), as: UTF8.self)
    }

    private func json<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try JSONCoding.encode(value), as: UTF8.self)
    }

    @Test func resultResponse() throws {
        let response = ResponseMessage(id: .number(1), outcome: .result(PingMethod.Result()))
        #expect(try line(response) == #"{"jsonrpc":"2.0","id":1,"result":{"pong":true,"version":"\#(NetdVersion.current)"}}"# + "\n")
    }

    @Test func errorResponseWithData() throws {
        let error = ResponseError.netd(.systemError, "ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:9")
        let response = ResponseMessage(id: .string("a"), outcome: .error(error))
        #expect(try line(response) == #"{"jsonrpc":"2.0","id":"a","error":{"code":-32004,"data":{"code":"ECONNREFUSED"},"message":"connect ECONNREFUSED 127.0.0.1:9"}}"# + "\n")
    }

    @Test func errorResponseWithNullID() throws {
        let response = ResponseMessage(id: .null, outcome: .error(.parseError("bad")))
        #expect(try line(response) == #"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: bad"}}"# + "\n")
    }

    @Test func batchResponse() throws {
        let batch = [
            ResponseMessage(id: .number(1), outcome: .result(PingMethod.Result())),
            ResponseMessage(id: .null, outcome: .error(.invalidRequest("x"))),
        ]
        let text = String(decoding: try ResponseMessage.line(batch: batch), as: UTF8.self)
        #expect(text == #"[{"jsonrpc":"2.0","id":1,"result":{"pong":true,"version":"\#(NetdVersion.current)"}},{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: x"}}]"# + "\n")
    }

    @Test func request() throws {
        #expect(try json(RequestMessage(id: .number(7), method: "netd.ping", params: NoParams())) == #"{"id":7,"jsonrpc":"2.0","method":"netd.ping","params":{}}"#)
        #expect(try json(RequestMessage<NoParams>(id: .string("x"), method: "netd.ping", params: nil)) == #"{"id":"x","jsonrpc":"2.0","method":"netd.ping"}"#)
    }

    @Test func notification() throws {
        let event = NotificationMessage(method: "event", params: JSONValue.object(["seq": .integer(1), "type": .string("connect")]))
        #expect(try json(event) == #"{"jsonrpc":"2.0","method":"event","params":{"seq":1,"type":"connect"}}"#)
        #expect(try json(RequestMessage<JSONValue>(id: nil, method: "netd.ping", params: nil)) == #"{"jsonrpc":"2.0","method":"netd.ping"}"#)
    }

    @Test(arguments: [
        (RequestID.number(-5), "-5"),
        (.string("abc"), #""abc""#),
        (.null, "null"),
        (.fractional(1.5), "1.5"),
    ])
    func requestIDs(id: RequestID, expected: String) throws {
        #expect(try json(id) == expected)
        #expect(try JSONDecoder().decode(RequestID.self, from: Data(expected.utf8)) == id)
    }

    @Test func statusResult() throws {
        let status = StatusMethod.Result(
            version: "0.1.0", pid: 42, uptimeMs: 1500, socket: "/tmp/netd-0/netd.sock",
            database: "/root/.local/state/netd/history.sqlite3", sockets: 2, servers: 1, clients: 3,
            caller: .init(uid: 1000, pid: 77, admin: false),
            history: .init(healthy: true, queued: 0, failures: 0, lastError: nil, lastErrorAt: nil, dropped: 0, lastCommitAt: "2026-11-25T10:00:00.000Z"),
            limits: ["max-clients": 1024, "max-sockets-per-user": 16384],
            users: [.init(uid: 1000, clients: 3, sockets: 2, servers: 1)],
            connection: .init(subscriptions: 1))
        #expect(try json(status) == #"{"caller":{"admin":false,"pid":77,"uid":1000},"clients":3,"connection":{"subscriptions":1},"database":"/root/.local/state/netd/history.sqlite3","history":{"dropped":0,"failures":0,"healthy":true,"lastCommitAt":"2026-11-25T10:00:00.000Z","lastError":null,"lastErrorAt":null,"queued":0},"limits":{"max-clients":1024,"max-sockets-per-user":16384},"pid":42,"servers":1,"socket":"/tmp/netd-0/netd.sock","sockets":2,"uptimeMs":1500,"users":[{"clients":3,"servers":1,"sockets":2,"uid":1000}],"version":"0.1.0"}"#)
    }

    @Test func historyRecordsAreSocketsOrServers() throws {
        let server = HistoryRecord.server(ServerInfo(
            id: 3, kind: .unix, state: .closed, local: .unix("/tmp/s.sock"), backlog: 511, connections: 0, accepted: 2,
            pending: 0, maxConnections: nil, label: nil, owner: Owner(uid: 0, pid: 9), openedAt: "2026-11-25T10:00:00.000Z",
            closedAt: "2026-11-25T10:00:01.000Z", error: nil))
        let text = try json(server)
        #expect(text == #"{"accepted":2,"backlog":511,"closedAt":"2026-11-25T10:00:01.000Z","connections":0,"error":null,"id":3,"kind":"unix","label":null,"local":{"path":"/tmp/s.sock"},"maxConnections":null,"openedAt":"2026-11-25T10:00:00.000Z","owner":{"pid":9,"uid":0},"pending":0,"role":"server","state":"closed"}"#)
        #expect(try JSONDecoder().decode(HistoryRecord.self, from: Data(text.utf8)) == server)
        let result = HistoryQueryMethod.Result(items: [], next: nil)
        #expect(try json(result) == #"{"items":[],"next":null}"#)
    }

    @Test func statsGroupsAreFlat() throws {
        let group = StatsGroup(
            key: .string("localhost:6379"),
            summary: StatsSummary(
                connections: 3, open: 1, failed: 1, errors: ["ECONNREFUSED": 1], bytesRead: 10, bytesWritten: 20,
                durationMs: .init(sorted: [5, 7])))
        let text = try json(group)
        #expect(text == #"{"bytesRead":10,"bytesWritten":20,"connections":3,"durationMs":{"max":7,"p50":5,"p90":7,"p99":7},"errors":{"ECONNREFUSED":1},"failed":1,"key":"localhost:6379","open":1}"#)
        #expect(try JSONDecoder().decode(StatsGroup.self, from: Data(text.utf8)) == group)
        #expect(try json(StatsSummary.Percentiles(sorted: [])) == #"{"max":null,"p50":null,"p90":null,"p99":null}"#)
    }

    @Test func methodsResult() throws {
        let result = MethodsMethod.Result(methods: [
            MethodDescription(name: "socket.get", summary: "Get one socket.", params: [ParamField("id", "integer", required: true, "The socket's id.")])
        ])
        #expect(try json(result) == #"{"methods":[{"name":"socket.get","params":[{"name":"id","required":true,"summary":"The socket's id.","type":"integer"}],"summary":"Get one socket."}]}"#)
    }

    @Test func errorCodes() {
        #expect([ErrorCode.parseError, .invalidRequest, .methodNotFound, .invalidParams, .internalError].map(\.rawValue) == [-32700, -32600, -32601, -32602, -32603])
        #expect([ErrorCode.notFound, .permissionDenied, .invalidState, .systemError, .lookupFailed, .timedOut, .limitReached].map(\.rawValue) == Array((-32007...(-32001)).reversed()))
    }

    @Test func jsonValueRoundTrip() throws {
        let text = #"{"a":[1,2.5,"x",true,null,{"b":{}}],"c":-9223372036854775808}"#
        let value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(value["c"] == .integer(Int64.min))
        #expect(value["a"] == .array([.integer(1), .double(2.5), .string("x"), .bool(true), .null, .object(["b": .object([:])])]))
        #expect(try json(value) == text)
    }
}
