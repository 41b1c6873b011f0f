import Foundation
import NetdProtocol
import Testing

/// Every example exchange of section 7 of the JSON-RPC 2.0 specification, adapted to netd's
/// methods and sent over netd's socket as raw lines.
@Suite(.timeLimit(.minutes(1)))
struct JSONRPCSpecTests {
    @Test func positionalParamsAreRefusedWithAHint() async throws {
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { connection in
                let response = try await connection.exchange(#"{"jsonrpc": "2.0", "method": "netd.status", "params": [42, 23], "id": 1}"#)
                #expect(response.id == .integer(1))
                #expect(response.errorCode == -32602)
                #expect(response["error"]?["message"]?.stringValue?.contains("by name") == true)
            }
        }
    }

    @Test func namedParams() async throws {
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { connection in
                let response = try await connection.exchange(#"{"jsonrpc": "2.0", "method": "netd.status", "params": {}, "id": 3}"#)
                #expect(response.id == .integer(3))
                #expect(response["jsonrpc"] == .string("2.0"))
                #expect(response["result"]?["socket"] == .string(netd.socketPath))
                #expect(response["error"] == nil)
            }
        }
    }

    @Test func notificationsGetNoResponse() async throws {
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { connection in
                try await connection.send(#"{"jsonrpc": "2.0", "method": "netd.ping", "params": {}}"#)
                try await connection.send(#"{"jsonrpc": "2.0", "method": "netd.ping"}"#)
                // A failing notification is not answered either.
                try await connection.send(#"{"jsonrpc": "2.0", "method": "no.such.method"}"#)
                let next = try await connection.exchange(#"{"jsonrpc": "2.0", "method": "netd.ping", "id": "after"}"#)
                #expect(next.id == .string("after"))
                #expect(next["result"]?["pong"] == .bool(true))
            }
        }
    }

    @Test func nonExistentMethod() async throws {
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { connection in
                let response = try await connection.exchange(#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#)
                #expect(response.id == .string("1"))
                #expect(response.errorCode == -32601)
            }
        }
    }

    @Test func invalidJSON() async throws {
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { connection in
                let response = try await connection.exchange(#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#)
                #expect(response.id == .null)
                #expect(response.errorCode == -32700)
            }
        }
    }

    @Test func invalidRequestObject() async throws {
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { connection in
                let response = try await connection.exchange(#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#)
                #expect(response.id == .null)
                #expect(response.errorCode == -32600)
            }
        }
    }

    @Test func batchWithInvalidJSON() async throws {
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { connection in
                let response = try await connection.exchange(
                    #"[{"jsonrpc": "2.0", "method": "netd.ping", "params": {}, "id": "1"},{"jsonrpc": "2.0", "method"]"#)
                #expect(response.id == .null)
                #expect(response.errorCode == -32700)
            }
        }
    }

    @Test func emptyArray() async throws {
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { connection in
                let response = try await connection.exchange("[]")
                #expect(response.id == .null)
                #expect(response.errorCode == -32600)
            }
        }
    }

    @Test func invalidBatchOfOne() async throws {
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { connection in
                let response = try await connection.exchange("[1]")
                guard case .array(let items) = response else { Issue.record("not an array: \(response)"); return }
                #expect(items.map(\.errorCode) == [-32600])
                #expect(items.map(\.id) == [.null])
            }
        }
    }

    @Test func invalidBatch() async throws {
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { connection in
                let response = try await connection.exchange("[1,2,3]")
                guard case .array(let items) = response else { Issue.record("not an array: \(response)"); return }
                #expect(items.map(\.errorCode) == [-32600, -32600, -32600])
            }
        }
    }

    @Test func mixedBatch() async throws {
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { connection in
                let response = try await connection.exchange("""
                    [{"jsonrpc": "2.0", "method": "netd.ping", "params": {}, "id": "1"},\
                    {"jsonrpc": "2.0", "method": "netd.ping", "params": {}},\
                    {"jsonrpc": "2.0", "method": "netd.status", "params": {}, "id": "2"},\
                    {"foo": "boo"},\
                    {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},\
                    {"jsonrpc": "2.0", "method": "netd.methods", "id": "9"}]
                    """)
                guard case .array(let items) = response else { Issue.record("not an array: \(response)"); return }
                #expect(items.map(\.id) == [.string("1"), .string("2"), .null, .string("5"), .string("9")])
                #expect(items.map(\.errorCode) == [nil, nil, -32600, -32601, nil])
                #expect(items[0]["result"]?["pong"] == .bool(true))
                #expect(items[1]["result"]?["database"] == .string(netd.databasePath))
                #expect(items[4]["result"]?["methods"] != nil)
            }
        }
    }

    @Test func batchOfNotificationsGetsNothing() async throws {
        try await withRunningDaemon { netd in
            try await withRawConnection(netd.socketPath) { connection in
                try await connection.send(#"[{"jsonrpc": "2.0", "method": "netd.ping", "params": {}},{"jsonrpc": "2.0", "method": "netd.status"}]"#)
                let next = try await connection.exchange(#"{"jsonrpc": "2.0", "method": "netd.ping", "id": 10}"#)
                #expect(next.id == .integer(10))
            }
        }
    }
}
