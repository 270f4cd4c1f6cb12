@testable import CallTraceServiceHost
import CallTraceStorage
import CallTraceSync
import CallTraceTestSupport
import Foundation
import Testing

/// A handler that fails as told, and remembers what it ran.
final class ScriptedHandler: JobHandler {
    let kind: String
    private let state: Locked<(failures: Int, permanent: Bool, runs: [String])>
    init(kind: String = "test.work", failures: Int = 0, permanent: Bool = false) {
        self.kind = kind
        state = Locked((failures, permanent, []))
    }
    var runs: [String] { state.withLock { $0.runs } }

    func run(_ job: Job) async throws -> JobOutcome {
        let (fail, permanent) = state.withLock { state -> (Bool, Bool) in
            state.runs.append(job.idempotencyKey)
            defer { if state.failures > 0 { state.failures -= 1 } }
            return (state.failures > 0, state.permanent)
        }
        if permanent { throw PermanentJobFailure("the payload can never be processed") }
        if fail { throw StorageError("the receiver is down") }
        return .done
    }
}

@Suite("Durable jobs")
final class JobQueueTests {
    /// Each test's own folder, removed when the test ends.
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("calltrace-jobs-\(UUID().uuidString)")

    deinit { try? FileManager.default.removeItem(at: directory) }

    func database() throws -> Database {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return try Database(path: directory.appendingPathComponent("service.sqlite").path,
                            migrations: SharedSchema.track.migrations)
    }

    @Test("A failing job is retried with growing backoff on the clock, its attempts and last error recorded, then done")
    func retriesWithBackoff() async throws {
        let database = try database()
        let clock = TestClock()
        let jobs = JobQueue(database: database, clock: clock)
        let handler = ScriptedHandler(failures: 3)
        jobs.register(handler)
        try await database.write { db in _ = try jobs.enqueue(kind: "test.work", idempotencyKey: "work-1", in: db) }
        var waits: [Int64] = []
        for attempt in 1...3 {
            #expect(await jobs.runDue() == 1)
            let status = try #require(try await jobs.list().first)
            #expect(status.attempts == attempt)
            #expect(status.lastError == "the receiver is down")
            #expect(await jobs.runDue() == 0, "not before its backoff")
            waits.append(status.runAtUnixMs - clock.nowUnixMs)
            clock.advance(by: .milliseconds(Int(status.runAtUnixMs - clock.nowUnixMs)))
        }
        #expect(await jobs.runDue() == 1)
        #expect(try await jobs.list().isEmpty)
        #expect(handler.runs == Array(repeating: "work-1", count: 4), "the idempotency key reaches every attempt")
        // 1 s, 2 s, 4 s, each ±20%.
        for (index, wait) in waits.enumerated() {
            let base = 1000 << index
            #expect((Int64(Double(base) * 0.8)...Int64(Double(base) * 1.2)).contains(wait), "wait \(index + 1): \(wait) ms")
        }
    }

    @Test("A test clock's jump past a retry's backoff wakes the running worker: the job runs again without waiting for the idle poll")
    func clockJumpWakesWorker() async throws {
        let database = try database()
        let clock = TestClock()
        var configuration = JobQueue.Configuration()
        configuration.idlePoll = .seconds(3600)  // only the jump can wake the worker within the test
        let jobs = JobQueue(database: database, clock: clock, configuration: configuration)
        let handler = ScriptedHandler(failures: 1)
        jobs.register(handler)
        jobs.start(logger: .init(label: "test"))
        try await database.write { db in _ = try jobs.enqueue(kind: "test.work", idempotencyKey: "work-1", in: db) }
        #expect(await eventually { (try? await jobs.list().first?.attempts) == 1 }, "the first attempt failed and waits out its backoff")
        clock.advance(by: .seconds(10))
        #expect(await eventually { handler.runs.count == 2 })
        #expect(await eventually { (try? await jobs.list().isEmpty) == true })
        await jobs.stop()
        database.close()
    }

    @Test("After max attempts, or at once for a permanent failure, a job is dead: listed and counted")
    func deadLetters() async throws {
        let database = try database()
        let clock = TestClock()
        var configuration = JobQueue.Configuration()
        configuration.maxAttempts = 2
        let jobs = JobQueue(database: database, clock: clock, configuration: configuration)
        jobs.register(ScriptedHandler(failures: 100))
        jobs.register(ScriptedHandler(kind: "test.poison", permanent: true))
        try await database.write { db in
            try jobs.enqueue(kind: "test.work", idempotencyKey: "flaky", in: db)
            try jobs.enqueue(kind: "test.poison", idempotencyKey: "poison", in: db)
        }
        #expect(await jobs.runDue() == 2)
        clock.advance(by: .seconds(60))
        #expect(await jobs.runDue() == 1)
        let dead = try await jobs.list(state: "dead")
        #expect(Set(dead.map(\.kind)) == ["test.work", "test.poison"])
        #expect(dead.first { $0.kind == "test.poison" }?.attempts == 1)
        #expect(dead.first { $0.kind == "test.poison" }?.lastError == "the payload can never be processed")
        let gauges = await jobs.gauges()
        #expect(gauges.first { $0.name == "jobs_dead" }?.value == 2)
        clock.advance(by: .seconds(3600))
        #expect(await jobs.runDue() == 0, "dead jobs never run again")
    }

    @Test("A job commits with its action or not at all, and a key is enqueued once")
    func transactionalAndIdempotent() async throws {
        let database = try database()
        let jobs = JobQueue(database: database, clock: TestClock())
        await #expect(throws: StorageError.self) {
            try await database.write { db in
                try jobs.enqueue(kind: "test.work", idempotencyKey: "rolled-back", in: db)
                throw StorageError("the action failed")
            }
        }
        #expect(try await jobs.list().isEmpty)
        let (first, second) = try await database.write { db in
            (try jobs.enqueue(kind: "test.work", idempotencyKey: "once", in: db), try jobs.enqueue(kind: "test.work", idempotencyKey: "once", in: db))
        }
        #expect(first == second)
        #expect(try await jobs.list().count == 1)
    }

    @Test("A job that was running when the process died runs again after a restart; the worker stops cleanly")
    func survivesRestart() async throws {
        let database = try database()
        let clock = TestClock()
        do {
            let jobs = JobQueue(database: database, clock: clock)
            try await database.write { db in _ = try jobs.enqueue(kind: "test.work", idempotencyKey: "interrupted", in: db) }
            try await database.write { db in _ = try db.execute("UPDATE jobs SET state = 'running'") }  // leased, then killed
            database.close()
        }
        let reopened = try Database(path: directory.appendingPathComponent("service.sqlite").path)
        let jobs = JobQueue(database: reopened, clock: clock)
        let handler = ScriptedHandler()
        jobs.register(handler)
        jobs.start(logger: .init(label: "test"))
        #expect(await eventually { handler.runs == ["interrupted"] })
        #expect(await eventually { (try? await jobs.list().isEmpty) == true })
        await jobs.stop()
        reopened.close()
    }

    @Test("Each kind has its own worker: a kind stuck on a slow peer does not hold up another's jobs")
    func kindsDoNotBlockEachOther() async throws {
        let database = try database()
        let jobs = JobQueue(database: database, clock: TestClock())
        /// Runs until released.
        final class Stuck: JobHandler {
            let kind = "test.stuck"
            let started = Locked(false)
            let release = Locked<CheckedContinuation<Void, Never>?>(nil)
            func run(_ job: Job) async throws -> JobOutcome {
                await withCheckedContinuation { continuation in
                    release.withLock { $0 = continuation }
                    started.withLock { $0 = true }
                }
                return .done
            }
        }
        let stuck = Stuck(), quick = ScriptedHandler(kind: "test.quick")
        jobs.register(stuck)
        jobs.register(quick)
        jobs.start(logger: .init(label: "test"))
        try await database.write { db in _ = try jobs.enqueue(kind: "test.stuck", idempotencyKey: "slow", in: db) }
        #expect(await eventually { stuck.started.withLock { $0 } })
        try await database.write { db in _ = try jobs.enqueue(kind: "test.quick", idempotencyKey: "fast", in: db) }
        #expect(await eventually { quick.runs == ["fast"] }, "ran while the other kind's job was still running")
        stuck.release.withLock { $0?.resume(); $0 = nil }
        #expect(await eventually { (try? await jobs.list().isEmpty) == true })
        await jobs.stop()
    }

    @Test("Enqueued again while running: it runs once more, so nothing added meanwhile is left behind")
    func rerunWhenEnqueuedWhileRunning() async throws {
        let database = try database()
        let jobs = JobQueue(database: database, clock: TestClock())
        final class Reentrant: JobHandler {
            let kind = "test.coalesced"
            let jobs: JobQueue
            let database: Database
            let runs = Locked(0)
            init(jobs: JobQueue, database: Database) { self.jobs = jobs; self.database = database }
            func run(_ job: Job) async throws -> JobOutcome {
                let first = runs.withLock { $0 += 1; return $0 == 1 }
                if first {  // new work arrives while this run is under way
                    try await database.write { db in _ = try self.jobs.enqueue(kind: "test.coalesced", idempotencyKey: "coalesced", in: db) }
                }
                return .done
            }
        }
        let handler = Reentrant(jobs: jobs, database: database)
        jobs.register(handler)
        try await database.write { db in _ = try jobs.enqueue(kind: "test.coalesced", idempotencyKey: "coalesced", in: db) }
        #expect(await jobs.runDue() == 2)
        #expect(handler.runs.withLock { $0 } == 2)
        #expect(try await jobs.list().isEmpty)
    }

    @Test("Schedules: every N minutes, and daily at a time in a time zone, across the clocks changing")
    func schedules() async throws {
        let database = try database()
        // Saturday 2026-03-28 12:00 UTC; the UK clocks go forward on Sunday 29 March at 01:00 UTC.
        let clock = TestClock(unixMs: 1_774_699_200_000)
        let jobs = JobQueue(database: database, clock: clock)
        let every = ScriptedHandler(kind: "test.every")
        let daily = ScriptedHandler(kind: "test.daily")
        jobs.register(every)
        jobs.register(daily)
        jobs.schedule("sweep", every: .seconds(600), kind: "test.every")
        jobs.schedule("retention", dailyAt: 2, 30, in: TimeZone(identifier: "Europe/London")!, kind: "test.daily")
        #expect(await jobs.runDue() == 0, "the first run is one interval away")
        clock.advance(by: .seconds(599))
        #expect(await jobs.runDue() == 0)
        clock.advance(by: .seconds(1))
        #expect(await jobs.runDue() == 1)
        #expect(every.runs.count == 1)
        // 02:30 London on Sunday 29 March is 01:30 UTC (BST began at 01:00 UTC).
        let sunday0130UTC: Int64 = 1_774_747_800_000
        clock.advance(by: .milliseconds(Int(sunday0130UTC - clock.nowUnixMs - 1)))
        _ = await jobs.runDue()
        #expect(daily.runs.isEmpty)
        clock.advance(by: .milliseconds(1))
        _ = await jobs.runDue()
        #expect(daily.runs.count == 1)
    }

    /// Work on a named thing, as a service declares it.
    struct Rebuild: IdentifiedJob {
        static let kind = "test.rebuild"
        let id: String
    }

    /// Records what it ran.
    final class RebuildHandler: DurableJobHandler, Sendable {
        let ran = Locked<[String]>([])
        func run(_ work: Rebuild, job: Job) async throws -> JobOutcome {
            ran.withLock { $0.append(work.id) }
            return .done
        }
    }

    @Test("Typed jobs: the payload is the job's JSON; an older release's raw id still runs; a payload that is neither is dead-lettered at once")
    func typedPayloads() async throws {
        let database = try database()
        let jobs = JobQueue(database: database, clock: TestClock())
        let handler = RebuildHandler()
        jobs.register(handler)
        try await database.write { db in
            try jobs.enqueue(Rebuild(id: "bundle_1"), idempotencyKey: "typed", in: db)
            // What a release before typed payloads left queued.
            try jobs.enqueue(kind: Rebuild.kind, idempotencyKey: "legacy", payload: Data("bundle_2".utf8), in: db)
            try jobs.enqueue(kind: Rebuild.kind, idempotencyKey: "garbage", payload: Data(#"{"identifier": 7}"#.utf8), in: db)
        }
        let stored = try await database.read { try $0.query("SELECT payload FROM jobs WHERE idempotency_key = 'typed'") }.first?.blob("payload")
        #expect(stored.map { String(decoding: $0, as: UTF8.self) } == #"{"id":"bundle_1"}"#)
        #expect(await jobs.runDue() == 3)
        #expect(handler.ran.withLock { $0 }.sorted() == ["bundle_1", "bundle_2"])
        let dead = try await jobs.list(state: "dead")
        #expect(dead.count == 1 && dead[0].attempts == 1)
        #expect(dead.first?.lastError == "the payload of this test.rebuild job cannot be read")
    }
}
