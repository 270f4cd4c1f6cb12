public import CallTraceStorage
import CallTraceSync
import Foundation
public import Logging

/// One unit of durable work, as a handler receives it.
public struct Job: Sendable {
    /// Chosen by the service when it was enqueued.
    public let id: String
    public let kind: String
    /// Unique per job; carried to whoever the handler calls, so a retried delivery is applied once.
    public let idempotencyKey: String
    public let payload: Data
    /// Earlier attempts that failed (0 on the first run).
    public let attempts: Int
}

/// What a handler says when it returns.
public enum JobOutcome: Sendable {
    /// Done: the job leaves the queue.
    case done
    /// More of the same work is waiting: run the job again at once.
    case again
}

/// A failure that retrying cannot mend (a malformed payload, a refusal that will not change):
/// the job is dead-lettered at once with this reason.
public struct PermanentJobFailure: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ reason: String) { description = reason }
}

/// A failure the far side says when to retry (HTTP 429 or 503 with Retry-After): the job runs
/// again no sooner than `after`, or its backoff if that is longer.
public struct RetryLater: Error, CustomStringConvertible, Sendable {
    public let description: String
    public let after: Duration
    public init(_ reason: String, after: Duration) {
        description = reason
        self.after = after
    }
}

/// Runs the jobs of one kind, untyped: what the queue runs (services register typed
/// `DurableJobHandler`s, which it wraps).
protocol JobHandler: Sendable {
    /// The kind this handler runs, e.g. `audit.forward`, `transcription.request`.
    var kind: String { get }
    /// Runs one job. Throwing retries it later with backoff (or dead-letters it: see
    /// `PermanentJobFailure` and `JobQueue.Configuration.maxAttempts`).
    func run(_ job: Job) async throws -> JobOutcome
}

/// The durable work of one service, in its own database: a job is enqueued in the same
/// transaction as the action that needs it, so the action and its follow-up commit together or
/// not at all; workers lease due jobs, retry failures with exponential backoff and jitter,
/// record attempts and the last error, and dead-letter a job after `maxAttempts`. Jobs survive
/// restarts (a job that was running when the process died runs again), and workers stop cleanly
/// on drain. Recurring work (`every:` or `daily(at:)`) is enqueued on the same queue.
///
/// Several replicas can share one database (PostgreSQL): a running job is leased to the queue
/// running it (`owner`) until `lease_expires_at_unix_ms`, which a heartbeat renews while the
/// process lives; a job whose lease ran out (its replica died) is taken over by another, and a
/// queue that lost its lease records nothing of the job's outcome. Every claim and outcome is a
/// write, and writes run one at a time (`Database`), so no job is claimed twice.
///
///     enqueue ──▶ ready ──lease──▶ running ──done──▶ (deleted)
///                   ▲                 │
///                   └──backoff────────┤ failure, attempts < max
///                                     └──▶ dead (listed for operators, counted in metrics)
///
/// SQL stays in the subset SQLite and PostgreSQL share; times are UTC milliseconds from the
/// injected clock, so tests drive the queue with `runDue()` and a `TestClock`, never sleeping.
public final class JobQueue: Sendable {
    /// Every default is stated.
    public struct Configuration: Sendable {
        /// Attempts before a job is dead-lettered; a handler kind may ask for more (see
        /// `register(_:maxAttempts:)`). Default 10.
        public var maxAttempts = 10
        /// Wait after the first failure; it doubles per attempt, ±20% jitter. Default 1 s.
        public var initialBackoff: Duration = .seconds(1)
        /// Longest wait between attempts. Default 10 min.
        public var maxBackoff: Duration = .seconds(600)
        /// How often idle workers look for due jobs (an enqueue wakes them at once). Default 1 s.
        public var idlePoll: Duration = .seconds(1)
        /// How long a running job stays its queue's without a heartbeat; the heartbeat renews it
        /// every quarter of this. Another replica takes the job over once it runs out. Default 60 s.
        public var lease: Duration = .seconds(60)
        public init() {}
    }

    /// A job as operators see it (`list`).
    public struct Status: Sendable, Equatable {
        public let id: String
        public let kind: String
        public let state: String
        public let attempts: Int
        public let lastError: String?
        public let runAtUnixMs: Int64
    }

    struct Schedule: Sendable {
        enum Rule: Sendable {
            case every(Int64)
            case daily(hour: Int, minute: Int, timeZone: TimeZone)
        }
        let name: String
        let kind: String
        let payload: Data
        let rule: Rule
    }

    /// Idle workers, and how many wake-ups there have been: a worker that was busy when one came
    /// looks again instead of waiting (no wake-up is lost between its look and its wait).
    private struct Wakes {
        var waiting: [String: CheckedContinuation<Void, Never>] = [:]
        var count = 0
    }

    private struct Registry {
        var handlers: [String: (handler: any JobHandler, maxAttempts: Int)] = [:]
        var schedules: [Schedule] = []
    }

    public let database: Database
    /// The time jobs are due by (and audit events are stamped with).
    public let clock: any WallClock
    /// This queue's name on the jobs it leases: new at each start of the process.
    public let owner: String = "queue_" + String(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16))
    private let configuration: Configuration
    private let registry = Locked(Registry())
    /// One worker per kind, so a kind whose jobs are slow (forwarding to a peer that is down)
    /// never holds up another's; nil until `start`.
    private let workers = Locked<[String: Task<Void, Never>]?>(nil)
    private let wakes = Locked(Wakes())
    private let workerLogger = Locked<Logger?>(nil)
    private let heartbeat = Locked<Task<Void, Never>?>(nil)
    /// The jobs this process is running now: the heartbeat renews only these, and `lease` never
    /// takes one of them over. A job this queue leased but could not record the end of leaves
    /// the set, so its lease runs out and it runs again (here or on another replica).
    private let running = Locked<Set<String>>([])

    public init(database: Database, clock: any WallClock, configuration: Configuration = Configuration()) {
        self.database = database
        self.clock = clock
        self.configuration = configuration
        // A test's clock jumping past a backoff or a schedule: the workers look at once, not at their next poll.
        clock.onJump { [weak self] in self?.wakeWorker() }
    }

    // MARK: Setting up

    /// Runs jobs of `Handler.Work` with `handler`; `maxAttempts` overrides the default (use
    /// `Int.max` for work that must wait out any outage, such as audit forwarding).
    public func register<Handler: DurableJobHandler>(_ handler: Handler, maxAttempts: Int? = nil) {
        register(TypedJobHandler(handler: handler) as any JobHandler, maxAttempts: maxAttempts)
    }

    /// Enqueues `work` every `interval`, the first one `interval` after the queue first sees the schedule.
    public func schedule<Work: DurableJob>(_ name: String, every interval: Duration, _ work: Work) throws {
        schedule(name, every: interval, kind: Work.kind, payload: try work.encoded())
    }

    /// Enqueues `work` every day at `hour:minute` in `timeZone` (e.g. Europe/London, which
    /// follows the clocks changing).
    public func schedule<Work: DurableJob>(_ name: String, dailyAt hour: Int, _ minute: Int, in timeZone: TimeZone, _ work: Work) throws {
        schedule(name, dailyAt: hour, minute, in: timeZone, kind: Work.kind, payload: try work.encoded())
    }

    /// Enqueues `work` inside the caller's transaction; see `enqueue(kind:…)` for idempotency.
    @discardableResult
    public func enqueue<Work: DurableJob>(_ work: Work, idempotencyKey: String, runAt: Int64? = nil, in db: Connection) throws -> String {
        try enqueue(kind: Work.kind, idempotencyKey: idempotencyKey, payload: try work.encoded(), runAt: runAt, in: db)
    }

    func register(_ handler: any JobHandler, maxAttempts: Int? = nil) {
        registry.withLock { $0.handlers[handler.kind] = (handler, maxAttempts ?? configuration.maxAttempts) }
        if let logger = workerLogger.withLock({ $0 }) { startWorker(for: handler.kind, logger: logger) }
    }

    /// Enqueues a job of `kind` every `interval`, the first one `interval` after the queue first sees the schedule.
    func schedule(_ name: String, every interval: Duration, kind: String, payload: Data = Data()) {
        registry.withLock { $0.schedules.append(Schedule(name: name, kind: kind, payload: payload, rule: .every(max(1, interval.wholeMilliseconds)))) }
    }

    /// Enqueues a job of `kind` every day at `hour:minute` in `timeZone` (e.g. Europe/London,
    /// which follows the clocks changing).
    func schedule(_ name: String, dailyAt hour: Int, _ minute: Int, in timeZone: TimeZone, kind: String, payload: Data = Data()) {
        registry.withLock {
            $0.schedules.append(Schedule(name: name, kind: kind, payload: payload, rule: .daily(hour: hour, minute: minute, timeZone: timeZone)))
        }
    }

    // MARK: Enqueueing

    /// Enqueues a job inside the caller's transaction (`Database.write`), due at `runAt` (default
    /// now). Idempotent by `idempotencyKey`: a key already queued (or dead) returns the existing
    /// job's id and adds nothing — except that a job *running* under that key is marked to run
    /// once more when it finishes, so work added while it ran is never left behind (this is how
    /// one coalescing job, such as audit forwarding, serves many enqueues).
    @discardableResult
    func enqueue(kind: String, idempotencyKey: String, payload: Data = Data(), runAt: Int64? = nil,
                        in db: Connection) throws -> String {
        if let existing = try db.query("SELECT id, state FROM jobs WHERE idempotency_key = ?", idempotencyKey).first,
           let id = existing.text("id") {
            if existing.text("state") == "running" { try db.execute("UPDATE jobs SET rerun = 1 WHERE id = ?", id) }
            return id
        }
        let now = clock.nowUnixMs
        let id = "job_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try db.execute("""
            INSERT INTO jobs (id, kind, idempotency_key, payload, state, attempts, run_at_unix_ms, created_at_unix_ms, updated_at_unix_ms)
            VALUES (?, ?, ?, ?, 'ready', 0, ?, ?, ?)
            """, id, kind, idempotencyKey, payload, runAt ?? now, now, now)
        wakeWorker()
        return id
    }

    // MARK: Running

    /// Starts the workers, one per kind: each kind's due jobs run one at a time, in order of due
    /// time; and the heartbeat that keeps this queue's leases. On SQLite, which one process holds,
    /// jobs left running by a process that died are made ready again first; on a shared database
    /// they are taken over when their lease runs out (the replica may be alive).
    public func start(logger: Logger) {
        if database.dialect == .sqlite {
            do {
                try database.sync { db in _ = try db.execute("UPDATE jobs SET state = 'ready', lease_owner = NULL WHERE state = 'running'") }
            } catch {
                logger.error("jobs: cannot recover running jobs", metadata: ["reason": "\(error)"])
            }
        }
        workerLogger.withLock { $0 = logger }
        workers.withLock { $0 = $0 ?? [:] }
        // (On SQLite, one process: nobody else would take a job over.)
        if database.dialect == .postgres { heartbeat.withLock { task in
            guard task == nil else { return }
            task = Task { [self, interval = configuration.lease / 4] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    guard !Task.isCancelled else { return }
                    do { try await renewLeases() } catch {
                        logger.error("jobs: cannot renew the leases of running jobs", metadata: ["reason": "\(error)"])
                    }
                }
            }
        } }
        for kind in registry.withLock({ Array($0.handlers.keys) }) { startWorker(for: kind, logger: logger) }
    }

    /// Extends the lease of every job this process is running.
    func renewLeases() async throws {
        let ids = running.withLock { Array($0) }
        guard !ids.isEmpty else { return }
        let expires = clock.nowUnixMs + configuration.lease.wholeMilliseconds
        try await database.write { [owner] db in
            _ = try db.execute("""
                UPDATE jobs SET lease_expires_at_unix_ms = ? WHERE state = 'running' AND lease_owner = ? AND id IN (\(ids.map { _ in "?" }.joined(separator: ", ")))
                """, bindings: [expires, owner] + ids)
        }
    }

    private func startWorker(for kind: String, logger: Logger) {
        workers.withLock { workers in
            guard workers != nil, workers?[kind] == nil else { return }
            workers?[kind] = Task { [self] in
                while !Task.isCancelled {
                    let seen = wakes.withLock { $0.count }
                    let ran = await runDue(kinds: [kind], logger: logger)
                    if ran == 0 { await waitForWork(kind, unlessWokenSince: seen) }
                }
            }
        }
    }

    /// Stops the workers after the jobs they are running (jobs stay queued).
    public func stop() async {
        workerLogger.withLock { $0 = nil }
        let tasks = workers.withLock { workers -> [Task<Void, Never>] in
            defer { workers = nil }
            return Array((workers ?? [:]).values)
        }
        for task in tasks { task.cancel() }
        wakeWorker()
        for task in tasks { await task.value }
        // Only now: the jobs still running kept their leases until they finished.
        if let task = heartbeat.withLock({ task in defer { task = nil }; return task }) {
            task.cancel()
            await task.value
        }
    }

    /// Enqueues due scheduled work, then runs every job due now, one by one; returns how many
    /// ran. Tests call it directly, with a `TestClock`, instead of waiting for the worker.
    @discardableResult
    public func runDue(logger: Logger = Logger(label: "calltrace.jobs")) async -> Int {
        await runDue(kinds: nil, logger: logger)
    }

    /// `runDue` for some kinds only (nil: all), as each kind's worker does.
    @discardableResult
    public func runDue(kinds: Set<String>?, logger: Logger = Logger(label: "calltrace.jobs")) async -> Int {
        do { try await enqueueScheduled() } catch {
            logger.error("jobs: cannot enqueue scheduled work", metadata: ["reason": "\(error)"])
        }
        var ran = 0
        while !Task.isCancelled, let job = try? await lease(kinds: kinds) {
            ran += 1
            await execute(job, logger: logger)
            running.withLock { _ = $0.remove(job.id) }
        }
        return ran
    }

    /// Leases the job due first — a ready one, or one whose lease another queue let run out —
    /// to this queue: marks it running, until the lease's end.
    private func lease(kinds only: Set<String>?) async throws -> Job? {
        let now = clock.nowUnixMs
        let kinds = registry.withLock { Array($0.handlers.keys) }.filter { only?.contains($0) ?? true }
        guard !kinds.isEmpty else { return nil }
        let owner = self.owner, expires = now + configuration.lease.wholeMilliseconds
        let mine = running.withLock { Array($0) }
        let marks = kinds.map { _ in "?" }.joined(separator: ", ")
        let notMine = mine.isEmpty ? "" : "AND id NOT IN (\(mine.map { _ in "?" }.joined(separator: ", ")))"
        let due = """
            FROM jobs WHERE kind IN (\(marks)) AND ((state = 'ready' AND run_at_unix_ms <= ?)
                                                   OR (state = 'running' AND lease_expires_at_unix_ms <= ? \(notMine)))
            """
        let bindings: [any SQLiteBindable] = kinds.map { $0 as any SQLiteBindable } + [now, now] + mine.map { $0 as any SQLiteBindable }
        // A read first: an idle worker's poll takes no write.
        guard try await database.read({ db in try !db.query("SELECT 1 \(due) LIMIT 1", bindings: bindings).isEmpty }) else { return nil }
        let job = try await database.write { db -> Job? in
            guard let row = try db.query("""
                SELECT id, kind, idempotency_key, payload, attempts \(due)
                ORDER BY run_at_unix_ms, created_at_unix_ms LIMIT 1
                """, bindings: bindings).first,
                  let id = row.text("id"), let kind = row.text("kind"), let key = row.text("idempotency_key")
            else { return nil }
            try db.execute("""
                UPDATE jobs SET state = 'running', rerun = 0, lease_owner = ?, lease_expires_at_unix_ms = ?, updated_at_unix_ms = ? WHERE id = ?
                """, owner, expires, now, id)
            return Job(id: id, kind: kind, idempotencyKey: key, payload: row.blob("payload") ?? Data(), attempts: Int(row.int("attempts") ?? 0))
        }
        if let job { running.withLock { _ = $0.insert(job.id) } }
        return job
    }

    private func execute(_ job: Job, logger: Logger) async {
        guard let (handler, maxAttempts) = registry.withLock({ $0.handlers[job.kind] }) else { return }
        let outcome: Result<JobOutcome, any Error>
        do {
            outcome = .success(try await handler.run(job))
        } catch {
            outcome = .failure(error)
        }
        let now = clock.nowUnixMs
        let owner = self.owner
        do {
            // Each change only while the job is still this queue's: one whose lease ran out and
            // another replica took over is that replica's to finish.
            let kept = try await database.write { [configuration] db -> Bool in
                let mine = "WHERE id = ? AND state = 'running' AND lease_owner = ?"
                switch outcome {
                case .success(.done):
                    // Enqueued again while it ran: once more, at once.
                    if try db.execute("""
                        UPDATE jobs SET state = 'ready', rerun = 0, attempts = 0, last_error = NULL, lease_owner = NULL, run_at_unix_ms = ? \(mine) AND rerun = 1
                        """, now, job.id, owner) == 1 {
                        return true
                    }
                    return try db.execute("DELETE FROM jobs \(mine)", job.id, owner) == 1
                case .success(.again):
                    return try db.execute("""
                        UPDATE jobs SET state = 'ready', attempts = 0, last_error = NULL, lease_owner = NULL, run_at_unix_ms = ?, updated_at_unix_ms = ? \(mine)
                        """, now, now, job.id, owner) == 1
                case .failure(let error):
                    let attempts = job.attempts + 1
                    let reason = String("\(error)".prefix(500))
                    if error is PermanentJobFailure || attempts >= maxAttempts {
                        return try db.execute("UPDATE jobs SET state = 'dead', attempts = ?, last_error = ?, lease_owner = NULL, updated_at_unix_ms = ? \(mine)",
                                              attempts, reason, now, job.id, owner) == 1
                    }
                    var delay = Self.backoff(attempt: attempts, configuration: configuration)
                    if let later = error as? RetryLater { delay = max(delay, Int64(later.after.wholeMilliseconds)) }
                    return try db.execute("""
                        UPDATE jobs SET state = 'ready', attempts = ?, last_error = ?, lease_owner = NULL, run_at_unix_ms = ?, updated_at_unix_ms = ? \(mine)
                        """, attempts, reason, now + delay, now, job.id, owner) == 1
                }
            }
            if !kept {
                logger.warning("jobs: a job's lease ran out while it ran, and another replica took it over; its outcome here is not recorded",
                               metadata: ["job": "\(job.id)", "kind": "\(job.kind)"])
            } else if case .success(.done) = outcome {
                logger.debug("job done", metadata: ["job": "\(job.id)", "kind": "\(job.kind)"])
            }
        } catch {
            logger.error("jobs: cannot record a job's outcome", metadata: ["job": "\(job.id)", "kind": "\(job.kind)", "reason": "\(error)"])
        }
        if case .failure(let error) = outcome {
            // The error's own words (a status code and message: our errors carry no secret, token
            // or phone number), so an operator reading the log knows why without the database.
            let dead = error is PermanentJobFailure || job.attempts + 1 >= maxAttempts
            logger.log(level: dead ? .error : .notice, dead ? "job dead-lettered" : "job failed",
                       metadata: ["job": "\(job.id)", "kind": "\(job.kind)", "attempt": "\(job.attempts + 1)",
                                  "error_type": "\(type(of: error))", "reason": "\(String("\(error)".prefix(300)))"])
        }
    }

    /// Milliseconds to wait after the `attempt`-th failure: doubling from the initial backoff up
    /// to the maximum, ±20% jitter.
    static func backoff(attempt: Int, configuration: Configuration) -> Int64 {
        let initial = Double(configuration.initialBackoff.wholeMilliseconds), maximum = Double(configuration.maxBackoff.wholeMilliseconds)
        let raw = min(initial * pow(2, Double(min(attempt - 1, 40))), maximum)
        return Int64(raw * Double.random(in: 0.8...1.2))
    }

    // MARK: Schedules

    private func enqueueScheduled() async throws {
        let schedules = registry.withLock { $0.schedules }
        guard !schedules.isEmpty else { return }
        let now = clock.nowUnixMs
        // Looked at in a read first: an idle worker's poll takes no write (on PostgreSQL, the
        // database's one write lock, which every replica's writes queue for).
        let names = schedules.map(\.name)
        let due = try await database.read { db -> Bool in
            let rows = try db.query("SELECT next_run_at_unix_ms FROM job_schedules WHERE name IN (\(names.map { _ in "?" }.joined(separator: ", ")))",
                                    bindings: names)
            return rows.count < Set(names).count || rows.contains { ($0.int("next_run_at_unix_ms") ?? 0) <= now }
        }
        guard due else { return }
        try await database.write { [self] db in
            for schedule in schedules {
                guard let next = try db.query("SELECT next_run_at_unix_ms FROM job_schedules WHERE name = ?", schedule.name).first?
                    .int("next_run_at_unix_ms") else {
                    try db.execute("INSERT INTO job_schedules (name, next_run_at_unix_ms) VALUES (?, ?)",
                                   schedule.name, Self.nextRun(after: now, schedule.rule))
                    continue
                }
                guard next <= now else { continue }
                try enqueue(kind: schedule.kind, idempotencyKey: "schedule:\(schedule.name):\(next)", payload: schedule.payload, in: db)
                try db.execute("UPDATE job_schedules SET next_run_at_unix_ms = ? WHERE name = ?", Self.nextRun(after: now, schedule.rule), schedule.name)
            }
        }
    }

    /// The first run strictly after `now` (UTC ms).
    static func nextRun(after now: Int64, _ rule: Schedule.Rule) -> Int64 {
        switch rule {
        case .every(let interval):
            return now + interval
        case .daily(let hour, let minute, let timeZone):
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = timeZone
            let date = Date(timeIntervalSince1970: Double(now) / 1000)
            let next = calendar.nextDate(after: date, matching: DateComponents(hour: hour, minute: minute, second: 0),
                                         matchingPolicy: .nextTime) ?? date.addingTimeInterval(86_400)
            return Int64(next.timeIntervalSince1970 * 1000)
        }
    }

    // MARK: For operators

    /// Jobs in `state` (`ready`, `running`, `dead`; all when nil), oldest first.
    public func list(state: String? = nil, limit: Int = 100) async throws -> [Status] {
        try await database.read { db in
            let rows = try state.map {
                try db.query("SELECT id, kind, state, attempts, last_error, run_at_unix_ms FROM jobs WHERE state = ? ORDER BY created_at_unix_ms LIMIT ?", $0, limit)
            } ?? db.query("SELECT id, kind, state, attempts, last_error, run_at_unix_ms FROM jobs ORDER BY created_at_unix_ms LIMIT ?", limit)
            return rows.map(Self.status)
        }
    }

    /// One job as operators see it, read inside the caller's transaction; nil once it is done
    /// (done jobs leave the queue).
    public func status(of id: String, in db: Connection) throws -> Status? {
        try db.query("SELECT id, kind, state, attempts, last_error, run_at_unix_ms FROM jobs WHERE id = ?", id).first.map(Self.status)
    }

    private static func status(_ row: Row) -> Status {
        Status(id: row.text("id") ?? "", kind: row.text("kind") ?? "", state: row.text("state") ?? "",
               attempts: Int(row.int("attempts") ?? 0), lastError: row.text("last_error"), runAtUnixMs: row.int("run_at_unix_ms") ?? 0)
    }

    /// Gauges for `GetMetrics`: jobs waiting and dead.
    public func gauges() async -> [(name: String, value: Double)] {
        guard let rows = try? await database.read({ db in
            try db.query("SELECT state, count(*) AS n FROM jobs GROUP BY state")
        }) else { return [] }
        let counts = Dictionary(uniqueKeysWithValues: rows.map { ($0.text("state") ?? "", Double($0.int("n") ?? 0)) })
        return [("jobs_ready", counts["ready", default: 0] + counts["running", default: 0]), ("jobs_dead", counts["dead", default: 0])]
    }

    // MARK: Waking

    /// Waits for an enqueue, a clock jump or the idle poll, unless a wake-up came after `seen`.
    private func waitForWork(_ kind: String, unlessWokenSince seen: Int) async {
        let poll = configuration.idlePoll
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                await withCheckedContinuation { continuation in
                    let (previous, woken) = wakes.withLock { wakes -> (CheckedContinuation<Void, Never>?, Bool) in
                        guard wakes.count == seen else { return (nil, true) }
                        defer { wakes.waiting[kind] = continuation }
                        return (wakes.waiting[kind], false)
                    }
                    previous?.resume()
                    if woken { continuation.resume() }
                }
            }
            group.addTask { try? await Task.sleep(for: poll) }
            await group.next()
            wakes.withLock { $0.waiting.removeValue(forKey: kind) }?.resume()
            group.cancelAll()
        }
    }

    private func wakeWorker() {
        let waiting = wakes.withLock { wakes -> [CheckedContinuation<Void, Never>] in
            wakes.count &+= 1
            defer { wakes.waiting = [:] }
            return Array(wakes.waiting.values)
        }
        for continuation in waiting { continuation.resume() }
    }
}
