import CallTraceKeys

/// Tables every service has, created by its first migration.
public enum SharedSchema {
    /// Organisation keys (wrapped) and the audit outbox.
    public static let v1 = KeyRing.schema + """
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
