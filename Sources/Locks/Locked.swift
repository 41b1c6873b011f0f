import NIOConcurrencyHelpers

/// A value behind a lock: the one lock type netd uses.
///
/// It is NIO's `NIOLockedValueBox`, a pthread mutex, rather than the standard library's
/// `Synchronization.Mutex`: on Linux, a contended `Mutex` is handed from thread to thread by the
/// kernel (FUTEX_LOCK_PI / FUTEX_UNLOCK_PI) with no atomic operation in user space, so
/// ThreadSanitizer sees no ordering between its holders and reports every contended critical
/// section as a data race. ThreadSanitizer understands pthread mutexes, so with this lock its
/// reports are real ones (docs/SECURITY.md, sanitizers).
public typealias Locked<Value> = NIOLockedValueBox<Value>

extension NIOLockedValueBox {
    /// Runs `body` with the value, holding the lock; what `body` throws, this throws (typed).
    @inlinable
    public func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        let outcome = withLockedValue { value -> Swift.Result<Result, Failure> in
            do throws(Failure) {
                return .success(try body(&value))
            } catch {
                return .failure(error)
            }
        }
        return try outcome.get()
    }
}
