import CallTraceStorage
import ComplianceDeadlines
import Foundation

/// An organisation's retention policy: months per kind of data, 0 to keep while active.
struct RetentionPolicyRow: Sendable, Equatable {
    var recordingsMonths: Int
    var transcriptsMonths: Int
    var callRecordsMonths: Int
    var updatedAt: Int64 = 0
    var updatedBy: String = ""

    static let keepAll = RetentionPolicyRow(recordingsMonths: 0, transcriptsMonths: 0, callRecordsMonths: 0)
    var keepsAll: Bool { recordingsMonths == 0 && transcriptsMonths == 0 && callRecordsMonths == 0 }
}

/// One retention run and its receipt. `phase` is where the run stands: recordings, then
/// transcripts, then call records, then finished.
struct RetentionRunRow: Sendable {
    enum Phase: Int, Sendable { case recordings = 0, transcripts, callRecords, finished }
    let id: String
    let org: String
    var phase: Phase
    let requestedBy: String
    let startedAt: Int64
    var finishedAt: Int64 = 0
    /// 0: that kind is kept.
    let recordingsBefore: Int64
    let transcriptsBefore: Int64
    let callRecordsBefore: Int64
    var recordingsPurged = 0
    var recordingBytesPurged: UInt64 = 0
    var transcriptsPurged = 0
    var callRecordsPurged = 0
    var jobID = ""
}

/// Retention policies and runs, in compliance's database (SQL in the SQLite repository, below).
protocol RetentionRecords {
    func retentionPolicy(org: String) throws -> RetentionPolicyRow?
    func put(_ policy: RetentionPolicyRow, org: String) throws
    /// Organisations whose policy removes something.
    func orgsWithRetention() throws -> [String]
    func insert(_ run: RetentionRunRow) throws
    func update(_ run: RetentionRunRow) throws
    func retentionRun(_ id: String) throws -> RetentionRunRow?
    /// The organisation's unfinished run, if one is queued or under way.
    func unfinishedRetentionRun(org: String) throws -> RetentionRunRow?
    func retentionRuns(org: String, limit: Int) throws -> [RetentionRunRow]
}

extension SQLiteComplianceRepository.Transaction: RetentionRecords {
    func retentionPolicy(org: String) throws -> RetentionPolicyRow? {
        try connection.query("""
            SELECT recordings_months, transcripts_months, call_records_months, updated_at_unix_ms, updated_by
            FROM retention_policies WHERE org_id = ?
            """, org).first.map { row in
            RetentionPolicyRow(recordingsMonths: Int(row.int("recordings_months") ?? 0), transcriptsMonths: Int(row.int("transcripts_months") ?? 0),
                               callRecordsMonths: Int(row.int("call_records_months") ?? 0), updatedAt: row.int("updated_at_unix_ms") ?? 0,
                               updatedBy: row.text("updated_by") ?? "")
        }
    }

    func put(_ policy: RetentionPolicyRow, org: String) throws {
        try connection.execute("DELETE FROM retention_policies WHERE org_id = ?", org)
        try connection.execute("""
            INSERT INTO retention_policies (org_id, recordings_months, transcripts_months, call_records_months, updated_at_unix_ms, updated_by)
            VALUES (?, ?, ?, ?, ?, ?)
            """, org, Int64(policy.recordingsMonths), Int64(policy.transcriptsMonths), Int64(policy.callRecordsMonths), policy.updatedAt,
            policy.updatedBy)
    }

    func orgsWithRetention() throws -> [String] {
        try connection.query("""
            SELECT org_id FROM retention_policies
            WHERE recordings_months > 0 OR transcripts_months > 0 OR call_records_months > 0 ORDER BY org_id
            """).compactMap { $0.text("org_id") }
    }

    func insert(_ run: RetentionRunRow) throws {
        try connection.execute("""
            INSERT INTO retention_runs (id, org_id, phase, requested_by, started_at_unix_ms, finished_at_unix_ms, recordings_before_unix_ms,
                transcripts_before_unix_ms, call_records_before_unix_ms, recordings_purged, recording_bytes_purged, transcripts_purged,
                call_records_purged, job_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, run.id, run.org, Int64(run.phase.rawValue), run.requestedBy, run.startedAt, run.finishedAt, run.recordingsBefore,
            run.transcriptsBefore, run.callRecordsBefore, Int64(run.recordingsPurged), Int64(run.recordingBytesPurged),
            Int64(run.transcriptsPurged), Int64(run.callRecordsPurged), run.jobID)
    }

    func update(_ run: RetentionRunRow) throws {
        try connection.execute("""
            UPDATE retention_runs SET phase = ?, finished_at_unix_ms = ?, recordings_purged = ?, recording_bytes_purged = ?,
                transcripts_purged = ?, call_records_purged = ?, job_id = ?
            WHERE id = ?
            """, Int64(run.phase.rawValue), run.finishedAt, Int64(run.recordingsPurged), Int64(run.recordingBytesPurged),
            Int64(run.transcriptsPurged), Int64(run.callRecordsPurged), run.jobID, run.id)
    }

    static let runColumns = """
        id, org_id, phase, requested_by, started_at_unix_ms, finished_at_unix_ms, recordings_before_unix_ms, transcripts_before_unix_ms,
        call_records_before_unix_ms, recordings_purged, recording_bytes_purged, transcripts_purged, call_records_purged, job_id
        """

    func retentionRun(_ id: String) throws -> RetentionRunRow? {
        try connection.query("SELECT \(Self.runColumns) FROM retention_runs WHERE id = ?", id).first.flatMap(Self.run)
    }

    func unfinishedRetentionRun(org: String) throws -> RetentionRunRow? {
        try connection.query("SELECT \(Self.runColumns) FROM retention_runs WHERE org_id = ? AND finished_at_unix_ms = 0", org)
            .first.flatMap(Self.run)
    }

    func retentionRuns(org: String, limit: Int) throws -> [RetentionRunRow] {
        try connection.query("SELECT \(Self.runColumns) FROM retention_runs WHERE org_id = ? ORDER BY started_at_unix_ms DESC, id LIMIT \(limit)",
                             org).compactMap(Self.run)
    }

    static func run(_ row: Row) -> RetentionRunRow? {
        guard let id = row.text("id"), let org = row.text("org_id"),
              let phase = RetentionRunRow.Phase(rawValue: Int(row.int("phase") ?? -1)) else { return nil }
        return RetentionRunRow(id: id, org: org, phase: phase, requestedBy: row.text("requested_by") ?? "",
                               startedAt: row.int("started_at_unix_ms") ?? 0, finishedAt: row.int("finished_at_unix_ms") ?? 0,
                               recordingsBefore: row.int("recordings_before_unix_ms") ?? 0,
                               transcriptsBefore: row.int("transcripts_before_unix_ms") ?? 0,
                               callRecordsBefore: row.int("call_records_before_unix_ms") ?? 0,
                               recordingsPurged: Int(row.int("recordings_purged") ?? 0),
                               recordingBytesPurged: UInt64(row.int("recording_bytes_purged") ?? 0),
                               transcriptsPurged: Int(row.int("transcripts_purged") ?? 0),
                               callRecordsPurged: Int(row.int("call_records_purged") ?? 0), jobID: row.text("job_id") ?? "")
    }
}
