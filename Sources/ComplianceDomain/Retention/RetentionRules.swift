import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import Foundation

/// Retention (P9): each organisation's policy, and the runs that enforce it — daily at 02:00
/// London time for every organisation whose policy removes something, and on demand. A run is
/// a durable job that works one batch at a time (recordings, then transcripts and summaries,
/// then call records), writing its counts after every batch, so a run interrupted by a restart
/// of any service carries on where it stood; its row is the receipt, and finishing is audited.
struct RetentionRules: Sendable {
    static let maxMonths = 240

    let repository: any ComplianceRepository
    let jobs: JobQueue
    let outbox: AuditOutbox
    let clock: any WallClock

    // MARK: The policy

    func policy(org: String) async throws -> RetentionPolicyRow {
        try OrganizationID.validate(org)
        return try await repository.read { tx in try tx.retentionPolicy(org: org) } ?? .keepAll
    }

    /// Checks and stores a policy; the error says which rule it breaks.
    func setPolicy(_ requested: RetentionPolicyRow, org: String, by actor: String) async throws -> RetentionPolicyRow {
        try OrganizationID.validate(org)
        try Self.check(requested)
        var policy = requested
        policy.updatedAt = clock.nowUnixMs
        policy.updatedBy = actor
        try await repository.write { [outbox, policy] tx in
            try tx.put(policy, org: org)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .retentionPolicySet, resource: .organisation(org), outcome: .success,
                                          detail: "recordings=\(policy.recordingsMonths)m; transcripts=\(policy.transcriptsMonths)m; "
                                              + "call_records=\(policy.callRecordsMonths)m (0: kept while active)"), in: tx.connection)
        }
        return policy
    }

    static func check(_ policy: RetentionPolicyRow) throws {
        for (months, name) in [(policy.recordingsMonths, "recordings"), (policy.transcriptsMonths, "transcripts"),
                               (policy.callRecordsMonths, "call records")] where !(0...maxMonths).contains(months) {
            throw DomainError.invalid("\(name): keep for 1 to \(maxMonths) months, or 0 to keep while the account is active")
        }
        let calls = policy.callRecordsMonths
        guard calls > 0 else { return }
        for (months, name) in [(policy.recordingsMonths, "recordings"), (policy.transcriptsMonths, "transcripts")]
        where months == 0 || months > calls {
            throw DomainError.invalid(
                "\(name) cannot outlive the call records they belong to: with call records kept \(calls) months, keep \(name) 1 to \(calls) months")
        }
    }

    /// The time `months` calendar months before `now` (UTC); 0 when the kind is kept.
    static func cutoff(months: Int, before now: Int64) -> Int64 {
        guard months > 0 else { return 0 }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0)!
        let date = Date(timeIntervalSince1970: Double(now) / 1000)
        return Int64((calendar.date(byAdding: .month, value: -months, to: date) ?? date).timeIntervalSince1970 * 1000)
    }

    // MARK: Runs

    /// Queues a run of `org`'s policy now, with cutoffs from this moment; a run already queued
    /// or under way is answered instead.
    func run(org: String, by actor: String) async throws -> RetentionRunRow {
        try OrganizationID.validate(org)
        let now = clock.nowUnixMs
        return try await repository.write { [jobs] tx in
            if let running = try tx.unfinishedRetentionRun(org: org) { return running }
            let policy = try tx.retentionPolicy(org: org) ?? .keepAll
            var run = RetentionRunRow(id: "ret_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""), org: org,
                                      phase: .recordings, requestedBy: actor, startedAt: now,
                                      recordingsBefore: Self.cutoff(months: policy.recordingsMonths, before: now),
                                      transcriptsBefore: Self.cutoff(months: policy.transcriptsMonths, before: now),
                                      callRecordsBefore: Self.cutoff(months: policy.callRecordsMonths, before: now))
            run.jobID = try jobs.enqueue(RetentionRun(id: run.id), idempotencyKey: "retention:\(run.id)", in: tx.connection)
            try tx.insert(run)
            return run
        }
    }

    /// The daily sweep: a run for every organisation whose policy removes something.
    func runAll() async throws -> Int {
        let orgs = try await repository.read { tx in try tx.orgsWithRetention() }
        for org in orgs { _ = try await run(org: org, by: "schedule") }
        return orgs.count
    }

    func runs(org: String, limit: Int) async throws -> [(run: RetentionRunRow, job: JobQueue.Status?)] {
        try OrganizationID.validate(org)
        let limit = limit == 0 ? 20 : min(limit, 100)
        return try await repository.read { [jobs] tx in
            try tx.retentionRuns(org: org, limit: limit).map { run in
                (run, run.finishedAt == 0 ? try jobs.status(of: run.jobID, in: tx.connection) : nil)
            }
        }
    }

    /// One step of a run: one batch of the phase it stands in. Answers whether more remains.
    func step(_ id: String, services: any CallDataServices) async throws -> Bool {
        guard var run = try await repository.read({ tx in try tx.retentionRun(id) }) else {
            throw PermanentJobFailure("retention run \(id) is unknown")
        }
        switch run.phase {
        case .recordings:
            if run.recordingsBefore > 0 {
                let batch = try await services.purgeRecordings(org: run.org, before: run.recordingsBefore)
                run.recordingsPurged += batch.purged
                run.recordingBytesPurged += batch.bytes
                if !batch.more { run.phase = .transcripts }
            } else {
                run.phase = .transcripts
            }
        case .transcripts:
            if run.transcriptsBefore > 0 {
                let batch = try await services.purgeTranscripts(org: run.org, before: run.transcriptsBefore)
                run.transcriptsPurged += batch.purged
                if !batch.more { run.phase = .callRecords }
            } else {
                run.phase = .callRecords
            }
        case .callRecords:
            if run.callRecordsBefore > 0 {
                let batch = try await services.purgeCalls(org: run.org, before: run.callRecordsBefore)
                run.callRecordsPurged += batch.purged
                if !batch.more { run.phase = .finished }
            } else {
                run.phase = .finished
            }
        case .finished:
            return false
        }
        if run.phase == .finished { run.finishedAt = clock.nowUnixMs }
        try await repository.write { [outbox, run] tx in
            try tx.update(run)
            guard run.phase == .finished else { return }
            try outbox.record(AuditRecord(org: run.org, actor: run.requestedBy == "schedule" ? ComplianceService.actor : run.requestedBy,
                                          action: .retentionRun, resource: .retentionRun(run.id), outcome: .success,
                                          detail: "recordings=\(run.recordingsPurged) (\(run.recordingBytesPurged) bytes); "
                                              + "transcripts=\(run.transcriptsPurged); call_records=\(run.callRecordsPurged)"),
                              in: tx.connection)
        }
        return run.phase != .finished
    }
}

/// Runs one retention run, a batch per step, until it finishes; retried with backoff while
/// media or transcript cannot answer.
struct RetentionRunJob: DurableJobHandler {
    let rules: RetentionRules
    let services: any CallDataServices

    func run(_ work: RetentionRun, job: Job) async throws -> JobOutcome {
        try await rules.step(work.id, services: services) ? .again : .done
    }
}

/// One organisation's retention run.
struct RetentionRun: IdentifiedJob {
    static let kind = "retention.run"
    let id: String
}

/// The daily sweep (scheduled): queues a run per organisation whose policy removes something.
struct RetentionDaily: PayloadFreeJob { static let kind = "retention.daily" }

struct RetentionDailyJob: DurableJobHandler {
    let rules: RetentionRules

    func run(_ work: RetentionDaily, job: Job) async throws -> JobOutcome {
        _ = try await rules.runAll()
        return .done
    }
}
