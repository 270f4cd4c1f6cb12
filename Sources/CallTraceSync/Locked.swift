#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// State behind a lock, with `Synchronization.Mutex`'s shape (`Locked(state)`, `withLock`), over a
/// `pthread_mutex_t`. Why not Mutex: on Linux it is a futex inside the uninstrumented standard
/// library, so ThreadSanitizer sees neither its lock nor its unlock and reports every body of
/// `withLock` as a race (`make test-tsan`); TSan intercepts pthread, so with this lock it sees the
/// ordering and reports only real races. Uncontended, it costs what Mutex does (`make bench`).
///
/// A class, not a `~Copyable` struct: a pthread mutex must not move once initialised, and a class
/// keeps it (and the state) at one address for its life.
public final class Locked<State: ~Copyable>: @unchecked Sendable {
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    @usableFromInline let state: UnsafeMutablePointer<State>

    public init(_ initialState: consuming sending State) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        // Default attributes: not recursive, as Mutex is not (withLock inside withLock deadlocks).
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init failed")
        state = .allocate(capacity: 1)
        state.initialize(to: initialState)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
    }

    /// Runs `body` with the state while holding the lock; as with Mutex, the state cannot escape
    /// `body` except through what it returns, which is sent to the caller.
    @inlinable
    public func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending State) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state.pointee)
    }
}
