import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import ComplianceDocuments
import Foundation

/// Offboarding (P11): a full export first; once the firm's admin confirms, media and transcript
/// purge the organisation and destroy its keys, compliance removes its records and trail (after
/// noting the chain's head) and shreds its keys, identity marks it offboarded, and compliance
/// signs a deletion certificate. Each step's result is written as it completes; the purge runs
/// in the confirming call and, if anything fails, as a durable job that resumes where it stood.
struct OffboardingRules: Sendable {
    /// The durable job waits this long before taking over from the confirming call.
    static let takeOver: Int64 = 5 * 60_000

    let repository: any ComplianceRepository
    let chain: any AuditChainRepository
    let bundles: BundleRules
    let jobs: JobQueue
    let outbox: AuditOutbox
    let clock: any WallClock
    let keys: KeyRing
    let signer: Ed25519Signer

    func start(org: String, by actor: String) async throws -> OffboardingRow {
        try OrganizationID.validate(org)
        let now = clock.nowUnixMs
        return try await repository.write { [bundles, outbox] tx in
            if var existing = try tx.offboarding(org: org) {
                // Not confirmed yet and its export failed or expired: a fresh export.
                guard existing.confirmedAt == 0, let bundle = try tx.bundle(existing.exportBundleID), [.failed, .expired].contains(bundle.state) else {
                    return existing
                }
                existing.exportBundleID = try bundles.queue(.offboarding, org: org, subject: org, by: actor, in: tx).id
                try tx.update(existing)
                return existing
            }
            let bundle = try bundles.queue(.offboarding, org: org, subject: org, by: actor, in: tx)
            let row = OffboardingRow(id: "off_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""), org: org,
                                     exportBundleID: bundle.id, startedBy: actor, startedAt: now)
            try tx.insert(row)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .offboardingStarted, resource: .organisation(org), outcome: .success,
                                          detail: "offboarding \(row.id); export bundle \(bundle.id)"), in: tx.connection)
            return row
        }
    }

    func offboarding(org: String) async throws -> (row: OffboardingRow, bundle: BundleRow?, job: JobQueue.Status?) {
        try OrganizationID.validate(org)
        let found = try await repository.read { [jobs] tx -> (OffboardingRow, BundleRow?, JobQueue.Status?)? in
            guard let row = try tx.offboarding(org: org) else { return nil }
            return (row, try tx.bundle(row.exportBundleID), row.jobID.isEmpty ? nil : try jobs.status(of: row.jobID, in: tx.connection))
        }
        guard let found else { throw DomainError.notFound("organisation \(org) is not being offboarded") }
        return found
    }

    /// The admin's confirmation: the export must be ready; the purge starts now.
    func confirm(org: String, id: String, confirmOrg: String, by actor: String, services: any CallDataServices) async throws -> OffboardingRow {
        guard confirmOrg == org else { throw DomainError.invalid("confirm_org_id must repeat the organisation id: \(org)") }
        let now = clock.nowUnixMs
        let row = try await repository.write { [jobs, outbox] tx -> OffboardingRow in
            guard var row = try tx.offboarding(org: org), row.id == id else { throw DomainError.notFound("offboarding \(id.prefix(64)) not found") }
            guard row.confirmedAt == 0 else { return row }
            guard let bundle = try tx.bundle(row.exportBundleID), bundle.state == .ready else {
                throw DomainError.wrongState("the export bundle \(row.exportBundleID) is not ready; fetch it before confirming")
            }
            row.export = (bundle.sha256, bundle.sizeBytes)
            row.confirmedBy = actor
            row.confirmedAt = now
            row.jobID = try jobs.enqueue(OffboardingPurge(id: org), idempotencyKey: "offboarding:\(row.id)",
                                         runAt: now + Self.takeOver, in: tx.connection)
            try tx.update(row)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .offboardingConfirmed, resource: .organisation(org), outcome: .success,
                                          detail: "offboarding \(row.id)"), in: tx.connection)
            return row
        }
        guard row.completedAt == 0 else { return row }
        do {
            return try await purge(org: org, services: services)
        } catch {
            return try await offboarding(org: org).row  // the job carries on
        }
    }

    /// Every step not done yet, in order; then the certificate.
    @discardableResult
    func purge(org: String, services: any CallDataServices) async throws -> OffboardingRow {
        guard var row = try await repository.read({ tx in try tx.offboarding(org: org) }), row.confirmedAt > 0 else {
            throw PermanentJobFailure("organisation \(org) has no confirmed offboarding")
        }
        if row.media.at == 0 {
            let purged = try await services.purgeMedia(org: org)
            row.media = (purged.recordings, purged.shareLinks, clock.nowUnixMs)
            try await save(row)
        }
        if row.transcript.at == 0 {
            let purged = try await services.purgeTranscript(org: org)
            row.transcript = (purged.calls, purged.trackingNumbers, purged.suppressions, clock.nowUnixMs)
            try await save(row)
        }
        if row.compliance.at == 0 {
            try await bundles.removeFiles(org: org)
            let head = try await chain.read { tx in try tx.head(org: org) }
            let events = try await chain.write { tx in try tx.deleteAll(org: org) }
            row.compliance = (events, head?.link.hexString ?? "", clock.nowUnixMs)
            let done = row
            try await repository.write { tx in
                _ = try tx.deleteRecords(org: org)
                try tx.update(done)
            }
            try keys.shred(org: org)  // last: every copy of what it sealed is unreadable from here on
        }
        if row.identityAt == 0 {
            row.identity = try await services.markOffboarded(org: org)
            row.identityAt = clock.nowUnixMs
            try await save(row)
        }
        if row.certificate.isEmpty {
            row.completedAt = clock.nowUnixMs
            row.certificate = try DeletionCertificate.sign(row, with: signer)
            let finished = row
            return try await repository.write { tx in
                // Whoever finishes first (this call or the job) writes the certificate; the other reads it.
                if let stored = try tx.offboarding(org: org), !stored.certificate.isEmpty { return stored }
                try tx.update(finished)
                return finished
            }
        }
        return row
    }

    private func save(_ row: OffboardingRow) async throws {
        try await repository.write { tx in try tx.update(row) }
    }
}

/// An offboarded organisation's data to purge everywhere (`id`: the organisation).
struct OffboardingPurge: IdentifiedJob {
    static let kind = "offboarding.purge"
    let id: String
}

struct OffboardingJob: DurableJobHandler {
    let rules: OffboardingRules
    let services: any CallDataServices

    func run(_ work: OffboardingPurge, job: Job) async throws -> JobOutcome {
        try await rules.purge(org: work.id, services: services)
        return .done
    }
}

extension DeletionCertificate {
    static func sign(_ row: OffboardingRow, with signer: Ed25519Signer) throws -> String {
        let document: [String: Any] = [
            "certificate_id": row.id, "organisation": row.org,
            "started": ["at": iso(row.startedAt), "by": row.startedBy],
            "confirmed": ["at": iso(row.confirmedAt), "by": row.confirmedBy],
            "completed_at": iso(row.completedAt),
            "export": ["bundle_id": row.exportBundleID, "sha256": row.export.sha256, "bytes": row.export.bytes],
            "services": [
                "media": ["recordings_purged": row.media.recordings, "share_links_purged": row.media.shareLinks, "at": iso(row.media.at),
                          "keys": "organisation key shredded"],
                "transcript": ["calls_purged": row.transcript.calls, "tracking_numbers_purged": row.transcript.trackingNumbers,
                               "suppressions_purged": row.transcript.suppressions, "at": iso(row.transcript.at), "keys": "organisation key shredded"],
                "compliance": ["audit_events_purged": row.compliance.auditEvents, "audit_chain_head": row.compliance.head, "at": iso(row.compliance.at),
                               "keys": "organisation key shredded"],
                "identity": ["offboarded_at": iso(row.identityAt), "users_deleted": row.identity.users,
                             "invitations_deleted": row.identity.invitations, "sessions_deleted": row.identity.sessions,
                             "support_grants_deleted": row.identity.supportGrants, "keys": "organisation key shredded"],
            ],
        ]
        return try SignedDocument.sign(title: title, document, with: signer)
    }
}
