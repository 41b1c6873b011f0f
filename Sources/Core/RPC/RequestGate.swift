import NIOCore
import Synchronization

/// What every RPC connection of netd shares for `netd --replace`: how many requests are in flight
/// across all of them, and whether they read new requests at all. Paused, connections read
/// nothing more (what they read already is still served), so that in-flight requests can reach
/// zero and the sockets be handed over as they are.
final class RequestGate: Sendable {
    /// Sent down every RPC connection's pipeline when reading resumes.
    struct Resume: Sendable {}

    private let inFlight = Atomic<Int>(0)
    private let paused = Atomic<Bool>(false)

    var isPaused: Bool { paused.load(ordering: .acquiring) }
    var requestsInFlight: Int { inFlight.load(ordering: .acquiring) }

    func began() {
        inFlight.add(1, ordering: .acquiringAndReleasing)
    }

    func ended(_ count: Int = 1) {
        guard count > 0 else { return }
        inFlight.subtract(count, ordering: .acquiringAndReleasing)
    }

    func setPaused(_ on: Bool) {
        paused.store(on, ordering: .releasing)
    }
}
