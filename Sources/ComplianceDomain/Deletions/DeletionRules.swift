import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import Foundation

/// Deleting a call everywhere (P10): the call record with its transcript and analysis in
/// transcript, its recordings in media. The deletion is a durable job, queued in the same
/// transaction as its row and started at once; it is retried until both services confirm,
/// whichever of the three services restarts meanwhile, and each confirmation is written as it
/// arrives so a retry never asks twice for what is done.
struct DeletionRules: Sendable {

    let repository: any ComplianceRepository
    let jobs: JobQueue
    let outbox: AuditOutbox
    let clock: any WallClock

    /// Queues the deletion of `callID` (or answers the one already queued for it). A call the
    /// organisation does not have — another firm's, or none — is refused as not found before
    /// anything is queued or audited, the same for both (P6, P8): what the organisation has is
    /// a call transcript knows, recordings media holds for it, or a deletion of it already asked.
    func delete(_ callID: String, org: String, reason: String, by actor: String, services: any CallDataServices) async throws -> DeletionRow {
        try OrganizationID.validate(org)
        try CallID.validate(callID)
        let reason = try DomainText.line(reason, "reason", max: 200)
        let askedBefore = try await repository.read { tx in try tx.deletion(org: org, callID: callID) } != nil
        let known = try await askedBefore ? true : services.hasCall(org: org, callID: callID)
        guard known else {
            throw DomainError.notFound("call \(callID) not found in organisation \(org)")
        }
        return try await repository.write { tx in try queue(callID, org: org, reason: reason, request: "", by: actor, in: tx) }
    }

    /// Inside the caller's transaction: the row, its job and the audit event commit together.
    func queue(_ callID: String, org: String, reason: String, request: String, by actor: String, in tx: any ComplianceTransaction) throws -> DeletionRow {
        // The deletion under way answers again; once one finished, asking again deletes again
        // (a recording may have been uploaded for the call since).
        if let existing = try tx.deletion(org: org, callID: callID), existing.finishedAt == 0 { return existing }
        var row = DeletionRow(id: "del_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""), org: org, callID: callID,
                              requestID: request, reason: reason, requestedBy: actor, requestedAt: clock.nowUnixMs)
        row.jobID = try jobs.enqueue(CallDeletion(id: row.id), idempotencyKey: "deletion:\(row.id)", in: tx.connection)
        try tx.insert(row)
        try outbox.record(AuditRecord(org: org, actor: actor, action: .callDeletionRequested, resource: .call(callID), outcome: .success,
                                      detail: "deletion \(row.id)" + (request.isEmpty ? "" : " for subject request \(request)")
                                          + (reason.isEmpty ? "" : "; reason: \(reason)")),
                          in: tx.connection)
        return row
    }

    func deletion(_ id: String, org: String) async throws -> (row: DeletionRow, job: JobQueue.Status?) {
        try OrganizationID.validate(org)
        let found = try await repository.read { [jobs] tx -> (DeletionRow, JobQueue.Status?)? in
            guard let row = try tx.deletion(id), row.org == org else { return nil }
            return (row, row.finishedAt == 0 ? try jobs.status(of: row.jobID, in: tx.connection) : nil)
        }
        guard let found else { throw DomainError.notFound("deletion \(id.prefix(64)) not found in organisation \(org)") }
        return found
    }

    func deletions(org: String, limit: Int) async throws -> [(row: DeletionRow, job: JobQueue.Status?)] {
        try OrganizationID.validate(org)
        let limit = limit == 0 ? 100 : min(limit, 500)
        return try await repository.read { [jobs] tx in
            try tx.deletions(org: org, limit: limit).map { ($0, $0.finishedAt == 0 ? try jobs.status(of: $0.jobID, in: tx.connection) : nil) }
        }
    }

    /// One attempt: asks each service that has not confirmed yet, writing each confirmation as
    /// it comes; finishes (and confirms a subject request's erasure when it was the last of
    /// its deletions) when both have.
    func attempt(_ id: String, services: any CallDataServices) async throws {
        guard var row = try await repository.read({ tx in try tx.deletion(id) }) else {
            throw PermanentJobFailure("deletion \(id) is unknown")
        }
        guard row.finishedAt == 0 else { return }
        if row.transcriptConfirmedAt == 0 {
            _ = try await services.deleteCallRecord(org: row.org, callID: row.callID)
            row.transcriptConfirmedAt = clock.nowUnixMs
            try await repository.write { [row] tx in try tx.update(row) }
        }
        if row.mediaConfirmedAt == 0 {
            row.recordingsDeleted = try await services.deleteRecordings(org: row.org, callID: row.callID)
            row.mediaConfirmedAt = clock.nowUnixMs
        }
        row.finishedAt = clock.nowUnixMs
        try await repository.write { [row, outbox, clock] tx in
            try tx.update(row)
            try outbox.record(AuditRecord(org: row.org, actor: ComplianceService.actor, action: .callDeleted, resource: .call(row.callID),
                                          outcome: .success, detail: "deletion \(row.id); recordings deleted: \(row.recordingsDeleted)"),
                              in: tx.connection)
            guard !row.requestID.isEmpty, try tx.deletions(request: row.requestID).allSatisfy({ $0.finishedAt != 0 }),
                  let (request, sealed) = try tx.subjectRequest(row.requestID, org: row.org), request.erasureConfirmedAt == 0 else { return }
            var confirmed = request
            confirmed.erasureConfirmedAt = clock.nowUnixMs
            try tx.update(confirmed, sealedDetails: sealed)
            try outbox.record(AuditRecord(org: row.org, actor: ComplianceService.actor, action: .subjectRequestErasureConfirmed,
                                          resource: .subjectRequest(row.requestID), outcome: .success), in: tx.connection)
        }
    }
}

/// A call's deletion across services.
struct CallDeletion: IdentifiedJob {
    static let kind = "deletion.call"
    let id: String
}

struct DeletionJob: DurableJobHandler {
    let rules: DeletionRules
    let services: any CallDataServices

    func run(_ work: CallDeletion, job: Job) async throws -> JobOutcome {
        try await rules.attempt(work.id, services: services)
        return .done
    }
}

