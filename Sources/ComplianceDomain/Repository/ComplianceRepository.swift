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

/// A data-subject request (P13). Everything a person wrote (numbers, notes, reasons, outcome)
/// is in `details`, sealed under the organisation's key; the columns are what the deadline
/// engine and the lists need.
struct SubjectRequestRow: Sendable {
    struct Details: Codable, Sendable, Equatable {
        var phoneNumbers: [String]
        var notes: String = ""
        var pauseReason: String = ""
        var extensionReason: String = ""
        var outcome: String = ""
    }
    let id: String
    let org: String
    let kind: Int
    let receivedOn: Day
    let nation: Nation
    var identityCheck: Int
    var state: Int
    var extended = false
    var pausedDays = 0
    var pausedSince: Day?
    var erasureStartedAt: Int64 = 0
    var erasureConfirmedAt: Int64 = 0
    var objectionAppliedAt: Int64 = 0
    var closedAt: Int64 = 0
    let openedBy: String
    let openedAt: Int64
    var details: Details
}

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

/// Compliance's own records (retention, deletions, subject requests), behind a protocol: SQL
/// only in the SQLite implementation, in the subset PostgreSQL shares.
protocol ComplianceRepository: Sendable {
    func read<T: Sendable>(_ body: @escaping @Sendable (any ComplianceTransaction) throws -> T) async throws -> T
    func write<T: Sendable>(_ body: @escaping @Sendable (any ComplianceTransaction) throws -> T) async throws -> T
}

protocol ComplianceTransaction {
    /// For enqueueing jobs and recording audit events in the same transaction.
    var connection: Connection { get }

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

    func insert(_ deletion: DeletionRow) throws
    func update(_ deletion: DeletionRow) throws
    func deletion(_ id: String) throws -> DeletionRow?
    /// The call's deletion under way, else its latest.
    func deletion(org: String, callID: String) throws -> DeletionRow?
    func deletions(org: String, limit: Int) throws -> [DeletionRow]
    func deletions(request: String) throws -> [DeletionRow]

    /// `details` sealed by the caller.
    func insert(_ request: SubjectRequestRow, sealedDetails: Data) throws
    func update(_ request: SubjectRequestRow, sealedDetails: Data) throws
    func subjectRequest(_ id: String, org: String) throws -> (row: SubjectRequestRow, sealedDetails: Data)?
    func subjectRequests(org: String, includeClosed: Bool) throws -> [(row: SubjectRequestRow, sealedDetails: Data)]

    func insert(_ bundle: BundleRow) throws
    func update(_ bundle: BundleRow) throws
    func bundle(_ id: String) throws -> BundleRow?
    /// The newest bundle of `kind` for `subject` that is building or ready.
    func liveBundle(org: String, kind: BundleRow.Kind, subject: String) throws -> BundleRow?
    /// Ready bundles whose time is up.
    func expiredBundles(at now: Int64) throws -> [BundleRow]
    func bundles(org: String) throws -> [BundleRow]

    func insert(_ offboarding: OffboardingRow) throws
    func update(_ offboarding: OffboardingRow) throws
    func offboarding(org: String) throws -> OffboardingRow?

    func noticeSettings(org: String) throws -> NoticeSettingsRow?
    func put(_ settings: NoticeSettingsRow, org: String) throws
    /// The latest acceptance of the processing agreement.
    func acceptance(org: String) throws -> AgreementAcceptance?
    func insert(_ acceptance: AgreementAcceptance, org: String) throws

    /// Offboarding: every record compliance keeps for `org` except its offboarding row (the
    /// audit chain goes through `AuditChainRepository`). Returns how many rows went.
    func deleteRecords(org: String) throws -> Int
}

struct SQLiteComplianceRepository: ComplianceRepository {
    static let schema = """
        CREATE TABLE retention_policies (
            org_id TEXT PRIMARY KEY,
            recordings_months INTEGER NOT NULL,
            transcripts_months INTEGER NOT NULL,
            call_records_months INTEGER NOT NULL,
            updated_at_unix_ms INTEGER NOT NULL,
            updated_by TEXT NOT NULL
        );
        CREATE TABLE retention_runs (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            phase INTEGER NOT NULL,
            requested_by TEXT NOT NULL,
            started_at_unix_ms INTEGER NOT NULL,
            finished_at_unix_ms INTEGER NOT NULL,
            recordings_before_unix_ms INTEGER NOT NULL,
            transcripts_before_unix_ms INTEGER NOT NULL,
            call_records_before_unix_ms INTEGER NOT NULL,
            recordings_purged INTEGER NOT NULL,
            recording_bytes_purged INTEGER NOT NULL,
            transcripts_purged INTEGER NOT NULL,
            call_records_purged INTEGER NOT NULL,
            job_id TEXT NOT NULL
        );
        CREATE INDEX retention_runs_by_org ON retention_runs (org_id, started_at_unix_ms);
        CREATE TABLE deletions (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            call_id TEXT NOT NULL,
            request_id TEXT NOT NULL,
            reason TEXT NOT NULL,
            requested_by TEXT NOT NULL,
            requested_at_unix_ms INTEGER NOT NULL,
            transcript_confirmed_at_unix_ms INTEGER NOT NULL,
            media_confirmed_at_unix_ms INTEGER NOT NULL,
            recordings_deleted INTEGER NOT NULL,
            finished_at_unix_ms INTEGER NOT NULL,
            job_id TEXT NOT NULL
        );
        CREATE UNIQUE INDEX deletions_by_call ON deletions (org_id, call_id);
        CREATE INDEX deletions_by_request ON deletions (request_id);
        CREATE TABLE subject_requests (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            kind INTEGER NOT NULL,
            received_on TEXT NOT NULL,
            nation TEXT NOT NULL,
            identity_check INTEGER NOT NULL,
            state INTEGER NOT NULL,
            extended INTEGER NOT NULL,
            paused_days INTEGER NOT NULL,
            paused_since TEXT NOT NULL,
            erasure_started_at_unix_ms INTEGER NOT NULL,
            erasure_confirmed_at_unix_ms INTEGER NOT NULL,
            objection_applied_at_unix_ms INTEGER NOT NULL,
            closed_at_unix_ms INTEGER NOT NULL,
            opened_by TEXT NOT NULL,
            opened_at_unix_ms INTEGER NOT NULL,
            details BLOB NOT NULL
        );
        CREATE INDEX subject_requests_by_org ON subject_requests (org_id, closed_at_unix_ms);
        """

    /// A call may be deleted again once its deletion finished (a recording uploaded later):
    /// one deletion at a time per call, any number over time.
    static let repeatedDeletionsSchema = """
        DROP INDEX deletions_by_call;
        CREATE UNIQUE INDEX deletions_by_call ON deletions (org_id, call_id) WHERE finished_at_unix_ms = 0;
        CREATE INDEX deletions_by_call_over_time ON deletions (org_id, call_id, requested_at_unix_ms);
        """

    /// What an offboarding's certificate names beyond the counts it had: the export the
    /// organisation confirmed it holds, and what identity deleted of its people.
    static let offboardingExportSchema = """
        ALTER TABLE offboardings ADD COLUMN export_sha256 TEXT NOT NULL DEFAULT '';
        ALTER TABLE offboardings ADD COLUMN export_bytes INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE offboardings ADD COLUMN identity_users INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE offboardings ADD COLUMN identity_invitations INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE offboardings ADD COLUMN identity_sessions INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE offboardings ADD COLUMN identity_support_grants INTEGER NOT NULL DEFAULT 0;
        """

    static let documentsSchema = """
        CREATE TABLE notice_settings (
            org_id TEXT PRIMARY KEY,
            settings TEXT NOT NULL,
            updated_at_unix_ms INTEGER NOT NULL
        );
        CREATE TABLE agreement_acceptances (
            org_id TEXT NOT NULL,
            template_version TEXT NOT NULL,
            register_version TEXT NOT NULL,
            accepted_by TEXT NOT NULL,
            accepted_at_unix_ms INTEGER NOT NULL
        );
        CREATE INDEX agreement_acceptances_by_org ON agreement_acceptances (org_id, accepted_at_unix_ms);
        """

    static let bundlesSchema = """
        CREATE TABLE bundles (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            kind INTEGER NOT NULL,
            subject TEXT NOT NULL,
            state INTEGER NOT NULL,
            requested_by TEXT NOT NULL,
            created_at_unix_ms INTEGER NOT NULL,
            ready_at_unix_ms INTEGER NOT NULL,
            expires_at_unix_ms INTEGER NOT NULL,
            size_bytes INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            entries INTEGER NOT NULL,
            failure TEXT NOT NULL,
            downloads INTEGER NOT NULL,
            job_id TEXT NOT NULL,
            matter_reference TEXT NOT NULL,
            delete_after INTEGER NOT NULL
        );
        CREATE INDEX bundles_by_subject ON bundles (org_id, kind, subject);
        CREATE INDEX bundles_by_expiry ON bundles (state, expires_at_unix_ms);
        CREATE TABLE offboardings (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL UNIQUE,
            export_bundle_id TEXT NOT NULL,
            started_by TEXT NOT NULL,
            started_at_unix_ms INTEGER NOT NULL,
            confirmed_by TEXT NOT NULL,
            confirmed_at_unix_ms INTEGER NOT NULL,
            media_recordings INTEGER NOT NULL,
            media_share_links INTEGER NOT NULL,
            media_at_unix_ms INTEGER NOT NULL,
            transcript_calls INTEGER NOT NULL,
            transcript_tracking_numbers INTEGER NOT NULL,
            transcript_suppressions INTEGER NOT NULL,
            transcript_at_unix_ms INTEGER NOT NULL,
            compliance_audit_events INTEGER NOT NULL,
            compliance_audit_head TEXT NOT NULL,
            compliance_at_unix_ms INTEGER NOT NULL,
            identity_at_unix_ms INTEGER NOT NULL,
            completed_at_unix_ms INTEGER NOT NULL,
            certificate TEXT NOT NULL,
            job_id TEXT NOT NULL
        );
        """

    let database: Database

    func read<T: Sendable>(_ body: @escaping @Sendable (any ComplianceTransaction) throws -> T) async throws -> T {
        try await database.read { try body(Transaction(connection: $0)) }
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (any ComplianceTransaction) throws -> T) async throws -> T {
        try await database.write { try body(Transaction(connection: $0)) }
    }

    struct Transaction: ComplianceTransaction {
        let connection: Connection

        // MARK: Retention

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

        // MARK: Deletions

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

        // MARK: Subject requests

        func insert(_ r: SubjectRequestRow, sealedDetails: Data) throws {
            try connection.execute("""
                INSERT INTO subject_requests (id, org_id, kind, received_on, nation, identity_check, state, extended, paused_days, paused_since,
                    erasure_started_at_unix_ms, erasure_confirmed_at_unix_ms, objection_applied_at_unix_ms, closed_at_unix_ms, opened_by,
                    opened_at_unix_ms, details)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, r.id, r.org, Int64(r.kind), r.receivedOn.description, r.nation.rawValue, Int64(r.identityCheck), Int64(r.state),
                Int64(r.extended ? 1 : 0), Int64(r.pausedDays), r.pausedSince?.description ?? "", r.erasureStartedAt, r.erasureConfirmedAt,
                r.objectionAppliedAt, r.closedAt, r.openedBy, r.openedAt, sealedDetails)
        }

        func update(_ r: SubjectRequestRow, sealedDetails: Data) throws {
            try connection.execute("""
                UPDATE subject_requests SET identity_check = ?, state = ?, extended = ?, paused_days = ?, paused_since = ?,
                    erasure_started_at_unix_ms = ?, erasure_confirmed_at_unix_ms = ?, objection_applied_at_unix_ms = ?, closed_at_unix_ms = ?,
                    details = ?
                WHERE id = ? AND org_id = ?
                """, Int64(r.identityCheck), Int64(r.state), Int64(r.extended ? 1 : 0), Int64(r.pausedDays), r.pausedSince?.description ?? "",
                r.erasureStartedAt, r.erasureConfirmedAt, r.objectionAppliedAt, r.closedAt, sealedDetails, r.id, r.org)
        }

        static let requestColumns = """
            id, org_id, kind, received_on, nation, identity_check, state, extended, paused_days, paused_since, erasure_started_at_unix_ms,
            erasure_confirmed_at_unix_ms, objection_applied_at_unix_ms, closed_at_unix_ms, opened_by, opened_at_unix_ms, details
            """

        func subjectRequest(_ id: String, org: String) throws -> (row: SubjectRequestRow, sealedDetails: Data)? {
            try connection.query("SELECT \(Self.requestColumns) FROM subject_requests WHERE id = ? AND org_id = ?", id, org).first.flatMap(Self.request)
        }

        func subjectRequests(org: String, includeClosed: Bool) throws -> [(row: SubjectRequestRow, sealedDetails: Data)] {
            let open = includeClosed ? "" : " AND closed_at_unix_ms = 0"
            return try connection.query("SELECT \(Self.requestColumns) FROM subject_requests WHERE org_id = ?\(open) ORDER BY opened_at_unix_ms, id",
                                        org).compactMap(Self.request)
        }

        // MARK: Bundles

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

        // MARK: Offboarding

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

        // MARK: Notices and agreements

        func noticeSettings(org: String) throws -> NoticeSettingsRow? {
            try connection.query("SELECT settings FROM notice_settings WHERE org_id = ?", org).first?.text("settings")
                .flatMap { try? JSONDecoder().decode(NoticeSettingsRow.self, from: Data($0.utf8)) }
        }

        func put(_ settings: NoticeSettingsRow, org: String) throws {
            try connection.execute("DELETE FROM notice_settings WHERE org_id = ?", org)
            try connection.execute("INSERT INTO notice_settings (org_id, settings, updated_at_unix_ms) VALUES (?, ?, ?)", org,
                                   String(decoding: try JSONEncoder().encode(settings), as: UTF8.self), settings.updatedAt)
        }

        func acceptance(org: String) throws -> AgreementAcceptance? {
            try connection.query("""
                SELECT template_version, register_version, accepted_by, accepted_at_unix_ms FROM agreement_acceptances
                WHERE org_id = ? ORDER BY accepted_at_unix_ms DESC LIMIT 1
                """, org).first.map {
                AgreementAcceptance(templateVersion: $0.text("template_version") ?? "", registerVersion: $0.text("register_version") ?? "",
                                    acceptedBy: $0.text("accepted_by") ?? "", acceptedAt: $0.int("accepted_at_unix_ms") ?? 0)
            }
        }

        func insert(_ a: AgreementAcceptance, org: String) throws {
            try connection.execute("""
                INSERT INTO agreement_acceptances (org_id, template_version, register_version, accepted_by, accepted_at_unix_ms) VALUES (?, ?, ?, ?, ?)
                """, org, a.templateVersion, a.registerVersion, a.acceptedBy, a.acceptedAt)
        }

        func deleteRecords(org: String) throws -> Int {
            var deleted = 0
            for table in ["retention_policies", "retention_runs", "deletions", "subject_requests", "bundles", "notice_settings", "agreement_acceptances"] {
                deleted += try connection.execute("DELETE FROM \(table) WHERE org_id = ?", org)
            }
            return deleted
        }

        static func request(_ row: Row) -> (row: SubjectRequestRow, sealedDetails: Data)? {
            guard let id = row.text("id"), let org = row.text("org_id"), let received = row.text("received_on").flatMap(Day.init),
                  let nation = row.text("nation").flatMap(Nation.init(rawValue:)), let details = row.blob("details") else { return nil }
            let request = SubjectRequestRow(
                id: id, org: org, kind: Int(row.int("kind") ?? 0), receivedOn: received, nation: nation,
                identityCheck: Int(row.int("identity_check") ?? 0), state: Int(row.int("state") ?? 0), extended: row.int("extended") == 1,
                pausedDays: Int(row.int("paused_days") ?? 0), pausedSince: row.text("paused_since").flatMap(Day.init),
                erasureStartedAt: row.int("erasure_started_at_unix_ms") ?? 0, erasureConfirmedAt: row.int("erasure_confirmed_at_unix_ms") ?? 0,
                objectionAppliedAt: row.int("objection_applied_at_unix_ms") ?? 0, closedAt: row.int("closed_at_unix_ms") ?? 0,
                openedBy: row.text("opened_by") ?? "", openedAt: row.int("opened_at_unix_ms") ?? 0, details: .init(phoneNumbers: []))
            return (request, details)
        }
    }
}
