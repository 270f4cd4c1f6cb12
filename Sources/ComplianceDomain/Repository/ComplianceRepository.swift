import CallTraceStorage
import ComplianceDeadlines
import Foundation

/// Compliance's own records (retention, deletions, subject requests), behind a protocol: SQL
/// only in the SQLite implementation, in the subset PostgreSQL shares.
protocol ComplianceRepository: Sendable {
    func read<T: Sendable>(_ body: @escaping @Sendable (any ComplianceTransaction) throws -> T) async throws -> T
    func write<T: Sendable>(_ body: @escaping @Sendable (any ComplianceTransaction) throws -> T) async throws -> T
}

/// One transaction over compliance's records: each feature's records (declared beside it),
/// and the connection, for enqueueing jobs and recording audit events in the same transaction.
protocol ComplianceTransaction: RetentionRecords, DeletionRecords, SubjectRequestRecords, BundleRecords, OffboardingRecords, DocumentRecords {
    var connection: Connection { get }

    /// Offboarding: every record compliance keeps for `org` except its offboarding row (the
    /// audit chain goes through `AuditChainRepository`). Returns how many rows went.
    func deleteRecords(org: String) throws -> Int
}

struct SQLiteComplianceRepository: ComplianceRepository, SQLiteRepository {
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

    static func statements(on connection: Connection) -> any ComplianceTransaction { Transaction(connection: connection) }

    struct Transaction: ComplianceTransaction {
        let connection: Connection

        func deleteRecords(org: String) throws -> Int {
            var deleted = 0
            for table in ["retention_policies", "retention_runs", "deletions", "subject_requests", "bundles", "notice_settings", "agreement_acceptances"] {
                deleted += try connection.execute("DELETE FROM \(table) WHERE org_id = ?", org)
            }
            return deleted
        }
    }
}
