import CoreMetrics
import NetdLocks
import NetdProtocol
import Synchronization

/// What netd counts as it works, through swift-metrics: into whatever backend the process
/// bootstrapped (netd's `--metrics` bootstraps Prometheus) or, with none, into swift-metrics' no-op
/// handlers. Counters the data path touches are made once, up front, so that counting a request is
/// a dictionary read and an atomic add; what can be read off netd's state (open sockets, queues)
/// is sampled when scraped instead (``MetricsEndpoint``).
public final class NetdMetrics: Sendable {
    private struct Outcomes: Sendable {
        let ok: Counter
        let error: Counter
    }

    private let requests: [String: Outcomes]
    /// Requests that named no method netd has, or could not be read at all.
    private let otherRequests: Outcomes
    private let connects = Locked<[String: Counter]>([:])
    /// Bytes of sockets that have closed, each way; open ones are added at a scrape.
    private let closedRead = Atomic<Int64>(0)
    private let closedWritten = Atomic<Int64>(0)
    let historyWrite: Timer
    let historyBatch: Recorder

    public init() {
        func outcomes(_ method: String) -> Outcomes {
            Outcomes(
                ok: Counter(label: "netd_requests_total", dimensions: [("method", method), ("outcome", "ok")]),
                error: Counter(label: "netd_requests_total", dimensions: [("method", method), ("outcome", "error")]))
        }
        var requests: [String: Outcomes] = [:]
        for name in MethodRegistry.names { requests[name] = outcomes(name) }
        self.requests = requests
        otherRequests = outcomes("other")
        historyWrite = Timer(label: "netd_history_write_seconds")
        historyBatch = Recorder(label: "netd_history_batch_changes")
    }

    /// One answered request: `method` as asked (nil when the request could not be read).
    func request(_ method: String?, ok: Bool) {
        let outcomes = method.flatMap { requests[$0] } ?? otherRequests
        (ok ? outcomes.ok : outcomes.error).increment()
    }

    /// One outgoing connect (`socket.connect`, or a forward's side to its target): `ok`, or the
    /// Node-style code of its failure (`ECONNREFUSED`, `ENOTFOUND`, `ETIMEDOUT`, ...).
    func connect(_ outcome: String) {
        let counter = connects.withLock { counters in
            if let counter = counters[outcome] { return counter }
            let counter = Counter(label: "netd_connects_total", dimensions: [("outcome", outcome)])
            counters[outcome] = counter
            return counter
        }
        counter.increment()
    }

    /// A socket closed with these final counts.
    func closed(read: Int64, written: Int64) {
        closedRead.add(read, ordering: .relaxed)
        closedWritten.add(written, ordering: .relaxed)
    }

    /// Bytes of every socket closed so far, each way.
    var closedBytes: (read: Int64, written: Int64) {
        (closedRead.load(ordering: .relaxed), closedWritten.load(ordering: .relaxed))
    }
}
