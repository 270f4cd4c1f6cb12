import CallTraceStorage
import ComplianceDeadlines
import Foundation

/// An exported bundle (subject access, offboarding, matter file): a sealed tar archive.
struct BundleRow: Sendable {
    enum Kind: Int, Sendable { case subjectAccess = 1, offboarding, matter }
    enum State: Int, Sendable { case building = 1, ready, failed, expired }
    let id: String
    let org: String
    let kind: Kind
    /// The subject request, the call, or the organisation.
    let subject: String
    var state: State
    let requestedBy: String
    let createdAt: Int64
    var readyAt: Int64 = 0
    var expiresAt: Int64 = 0
    var sizeBytes: UInt64 = 0
    var sha256 = ""
    var entries = 0
    var failure = ""
    var downloads = 0
    var jobID = ""
    /// Matter files: the firm's matter reference, and whether the call is deleted once exported.
    var matterReference = ""
    var deleteAfter = false
}

/// Exported bundles.
protocol BundleRecords {
    func insert(_ bundle: BundleRow) throws
    func update(_ bundle: BundleRow) throws
    func bundle(_ id: String) throws -> BundleRow?
    /// The newest bundle of `kind` for `subject` that is building or ready.
    func liveBundle(org: String, kind: BundleRow.Kind, subject: String) throws -> BundleRow?
    /// Ready bundles whose time is up.
    func expiredBundles(at now: Int64) throws -> [BundleRow]
    func bundles(org: String) throws -> [BundleRow]
}

extension SQLiteComplianceRepository.Transaction: BundleRecords {
    func insert(_ b: BundleRow) throws {
        try connection.execute("""
            INSERT INTO bundles (id, org_id, kind, subject, state, requested_by, created_at_unix_ms, ready_at_unix_ms, expires_at_unix_ms,
                size_bytes, sha256, entries, failure, downloads, job_id, matter_reference, delete_after)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, b.id, b.org, Int64(b.kind.rawValue), b.subject, Int64(b.state.rawValue), b.requestedBy, b.createdAt, b.readyAt, b.expiresAt,
            Int64(b.sizeBytes), b.sha256, Int64(b.entries), b.failure, Int64(b.downloads), b.jobID, b.matterReference, Int64(b.deleteAfter ? 1 : 0))
    }

    func update(_ b: BundleRow) throws {
        try connection.execute("""
            UPDATE bundles SET state = ?, ready_at_unix_ms = ?, expires_at_unix_ms = ?, size_bytes = ?, sha256 = ?, entries = ?, failure = ?,
                downloads = ?, job_id = ?, delete_after = ?
            WHERE id = ?
            """, Int64(b.state.rawValue), b.readyAt, b.expiresAt, Int64(b.sizeBytes), b.sha256, Int64(b.entries), b.failure, Int64(b.downloads),
            b.jobID, Int64(b.deleteAfter ? 1 : 0), b.id)
    }

    static let bundleColumns = """
        id, org_id, kind, subject, state, requested_by, created_at_unix_ms, ready_at_unix_ms, expires_at_unix_ms, size_bytes, sha256, entries,
        failure, downloads, job_id, matter_reference, delete_after
        """

    func bundle(_ id: String) throws -> BundleRow? {
        try connection.query("SELECT \(Self.bundleColumns) FROM bundles WHERE id = ?", id).first.flatMap(Self.bundle)
    }

    func liveBundle(org: String, kind: BundleRow.Kind, subject: String) throws -> BundleRow? {
        try connection.query("""
            SELECT \(Self.bundleColumns) FROM bundles WHERE org_id = ? AND kind = ? AND subject = ? AND state IN (1, 2)
            ORDER BY created_at_unix_ms DESC LIMIT 1
            """, org, Int64(kind.rawValue), subject).first.flatMap(Self.bundle)
    }

    func expiredBundles(at now: Int64) throws -> [BundleRow] {
        try connection.query("SELECT \(Self.bundleColumns) FROM bundles WHERE state = 2 AND expires_at_unix_ms <= ?", now).compactMap(Self.bundle)
    }

    func bundles(org: String) throws -> [BundleRow] {
        try connection.query("SELECT \(Self.bundleColumns) FROM bundles WHERE org_id = ?", org).compactMap(Self.bundle)
    }

    static func bundle(_ row: Row) -> BundleRow? {
        guard let id = row.text("id"), let org = row.text("org_id"), let kind = BundleRow.Kind(rawValue: Int(row.int("kind") ?? 0)),
              let state = BundleRow.State(rawValue: Int(row.int("state") ?? 0)) else { return nil }
        return BundleRow(id: id, org: org, kind: kind, subject: row.text("subject") ?? "", state: state, requestedBy: row.text("requested_by") ?? "",
                         createdAt: row.int("created_at_unix_ms") ?? 0, readyAt: row.int("ready_at_unix_ms") ?? 0,
                         expiresAt: row.int("expires_at_unix_ms") ?? 0, sizeBytes: UInt64(row.int("size_bytes") ?? 0), sha256: row.text("sha256") ?? "",
                         entries: Int(row.int("entries") ?? 0), failure: row.text("failure") ?? "", downloads: Int(row.int("downloads") ?? 0),
                         jobID: row.text("job_id") ?? "", matterReference: row.text("matter_reference") ?? "", deleteAfter: row.int("delete_after") == 1)
    }
}
