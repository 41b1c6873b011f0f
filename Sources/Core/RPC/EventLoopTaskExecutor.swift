import NIOCore

/// Runs Swift tasks on one NIO event loop. An RPC connection's requests run on the loop that
/// reads them, and the sockets they open live there too, so that a request reaching its socket
/// and writing its answer stays on one thread instead of waking others.
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    // Unchecked: the one stored property is a Sendable event loop, never changed.
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
