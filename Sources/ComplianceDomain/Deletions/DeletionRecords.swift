import CallTraceStorage
import ComplianceDeadlines
import Foundation

/// A call deleted across services (P10): what each service has confirmed.
struct DeletionRow: Sendable {
    let id: String
    let org: String
    let callID: String
    let requestID: String
    let reason: String
    let requestedBy: String
    let requestedAt: Int64
    var transcriptConfirmedAt: Int64 = 0
    var mediaConfirmedAt: Int64 = 0
    var recordingsDeleted = 0
    var finishedAt: Int64 = 0
    var jobID = ""
}

/// Deletions across services, in compliance's database.
protocol DeletionRecords {
    func insert(_ deletion: DeletionRow) throws
    func update(_ deletion: DeletionRow) throws
    func deletion(_ id: String) throws -> DeletionRow?
    /// The call's deletion under way, else its latest.
    func deletion(org: String, callID: String) throws -> DeletionRow?
    func deletions(org: String, limit: Int) throws -> [DeletionRow]
    func deletions(request: String) throws -> [DeletionRow]
}

extension SQLiteComplianceRepository.Transaction: DeletionRecords {
    func insert(_ d: DeletionRow) throws {
        try connection.execute("""
            INSERT INTO deletions (id, org_id, call_id, request_id, reason, requested_by, requested_at_unix_ms, transcript_confirmed_at_unix_ms,
                media_confirmed_at_unix_ms, recordings_deleted, finished_at_unix_ms, job_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, d.id, d.org, d.callID, d.requestID, d.reason, d.requestedBy, d.requestedAt, d.transcriptConfirmedAt, d.mediaConfirmedAt,
            Int64(d.recordingsDeleted), d.finishedAt, d.jobID)
    }

    func update(_ d: DeletionRow) throws {
        try connection.execute("""
            UPDATE deletions SET transcript_confirmed_at_unix_ms = ?, media_confirmed_at_unix_ms = ?, recordings_deleted = ?,
                finished_at_unix_ms = ?, job_id = ?
            WHERE id = ?
            """, d.transcriptConfirmedAt, d.mediaConfirmedAt, Int64(d.recordingsDeleted), d.finishedAt, d.jobID, d.id)
    }

    static let deletionColumns = """
        id, org_id, call_id, request_id, reason, requested_by, requested_at_unix_ms, transcript_confirmed_at_unix_ms,
        media_confirmed_at_unix_ms, recordings_deleted, finished_at_unix_ms, job_id
        """

    func deletion(_ id: String) throws -> DeletionRow? {
        try connection.query("SELECT \(Self.deletionColumns) FROM deletions WHERE id = ?", id).first.flatMap(Self.deletion)
    }

    func deletion(org: String, callID: String) throws -> DeletionRow? {
        try connection.query("""
            SELECT \(Self.deletionColumns) FROM deletions WHERE org_id = ? AND call_id = ?
            ORDER BY finished_at_unix_ms = 0 DESC, requested_at_unix_ms DESC, id DESC LIMIT 1
            """, org, callID).first.flatMap(Self.deletion)
    }

    func deletions(org: String, limit: Int) throws -> [DeletionRow] {
        try connection.query("SELECT \(Self.deletionColumns) FROM deletions WHERE org_id = ? ORDER BY requested_at_unix_ms DESC, id LIMIT \(limit)",
                             org).compactMap(Self.deletion)
    }

    func deletions(request: String) throws -> [DeletionRow] {
        try connection.query("SELECT \(Self.deletionColumns) FROM deletions WHERE request_id = ? ORDER BY call_id", request)
            .compactMap(Self.deletion)
    }

    static func deletion(_ row: Row) -> DeletionRow? {
        guard let id = row.text("id"), let org = row.text("org_id"), let call = row.text("call_id") else { return nil }
        return DeletionRow(id: id, org: org, callID: call, requestID: row.text("request_id") ?? "", reason: row.text("reason") ?? "",
                           requestedBy: row.text("requested_by") ?? "", requestedAt: row.int("requested_at_unix_ms") ?? 0,
                           transcriptConfirmedAt: row.int("transcript_confirmed_at_unix_ms") ?? 0,
                           mediaConfirmedAt: row.int("media_confirmed_at_unix_ms") ?? 0,
                           recordingsDeleted: Int(row.int("recordings_deleted") ?? 0), finishedAt: row.int("finished_at_unix_ms") ?? 0,
                           jobID: row.text("job_id") ?? "")
    }
}
