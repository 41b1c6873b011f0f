import NetdLocks

/// Where a handler leaves something its RPC connection must act on once the answer is on its way:
/// a socket prepared for an attached stream (section 9), a descriptor to pass (section 11).
///
/// Exactly one side acts on what is left: the connection takes it, or it was gone already (closed,
/// its client vanished) and the value is discarded (the socket closed, the descriptor closed).
final class HandOverSlot<Value: Sendable>: Sendable {
    private enum State {
        case waiting
        case filled(Value)
        case abandoned
    }

    private let state = Locked<State>(.waiting)
    private let discard: @Sendable (Value) -> Void

    init(discard: @escaping @Sendable (Value) -> Void) {
        self.discard = discard
    }

    /// The handler's side; false when the connection is gone, and then `value` was discarded.
    func fill(_ value: Value) -> Bool {
        let accepted = state.withLock { state -> Bool in
            guard case .waiting = state else { return false }
            state = .filled(value)
            return true
        }
        if !accepted { discard(value) }
        return accepted
    }

    /// The connection's side, once the answer is on its way: the value, now its own.
    func take() -> Value? {
        state.withLock { state in
            guard case .filled(let value) = state else { return nil }
            state = .abandoned
            return value
        }
    }

    /// The connection cannot act on it (it closed, or the call failed).
    func abandon() {
        let value = state.withLock { state -> Value? in
            defer { state = .abandoned }
            if case .filled(let value) = state { return value }
            return nil
        }
        if let value { discard(value) }
    }
}
