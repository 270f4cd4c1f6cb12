import CallTraceStorage
import ComplianceDeadlines
import Foundation

/// An organisation's offboarding (P11): each step's result is written as it completes, so a
/// purge resumed after a restart asks only for what is not done.
struct OffboardingRow: Sendable {
    let id: String
    let org: String
    var exportBundleID: String
    let startedBy: String
    let startedAt: Int64
    var confirmedBy = ""
    var confirmedAt: Int64 = 0
    var media: (recordings: Int, shareLinks: Int, at: Int64) = (0, 0, 0)
    var transcript: (calls: Int, trackingNumbers: Int, suppressions: Int, at: Int64) = (0, 0, 0, 0)
    var compliance: (auditEvents: Int, head: String, at: Int64) = (0, "", 0)
    var identityAt: Int64 = 0
    /// What identity deleted of the organisation's people.
    var identity: (users: Int, invitations: Int, sessions: Int, supportGrants: Int) = (0, 0, 0, 0)
    /// The export the organisation confirmed it holds, recorded at confirmation (the bundle's
    /// row and file are purged before the certificate is signed).
    var export: (sha256: String, bytes: UInt64) = ("", 0)
    var completedAt: Int64 = 0
    var certificate = ""
    var jobID = ""
}

/// Offboardings, each step written as it completes.
protocol OffboardingRecords {
    func insert(_ offboarding: OffboardingRow) throws
    func update(_ offboarding: OffboardingRow) throws
    func offboarding(org: String) throws -> OffboardingRow?
}

extension SQLiteComplianceRepository.Transaction: OffboardingRecords {
    func insert(_ o: OffboardingRow) throws {
        try connection.execute("""
            INSERT INTO offboardings (id, org_id, export_bundle_id, started_by, started_at_unix_ms, confirmed_by, confirmed_at_unix_ms,
                media_recordings, media_share_links, media_at_unix_ms, transcript_calls, transcript_tracking_numbers, transcript_suppressions,
                transcript_at_unix_ms, compliance_audit_events, compliance_audit_head, compliance_at_unix_ms, identity_at_unix_ms,
                completed_at_unix_ms, certificate, job_id)
            VALUES (?, ?, ?, ?, ?, '', 0, 0, 0, 0, 0, 0, 0, 0, 0, '', 0, 0, 0, '', '')
            """, o.id, o.org, o.exportBundleID, o.startedBy, o.startedAt)
        try update(o)
    }

    func update(_ o: OffboardingRow) throws {
        try connection.execute("""
            UPDATE offboardings SET export_bundle_id = ?, confirmed_by = ?, confirmed_at_unix_ms = ?, media_recordings = ?, media_share_links = ?, media_at_unix_ms = ?,
                transcript_calls = ?, transcript_tracking_numbers = ?, transcript_suppressions = ?, transcript_at_unix_ms = ?,
                compliance_audit_events = ?, compliance_audit_head = ?, compliance_at_unix_ms = ?, identity_at_unix_ms = ?,
                completed_at_unix_ms = ?, certificate = ?, job_id = ?, export_sha256 = ?, export_bytes = ?,
                identity_users = ?, identity_invitations = ?, identity_sessions = ?, identity_support_grants = ?
            WHERE id = ?
            """, o.exportBundleID, o.confirmedBy, o.confirmedAt, Int64(o.media.recordings), Int64(o.media.shareLinks), o.media.at, Int64(o.transcript.calls),
            Int64(o.transcript.trackingNumbers), Int64(o.transcript.suppressions), o.transcript.at, Int64(o.compliance.auditEvents),
            o.compliance.head, o.compliance.at, o.identityAt, o.completedAt, o.certificate, o.jobID, o.export.sha256, Int64(o.export.bytes),
            Int64(o.identity.users), Int64(o.identity.invitations), Int64(o.identity.sessions), Int64(o.identity.supportGrants), o.id)
    }

    func offboarding(org: String) throws -> OffboardingRow? {
        try connection.query("SELECT * FROM offboardings WHERE org_id = ?", org).first.flatMap { row in
            guard let id = row.text("id"), let org = row.text("org_id") else { return nil }
            var o = OffboardingRow(id: id, org: org, exportBundleID: row.text("export_bundle_id") ?? "", startedBy: row.text("started_by") ?? "",
                                   startedAt: row.int("started_at_unix_ms") ?? 0)
            o.confirmedBy = row.text("confirmed_by") ?? ""
            o.confirmedAt = row.int("confirmed_at_unix_ms") ?? 0
            o.media = (Int(row.int("media_recordings") ?? 0), Int(row.int("media_share_links") ?? 0), row.int("media_at_unix_ms") ?? 0)
            o.transcript = (Int(row.int("transcript_calls") ?? 0), Int(row.int("transcript_tracking_numbers") ?? 0),
                            Int(row.int("transcript_suppressions") ?? 0), row.int("transcript_at_unix_ms") ?? 0)
            o.compliance = (Int(row.int("compliance_audit_events") ?? 0), row.text("compliance_audit_head") ?? "", row.int("compliance_at_unix_ms") ?? 0)
            o.identityAt = row.int("identity_at_unix_ms") ?? 0
            o.identity = (Int(row.int("identity_users") ?? 0), Int(row.int("identity_invitations") ?? 0),
                          Int(row.int("identity_sessions") ?? 0), Int(row.int("identity_support_grants") ?? 0))
            o.export = (row.text("export_sha256") ?? "", UInt64(row.int("export_bytes") ?? 0))
            o.completedAt = row.int("completed_at_unix_ms") ?? 0
            o.certificate = row.text("certificate") ?? ""
            o.jobID = row.text("job_id") ?? ""
            return o
        }
    }
}
