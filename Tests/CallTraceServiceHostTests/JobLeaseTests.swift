@testable import CallTraceServiceHost
import CallTraceStorage
import CallTraceSync
import CallTraceTestSupport
import Foundation
import Testing

/// Issue 34: two replicas of a service share one PostgreSQL database and its job queue.
@Suite("Durable jobs shared by replicas on PostgreSQL: leases, takeover, schedules run once")
struct JobLeaseTests {
    /// Runs until released, counting its runs; `started` once a run is under way.
    final class Held: JobHandler {
        let kind = "test.held"
        let runs = Locked(0)
        let release = Locked<CheckedContinuation<Void, Never>?>(nil)
        let holds: Bool
        init(holds: Bool) { self.holds = holds }
        var started: Bool { runs.withLock { $0 } > 0 }
        func run(_ job: Job) async throws -> JobOutcome {
            runs.withLock { $0 += 1 }
            if holds { await withCheckedContinuation { continuation in release.withLock { $0 = continuation } } }
            return .done
        }
        func letGo() { release.withLock { $0?.resume(); $0 = nil } }
        var waiting: Bool { release.withLock { $0 != nil } }
    }

    /// Two replicas' databases (two `Database`s on one PostgreSQL database) and one clock.
    private func withReplicas(_ body: (Database, Database, TestClock) async throws -> Void) async throws {
        let pki = try TemporaryPKI()
        try await withTemporaryPostgres(pki: pki) { server in
            let url = try server.newDatabase(named: "jobs_\(UUID().uuidString.prefix(8).lowercased())")
            let one = try Database.open(url, passwordFile: server.passwordFile)
            let two = try Database.open(url, passwordFile: server.passwordFile)
            defer { one.close(); two.close() }
            try one.migrate([], tracks: [SharedSchema.track])
            try two.migrate([], tracks: [SharedSchema.track])
            try await body(one, two, TestClock())
        }
    }

    @Test("A replica dies in the middle of a job: the job stays its own until the lease runs out, then the other takes it over and finishes it once; the dead one's late outcome records nothing")
    func takeover() async throws {
        try await withReplicas { one, two, clock in
            let first = JobQueue(database: one, clock: clock), second = JobQueue(database: two, clock: clock)
            let dying = Held(holds: true), surviving = Held(holds: false)
            first.register(dying)
            second.register(surviving)
            try await one.write { db in _ = try first.enqueue(kind: "test.held", idempotencyKey: "work-1", in: db) }
            let running = Task { await first.runDue() }
            #expect(await eventually { dying.waiting })
            #expect(await second.runDue() == 0, "leased to the first replica")
            clock.advance(by: .seconds(30))
            #expect(await second.runDue() == 0, "its lease has 30 s to go")

            // The first replica is gone (its heartbeat stops); past the lease, the second takes over.
            clock.advance(by: .seconds(31))
            #expect(await second.runDue() == 1)
            #expect(surviving.runs.withLock { $0 } == 1)
            #expect(try await second.list().isEmpty, "done, once")

            // The first replica's run ends after all (it was slow, not dead): nothing is recorded,
            // the job is not brought back.
            dying.letGo()
            #expect(await running.value == 1)
            #expect(try await first.list().isEmpty)
            #expect(dying.runs.withLock { $0 } == 1 && surviving.runs.withLock { $0 } == 1)
        }
    }

    @Test("While a replica lives its heartbeat keeps its lease, however long the job runs; at a restart a replica does not take back jobs another is running")
    func heartbeatKeepsTheLease() async throws {
        try await withReplicas { one, two, clock in
            var configuration = JobQueue.Configuration()
            configuration.lease = .seconds(60)
            let first = JobQueue(database: one, clock: clock, configuration: configuration), second = JobQueue(database: two, clock: clock)
            let held = Held(holds: true), other = Held(holds: false)
            first.register(held)
            second.register(other)
            try await one.write { db in _ = try first.enqueue(kind: "test.held", idempotencyKey: "long", in: db) }
            let running = Task { await first.runDue() }
            #expect(await eventually { held.waiting })
            for _ in 0..<5 {  // five minutes of running, renewed each minute
                clock.advance(by: .seconds(59))
                try await first.renewLeases()
                second.start(logger: .init(label: "test"))  // a restart of the other replica
                await second.stop()
                #expect(await second.runDue() == 0)
            }
            #expect(other.runs.withLock { $0 } == 0)
            held.letGo()
            #expect(await running.value == 1)
            #expect(try await first.list().isEmpty)
        }
    }

    @Test("Both replicas run the daily schedule: its work is enqueued once and runs once")
    func scheduleRunsOnce() async throws {
        try await withReplicas { one, two, clock in
            let queues = [JobQueue(database: one, clock: clock), JobQueue(database: two, clock: clock)]
            let handlers = [Held(holds: false), Held(holds: false)]
            for (queue, handler) in zip(queues, handlers) {
                queue.register(handler)
                queue.schedule("sweep", every: .seconds(3600), kind: "test.held")
            }
            for queue in queues { #expect(await queue.runDue() == 0, "the schedule is first seen") }
            for day in 1...3 {
                clock.advance(by: .seconds(3601))
                async let a = queues[0].runDue()
                async let b = queues[1].runDue()
                #expect(await a + b == 1, "hour \(day)")
            }
            #expect(handlers.map { $0.runs.withLock { $0 } }.reduce(0, +) == 3)
        }
    }
}
