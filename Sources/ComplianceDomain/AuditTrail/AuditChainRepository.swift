import CallTraceStorage
import Foundation

/// One event in its organisation's chain: sealed, linked to the one before.
struct ChainRow: Sendable {
    let org: String
    let index: Int64
    let idempotencyKey: String
    let sourceService: String
    let occurredAt: Int64
    let receivedAt: Int64
    /// The serialized `AuditEvent`, sealed under the organisation's key for (org, index).
    let sealedEvent: Data
    let link: Data
}

/// The audit trail's storage, behind a protocol (SQL only in the SQLite implementation, in the
/// subset PostgreSQL shares).
protocol AuditChainRepository: Sendable {
    func read<T: Sendable>(_ body: @escaping @Sendable (any AuditChainTransaction) throws -> T) async throws -> T
    func write<T: Sendable>(_ body: @escaping @Sendable (any AuditChainTransaction) throws -> T) async throws -> T
    /// Synchronously, at start-up only.
    func sync<T>(_ body: (any AuditChainTransaction) throws -> T) throws -> T
}

protocol AuditChainTransaction {
    func event(idempotencyKey: String) throws -> ChainRow?
    /// The organisation's last event (its head), if any.
    func head(org: String) throws -> ChainRow?
    func insert(_ row: ChainRow) throws
    /// Up to `limit` events, newest first, with index below `before` (nil: from the head).
    func newest(org: String, before: Int64?, limit: Int) throws -> [ChainRow]
    /// Up to `limit` events, oldest first, with index above `after`.
    func oldest(org: String, after: Int64, limit: Int) throws -> [ChainRow]

    /// The organisation's event at `index`, if there is one.
    func event(org: String, index: Int64) throws -> ChainRow?

    /// Offboarding: the organisation's whole chain (and its checkpoints) removed; how many events there were.
    func deleteAll(org: String) throws -> Int

    // MARK: Checkpoints

    func insert(_ checkpoint: CheckpointRow) throws
    /// The checkpoint signed last for the organisation, if any.
    func latestCheckpoint(org: String) throws -> CheckpointRow?
    /// Up to `limit` checkpoints, newest first, before the one numbered `before` (nil: from the newest).
    func checkpoints(org: String, before: Int64?, limit: Int) throws -> [CheckpointRow]
    /// Up to `limit` checkpoints of an index below `index`, highest first.
    func checkpoints(org: String, below index: Int64, limit: Int) throws -> [CheckpointRow]
    /// Up to `limit` organisations, in id order after `after`, that have events or checkpoints.
    func organisations(after: String, limit: Int) throws -> [String]

    /// Events received before the chain existed (schema 2–4), oldest first, and their removal.
    func unchained(limit: Int) throws -> [(seq: Int64, event: Data, receivedAt: Int64)]
    func removeUnchained(seq: Int64) throws
}

struct SQLiteAuditChainRepository: AuditChainRepository, SQLiteRepository {
    static let schema = """
        CREATE TABLE audit_chain (
            org_id TEXT NOT NULL,
            chain_index INTEGER NOT NULL,
            idempotency_key TEXT NOT NULL UNIQUE,
            source_service TEXT NOT NULL,
            occurred_at_unix_ms INTEGER NOT NULL,
            received_at_unix_ms INTEGER NOT NULL,
            event BLOB NOT NULL,
            link BLOB NOT NULL,
            PRIMARY KEY (org_id, chain_index)
        );
        """

    /// Schema 11: the checkpoints compliance signed (`AuditCheckpoints`).
    static let checkpointsSchema = """
        CREATE TABLE audit_checkpoints (
            org_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            checkpoint_id TEXT NOT NULL UNIQUE,
            chain_index INTEGER NOT NULL,
            head BLOB NOT NULL,
            signed_at_unix_ms INTEGER NOT NULL,
            reason TEXT NOT NULL,
            key_id TEXT NOT NULL,
            document TEXT NOT NULL,
            PRIMARY KEY (org_id, seq)
        );
        CREATE INDEX audit_checkpoints_by_index ON audit_checkpoints (org_id, chain_index);
        """

    let database: Database

    static func statements(on connection: Connection) -> any AuditChainTransaction { Transaction(connection: connection) }

    func sync<T>(_ body: (any AuditChainTransaction) throws -> T) throws -> T {
        try database.sync { connection in try connection.transaction { try body(Transaction(connection: connection)) } }
    }

    struct Transaction: AuditChainTransaction {
        let connection: Connection
        static let columns = "org_id, chain_index, idempotency_key, source_service, occurred_at_unix_ms, received_at_unix_ms, event, link"

        func event(idempotencyKey: String) throws -> ChainRow? {
            try connection.query("SELECT \(Self.columns) FROM audit_chain WHERE idempotency_key = ?", idempotencyKey).first.flatMap(Self.row)
        }

        func head(org: String) throws -> ChainRow? {
            try connection.query("SELECT \(Self.columns) FROM audit_chain WHERE org_id = ? ORDER BY chain_index DESC LIMIT 1", org).first.flatMap(Self.row)
        }

        func insert(_ r: ChainRow) throws {
            try connection.execute("INSERT INTO audit_chain (\(Self.columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                   r.org, r.index, r.idempotencyKey, r.sourceService, r.occurredAt, r.receivedAt, r.sealedEvent, r.link)
        }

        func event(org: String, index: Int64) throws -> ChainRow? {
            try connection.query("SELECT \(Self.columns) FROM audit_chain WHERE org_id = ? AND chain_index = ?", org, index).first.flatMap(Self.row)
        }

        func deleteAll(org: String) throws -> Int {
            try connection.execute("DELETE FROM audit_checkpoints WHERE org_id = ?", org)
            return try connection.execute("DELETE FROM audit_chain WHERE org_id = ?", org)
        }

        static let checkpointColumns = "org_id, seq, checkpoint_id, chain_index, head, signed_at_unix_ms, reason, key_id, document"

        func insert(_ c: CheckpointRow) throws {
            try connection.execute("INSERT INTO audit_checkpoints (\(Self.checkpointColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                   c.org, c.seq, c.id, c.index, c.head, c.signedAt, c.reason.rawValue, c.keyID, c.document)
        }

        func latestCheckpoint(org: String) throws -> CheckpointRow? {
            try connection.query("SELECT \(Self.checkpointColumns) FROM audit_checkpoints WHERE org_id = ? ORDER BY seq DESC LIMIT 1", org)
                .first.flatMap(Self.checkpoint)
        }

        func checkpoints(org: String, before: Int64?, limit: Int) throws -> [CheckpointRow] {
            try connection.query("""
                SELECT \(Self.checkpointColumns) FROM audit_checkpoints WHERE org_id = ? AND seq < ? ORDER BY seq DESC LIMIT \(limit)
                """, org, before ?? Int64.max).compactMap(Self.checkpoint)
        }

        func checkpoints(org: String, below index: Int64, limit: Int) throws -> [CheckpointRow] {
            try connection.query("""
                SELECT \(Self.checkpointColumns) FROM audit_checkpoints WHERE org_id = ? AND chain_index < ?
                ORDER BY chain_index DESC, seq DESC LIMIT \(limit)
                """, org, index).compactMap(Self.checkpoint)
        }

        func organisations(after: String, limit: Int) throws -> [String] {
            // One index seek per organisation, however many events each has.
            var found: [String] = [], cursor = after
            while found.count < limit, let next = try connection.query("""
                SELECT MIN(o) AS next FROM (SELECT MIN(org_id) AS o FROM audit_chain WHERE org_id > ?
                                            UNION ALL SELECT MIN(org_id) FROM audit_checkpoints WHERE org_id > ?) AS heads
                """, cursor, cursor).first?.text("next") {
                found.append(next)
                cursor = next
            }
            return found
        }

        static func checkpoint(_ row: Row) -> CheckpointRow? {
            guard let id = row.text("checkpoint_id"), let org = row.text("org_id"), let seq = row.int("seq"), let index = row.int("chain_index"),
                  let head = row.blob("head"),
                  let signedAt = row.int("signed_at_unix_ms"), let reason = row.text("reason").flatMap(CheckpointRow.Reason.init(rawValue:)),
                  let document = row.text("document") else { return nil }
            return CheckpointRow(id: id, org: org, seq: seq, index: index, head: head, signedAt: signedAt, reason: reason, keyID: row.text("key_id") ?? "",
                                 document: document)
        }

        func newest(org: String, before: Int64?, limit: Int) throws -> [ChainRow] {
            try connection.query("""
                SELECT \(Self.columns) FROM audit_chain WHERE org_id = ? AND chain_index < ? ORDER BY chain_index DESC LIMIT \(limit)
                """, org, before ?? Int64.max).compactMap(Self.row)
        }

        func oldest(org: String, after: Int64, limit: Int) throws -> [ChainRow] {
            try connection.query("SELECT \(Self.columns) FROM audit_chain WHERE org_id = ? AND chain_index > ? ORDER BY chain_index LIMIT \(limit)",
                                 org, after).compactMap(Self.row)
        }

        func unchained(limit: Int) throws -> [(seq: Int64, event: Data, receivedAt: Int64)] {
            try connection.query("SELECT seq, event, received_at_unix_ms FROM audit_events ORDER BY seq LIMIT \(limit)").compactMap { row in
                guard let seq = row.int("seq"), let event = row.blob("event") else { return nil }
                return (seq, event, row.int("received_at_unix_ms") ?? 0)
            }
        }

        func removeUnchained(seq: Int64) throws {
            try connection.execute("DELETE FROM audit_events WHERE seq = ?", seq)
        }

        static func row(_ row: Row) -> ChainRow? {
            guard let org = row.text("org_id"), let index = row.int("chain_index"), let key = row.text("idempotency_key"),
                  let event = row.blob("event"), let link = row.blob("link") else { return nil }
            return ChainRow(org: org, index: index, idempotencyKey: key, sourceService: row.text("source_service") ?? "",
                            occurredAt: row.int("occurred_at_unix_ms") ?? 0, receivedAt: row.int("received_at_unix_ms") ?? 0,
                            sealedEvent: event, link: link)
        }
    }
}
