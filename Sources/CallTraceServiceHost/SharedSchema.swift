/// Tables every service's database has, created by its first migration. (Organisation keys
/// live in the service's separate key store, never in this database.)
public enum SharedSchema {
    /// The audit outbox.
    public static let v1 = """
        CREATE TABLE audit_outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            idempotency_key TEXT NOT NULL UNIQUE,
            org_id TEXT NOT NULL,
            event BLOB NOT NULL,
            created_at_unix_ms INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0
        );
        """
}

extension SharedSchema {
    /// Audit events compliance refused (malformed, or a different event under a used key): kept
    /// for operators to see (`audit_dead_letters` gauge), never resent.
    public static let v2 = """
        CREATE TABLE audit_dead_letters (
            idempotency_key TEXT PRIMARY KEY,
            event BLOB NOT NULL,
            reason TEXT NOT NULL,
            rejected_at_unix_ms INTEGER NOT NULL
        );
        """
}

extension SharedSchema {
    /// Durable jobs and their schedules (`JobQueue`).
    public static let v3 = """
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            idempotency_key TEXT NOT NULL UNIQUE,
            payload BLOB NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            rerun INTEGER NOT NULL DEFAULT 0,
            run_at_unix_ms INTEGER NOT NULL,
            last_error TEXT,
            created_at_unix_ms INTEGER NOT NULL,
            updated_at_unix_ms INTEGER NOT NULL
        );
        CREATE INDEX jobs_due ON jobs (state, run_at_unix_ms);
        CREATE TABLE job_schedules (
            name TEXT PRIMARY KEY,
            next_run_at_unix_ms INTEGER NOT NULL
        );
        """
}
