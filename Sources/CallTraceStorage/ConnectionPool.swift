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
/// opens one, or waits its turn. A connection that can no longer serve is closed, not given back;
/// with an `idleTimeout`, so is one left unused that long (a server's connections are few: a
/// quiet replica should not hold them).
final class ConnectionPool<Member: PooledConnection>: Sendable {
    private struct State {
        var idle: [Member] = []
        var all: [Member] = []
        var waiting: [CheckedContinuation<Member, any Error>] = []
        var opened = 0
        /// Connections being opened: counted against the limit from the moment one is decided on,
        /// so a burst of runs opens `limit`, not one each.
        var opening = 0
        var closed = false
        /// When each idle connection went idle.
        var idleSince: [ObjectIdentifier: ContinuousClock.Instant] = [:]
        var reaping = false
    }

    /// What the pool's errors call it ("database <path>").
    let name: String
    let limit: Int
    let idleTimeout: Duration?
    private let open: @Sendable (_ number: Int) async throws -> Member
    private let state = Locked(State())

    init(name: String, limit: Int, idleTimeout: Duration? = nil, open: @escaping @Sendable (_ number: Int) async throws -> Member) {
        self.name = name
        self.limit = limit
        self.idleTimeout = idleTimeout
        self.open = open
    }

    private var closedError: StorageError { StorageError("\(name) is closed") }

    /// Runs `body` on a connection's thread.
    func run<T: Sendable>(_ body: @escaping @Sendable (Member) throws -> T) async throws -> T {
        let member = try await take()
        // Whether it can serve again, found on its thread after the run (not here, where a
        // close could be under way on that thread).
        let usable = Locked(false)
        defer { giveBack(member, usable: usable.withLock { $0 }) }
        let closed = closedError
        return try await handOff { finish in
            member.queue.async {
                let result = Result {
                    guard !member.isClosed else { throw closed }
                    return try body(member)
                }
                usable.withLock { $0 = member.isUsable }
                finish(result)
            }
        }
    }

    /// Runs `body` on a connection's thread, blocking the caller (start-up, commands, and a key
    /// store's short reads): an idle connection (checked on its thread to be still `usable` when
    /// idle for `checkAfterIdle`), else one opened now with `open`, kept if the pool has room.
    func runBlocking<T>(open: () throws -> Member, usable: (Member) -> Bool = { _ in true }, _ body: (Member) throws -> T) throws -> T {
        let closed = closedError
        var idleFor = Duration.zero
        var member: Member? = try state.withLock { state in
            guard !state.closed else { throw closed }
            guard let member = state.idle.popLast() else { return nil }
            idleFor = state.idleSince.removeValue(forKey: ObjectIdentifier(member)).map { .now - $0 } ?? Self.checkAfterIdle
            return member
        }
        // A connection used a moment ago is taken as it is (a key store's reads come in bursts);
        // one idle longer is checked first.
        if let idle = member, idleFor >= Self.checkAfterIdle, !idle.queue.sync(execute: { !idle.isClosed && usable(idle) }) {
            forget(idle)
            member = nil
        }
        var kept = true
        if member == nil {
            let opened = try open()
            kept = state.withLock { state -> Bool in
                guard !state.closed, state.all.count + state.opening < limit else { return false }
                state.all.append(opened)
                return true
            }
            member = opened
        }
        guard let member else { throw closed }
        var usable = false
        defer {
            if kept { giveBack(member, usable: usable) } else { member.queue.sync { member.closeNow() } }
        }
        return try member.queue.sync {
            defer { usable = member.isUsable }
            guard !member.isClosed else { throw closed }
            return try body(member)
        }
    }

    /// How long a connection lies idle before `runBlocking` checks it is still `usable`.
    static var checkAfterIdle: Duration { .seconds(1) }

    private enum Taken { case member(Member), open(Int), wait }

    private func take() async throws -> Member {
        let closed = closedError
        let taken: Taken = try state.withLock { state in
            guard !state.closed else { throw closed }
            if let member = state.idle.popLast() { return .member(member) }
            guard state.all.count + state.opening < limit else { return .wait }
            state.opened += 1
            state.opening += 1
            return .open(state.opened)
        }
        switch taken {
        case .member(let member): return member
        case .open(let number):
            let member: Member
            do {
                member = try await open(number)
            } catch {
                // A waiting run may open one in its place.
                let next = state.withLock { state -> CheckedContinuation<Member, any Error>? in
                    state.opening -= 1
                    return state.waiting.isEmpty ? nil : state.waiting.removeFirst()
                }
                if let next { Task { [self] in await retake(for: next) } }
                throw error
            }
            let kept = state.withLock { state -> Bool in
                state.opening -= 1
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
                let then = state.withLock { state -> WaitDecision in
                    if state.closed { return .refuse }
                    if let member = state.idle.popLast() {
                        continuation.resume(returning: member)
                        return .wait
                    }
                    // Room freed since the look above (a connection lost, an open failed): open one.
                    if state.all.count + state.opening < limit { return .retake }
                    state.waiting.append(continuation)
                    return .wait
                }
                switch then {
                case .refuse: continuation.resume(throwing: closed)
                case .retake: Task { [self] in await retake(for: continuation) }
                case .wait: break
                }
            }
        }
    }

    /// Closes `member` and forgets it: the next run opens a fresh one in its place.
    private func forget(_ member: Member) {
        member.queue.async { member.closeNow() }
        let next = state.withLock { state -> CheckedContinuation<Member, any Error>? in
            state.all.removeAll { $0 === member }
            state.idleSince[ObjectIdentifier(member)] = nil
            return state.waiting.isEmpty ? nil : state.waiting.removeFirst()
        }
        if let next { Task { [self] in await retake(for: next) } }
    }

    private func giveBack(_ member: Member, usable: Bool) {
        guard usable else { return forget(member) }
        let (next, reap) = state.withLock { state -> (CheckedContinuation<Member, any Error>?, Bool) in
            if !state.waiting.isEmpty { return (state.waiting.removeFirst(), false) }
            state.idle.append(member)
            state.idleSince[ObjectIdentifier(member)] = .now
            guard idleTimeout != nil, !state.reaping, !state.closed else { return (nil, false) }
            state.reaping = true
            return (nil, true)
        }
        next?.resume(returning: member)
        if reap, let idleTimeout { Task { await Self.reap(every: idleTimeout) { [weak self] in self } } }
    }

    /// Closes the connections idle for `timeout`, looking again every `timeout` while any is idle.
    /// (`pool` gives the pool while it exists: a pool no one holds is not kept alive by this.)
    private static func reap(every timeout: Duration, _ pool: @escaping @Sendable () -> ConnectionPool?) async {
        while true {
            try? await Task.sleep(for: timeout)
            guard let pool = pool() else { return }
            let (expired, goOn) = pool.state.withLock { state -> ([Member], Bool) in
                let now = ContinuousClock.now
                let expired = state.idle.filter { member in state.idleSince[ObjectIdentifier(member)].map { now - $0 >= timeout } ?? true }
                state.idle.removeAll { member in expired.contains { $0 === member } }
                state.all.removeAll { member in expired.contains { $0 === member } }
                for member in expired { state.idleSince[ObjectIdentifier(member)] = nil }
                state.reaping = !state.idle.isEmpty && !state.closed
                return (expired, state.reaping)
            }
            for member in expired { member.queue.async { member.closeNow() } }
            guard goOn else { return }
        }
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

/// What a run that found no free connection does (`ConnectionPool.take`).
private enum WaitDecision { case refuse, retake, wait }
