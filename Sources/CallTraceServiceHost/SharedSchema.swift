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
