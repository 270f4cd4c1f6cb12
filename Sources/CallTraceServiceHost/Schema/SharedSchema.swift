public import CallTraceStorage

/// Tables every service's database has, owned by the host: the audit outbox, its dead letters,
/// durable jobs. They migrate on a version track of their own (`track`, applied before the
/// service's migrations), so a service lists only its own tables and the host adds one without
/// touching any service. (Organisation keys live in the service's separate key store, never in
/// this database.)
public enum SharedSchema {
    /// The host's track. A database from before tracks (when each service listed these among its
    /// own migrations) is adopted at the version its tables show.
    public static let track = SchemaTrack(name: "host", migrations: [Migration(version: 1, v1), Migration(version: 2, v2), Migration(version: 3, v3), Migration(version: 4, v4)]) { connection in
        let tables = try connection.tableNames()
        return ["audit_outbox", "audit_dead_letters", "jobs"].prefix { tables.contains($0) }.count
    }

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

extension SharedSchema {
    /// A running job's lease (`JobQueue`): which queue runs it, and until when (renewed while it
    /// runs); a replica takes over a job whose lease ran out.
    public static let v4 = """
        ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
        ALTER TABLE jobs ADD COLUMN lease_expires_at_unix_ms INTEGER NOT NULL DEFAULT 0;
        """
}
