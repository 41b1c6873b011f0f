import Foundation
import NetdProtocol
import Testing

@Suite struct PathsTests {
    @Test func socketPathOrder() {
        let all = ["NETD_SOCKET": "/env/s", "XDG_RUNTIME_DIR": "/run/user/7"]
        #expect(NetdPaths.socket(flag: "/flag/s", environment: all, uid: 7) == "/flag/s")
        #expect(NetdPaths.socket(flag: nil, environment: all, uid: 7) == "/env/s")
        #expect(NetdPaths.socket(flag: nil, environment: ["XDG_RUNTIME_DIR": "/run/user/7"], uid: 7) == "/run/user/7/netd/netd.sock")
        #expect(NetdPaths.socket(flag: nil, environment: [:], uid: 7) == "/tmp/netd-7/netd.sock")
    }

    @Test func databasePathOrder() {
        let all = ["NETD_DB": "/env/h.db", "XDG_STATE_HOME": "/state", "HOME": "/home/u"]
        #expect(NetdPaths.database(flag: "/flag.db", environment: all) == "/flag.db")
        #expect(NetdPaths.database(flag: nil, environment: all) == "/env/h.db")
        #expect(NetdPaths.database(flag: nil, environment: ["XDG_STATE_HOME": "/state", "HOME": "/home/u"]) == "/state/netd/history.sqlite3")
        #expect(NetdPaths.database(flag: nil, environment: ["HOME": "/home/u"]) == "/home/u/.local/state/netd/history.sqlite3")
    }
}

@Suite struct TimestampTests {
    @Test func formatsUTCWithMilliseconds() {
        #expect(Timestamp.format(Date(timeIntervalSince1970: 1_795_600_800.123)) == "2026-11-25T10:00:00.123Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: -0.5)) == "1969-12-31T23:59:59.500Z")
    }

    @Test func parsesWhatItFormats() throws {
        let date = Date(timeIntervalSince1970: 1_795_600_800.456)
        let parsed = try #require(Timestamp.parse(Timestamp.format(date)))
        #expect(abs(parsed.timeIntervalSince1970 - date.timeIntervalSince1970) < 0.001)
        #expect(Timestamp.parse("2026-11-25T10:00:00Z") != nil)
        #expect(Timestamp.parse("yesterday") == nil)
    }
}

@Suite struct DurationTextTests {
    @Test(arguments: [
        ("30d", 30 * 86_400_000), ("12h", 43_200_000), ("90m", 5_400_000), ("45s", 45_000), ("500ms", 500),
        ("1h30m", 5_400_000), ("2w", 1_209_600_000), ("0s", 0),
    ] as [(String, Int64)])
    func parses(text: String, milliseconds: Int64) {
        #expect(DurationText.milliseconds(text) == milliseconds)
    }

    @Test(arguments: ["", "30", "d", "1x", "-5m", "1.5h", "1h 30m", "99999999999999999999d", "5mm"])
    func refuses(text: String) {
        #expect(DurationText.milliseconds(text) == nil)
    }
}
