/// Awaits a result produced on another thread (a database's queue, a worker pool): `start` is
/// given a function to call once, from any thread, with the result.
///
/// The result crosses under a `Locked`, not inside the continuation's resume: the resume goes
/// through the concurrency runtime, which ThreadSanitizer cannot see into, so a value built on
/// the worker's thread (a dictionary a read filled) and read after the `await` would be reported
/// as a race. The lock's release on the worker and acquire here order them where TSan sees it
/// (`make test-tsan`).
public func handOff<T: Sendable>(_ start: (@escaping @Sendable (Result<T, any Error>) -> Void) -> Void) async throws -> T {
    let box = Locked<Result<T, any Error>?>(nil)
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        start { result in
            box.withLock { $0 = result }
            continuation.resume()
        }
    }
    guard let result = box.withLock({ $0 }) else { preconditionFailure("handOff resumed without a result") }
    return try result.get()
}
