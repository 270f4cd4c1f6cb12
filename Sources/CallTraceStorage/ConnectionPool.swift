import CallTraceSync
import Dispatch

/// A connection of a `ConnectionPool`: used only on its own serial thread, so callers `await`
/// and never block Swift's cooperative pool in a statement.
protocol PooledConnection: AnyObject, Sendable {
    var queue: DispatchQueue { get }
    /// Set (on `queue`) by `closeNow`; a run already handed this connection then fails.
    var isClosed: Bool { get }
    /// Whether it can serve the next run (a PostgreSQL connection the server dropped cannot).
    /// Read on `queue`, or after a run on it has finished.
    var isUsable: Bool { get }
    /// Closes the connection, on `queue`.
    func closeNow()
}

/// Connections opened on demand up to `limit` and shared in turn: a run takes a free one, or
/// opens one, or waits its turn. A connection that can no longer serve is closed, not given back.
final class ConnectionPool<Member: PooledConnection>: Sendable {
    private struct State {
        var idle: [Member] = []
        var all: [Member] = []
        var waiting: [CheckedContinuation<Member, any Error>] = []
        var opened = 0
        var closed = false
    }

    /// What the pool's errors call it ("database <path>").
    let name: String
    let limit: Int
    private let open: @Sendable (_ number: Int) async throws -> Member
    private let state = Locked(State())

    init(name: String, limit: Int, open: @escaping @Sendable (_ number: Int) async throws -> Member) {
        self.name = name
        self.limit = limit
        self.open = open
    }

    private var closedError: StorageError { StorageError("\(name) is closed") }

    /// Runs `body` on a connection's thread.
    func run<T: Sendable>(_ body: @escaping @Sendable (Member) throws -> T) async throws -> T {
        let member = try await take()
        defer { giveBack(member) }
        let closed = closedError
        return try await handOff { finish in
            member.queue.async {
                finish(Result {
                    guard !member.isClosed else { throw closed }
                    return try body(member)
                })
            }
        }
    }

    private enum Taken { case member(Member), open(Int), wait }

    private func take() async throws -> Member {
        let closed = closedError
        let taken: Taken = try state.withLock { state in
            guard !state.closed else { throw closed }
            if let member = state.idle.popLast() { return .member(member) }
            guard state.all.count < limit else { return .wait }
            state.opened += 1
            return .open(state.opened)
        }
        switch taken {
        case .member(let member): return member
        case .open(let number):
            let member = try await open(number)
            let kept = state.withLock { state -> Bool in
                guard !state.closed, state.all.count < limit else { return false }
                state.all.append(member)
                return true
            }
            guard kept else {
                member.queue.sync { member.closeNow() }
                return try await take()
            }
            return member
        case .wait:
            return try await withCheckedThrowingContinuation { continuation in
                let refused = state.withLock { state -> Bool in
                    if state.closed { return true }
                    if let member = state.idle.popLast() {
                        continuation.resume(returning: member)
                    } else {
                        state.waiting.append(continuation)
                    }
                    return false
                }
                if refused { continuation.resume(throwing: closed) }
            }
        }
    }

    private func giveBack(_ member: Member) {
        guard member.isUsable else {
            // Closed and forgotten: the next run opens a fresh one in its place.
            member.queue.async { member.closeNow() }
            let next = state.withLock { state -> CheckedContinuation<Member, any Error>? in
                state.all.removeAll { $0 === member }
                return state.waiting.isEmpty ? nil : state.waiting.removeFirst()
            }
            if let next { Task { [self] in await retake(for: next) } }
            return
        }
        let next = state.withLock { state -> CheckedContinuation<Member, any Error>? in
            if !state.waiting.isEmpty { return state.waiting.removeFirst() }
            state.idle.append(member)
            return nil
        }
        next?.resume(returning: member)
    }

    /// A waiting run whose connection was dropped gets one opened, or its turn again.
    private func retake(for waiting: CheckedContinuation<Member, any Error>) async {
        do { waiting.resume(returning: try await take()) } catch { waiting.resume(throwing: error) }
    }

    /// Refuses later runs, waits for the running ones and closes every connection.
    func close() {
        let (members, waiting) = state.withLock { state in
            state.closed = true
            defer { state.waiting = [] }
            return (state.all, state.waiting)
        }
        let closed = closedError
        for continuation in waiting { continuation.resume(throwing: closed) }
        for member in members { member.queue.sync { member.closeNow() } }
    }
}
