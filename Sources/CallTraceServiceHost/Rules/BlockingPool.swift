import CallTraceSync
import Foundation

/// A few threads for CPU-heavy or blocking work — scrypt, sealing or opening large payloads,
/// outgoing HTTP — so that it never runs on a connection's I/O thread (where it would delay
/// every other call multiplexed on that connection) or on Swift's cooperative pool.
///
/// Jobs run in arrival order on at most `threads` threads at once, which also bounds their
/// memory (one scrypt verification takes 32 MiB).
public final class BlockingPool: Sendable {
    /// One thread per core, at least two. Shared by everything in the process.
    public static let shared = BlockingPool(threads: max(2, ProcessInfo.processInfo.activeProcessorCount), name: "calltrace-blocking")

    private struct Queue {
        var jobs: [@Sendable () -> Void] = []
        var head = 0
    }
    private let queue = Locked(Queue())
    private let ready = DispatchSemaphore(value: 0)

    /// Starts `threads` worker threads that live as long as the process.
    public init(threads: Int, name: String) {
        for index in 0..<threads {
            let thread = Thread { [self] in work() }
            thread.name = "\(name)-\(index)"
            thread.start()
        }
    }

    /// Runs `job` on a pool thread and returns its result; a task already cancelled gets
    /// `CancellationError` and the job never runs.
    public func run<T: Sendable>(_ job: @escaping @Sendable () throws -> T) async throws -> T {
        try Task.checkCancellation()
        return try await handOff { finish in
            enqueue { finish(Result { try job() }) }
        }
    }

    /// Jobs waiting for a thread (not counting those running).
    public var queued: Int { queue.withLock { $0.jobs.count - $0.head } }

    private func enqueue(_ job: @escaping @Sendable () -> Void) {
        queue.withLock { $0.jobs.append(job) }
        ready.signal()
    }

    private func work() {
        while true {
            ready.wait()
            let job = queue.withLock { queue -> (@Sendable () -> Void)? in
                guard queue.head < queue.jobs.count else { return nil }
                let job = queue.jobs[queue.head]
                queue.head += 1
                if queue.head == queue.jobs.count {
                    queue.jobs.removeAll(keepingCapacity: true)
                    queue.head = 0
                }
                return job
            }
            job?()
        }
    }
}
