import CallTraceStorage
import Foundation

/// A stored recording's row: what it is, never its audio.
struct RecordingRow: Sendable, Equatable {
    let id: String
    let org: String
    let callID: String
    let format: Int
    let sampleRate: UInt32
    let channels: UInt32
    let durationMs: UInt64
    let sizeBytes: UInt64
    let sha256: Data
    /// Plaintext bytes per sealed chunk of its blob.
    let chunkBytes: Int
    let createdAt: Int64
    /// The name of its sealed file and of its key: the recording's id, until a redaction
    /// replaces both with a new version's.
    let blobID: String
    /// `Calltrace_Media_V1_RedactionState`: 0 never redacted, 1 muted, 2 a redaction failed.
    var redactionState = 0
    /// Why a redaction failed (state 2).
    var redactionFailure = ""
}

/// What a redaction that re-encodes a recording (MP3 or Opus muted as FLAC) stores in its row.
struct RecordingContent: Sendable {
    let blobID: String
    let format: Int
    let sampleRate: UInt32
    let channels: UInt32
    let durationMs: UInt64
    let sizeBytes: UInt64
    let sha256: Data
}

/// How replacing a recording's content went.
enum ContentReplacement: Sendable {
    case replaced
    /// The recording is gone.
    case gone
    /// Its file is no longer the version the redaction read (another redaction finished first).
    case changed
}

/// Media's storage, behind a protocol: the rules decide, a repository reads and writes. Each
/// `read`/`write` is one transaction, with the host's outbox and jobs through `connection`.
/// The SQLite implementation keeps to SQL that PostgreSQL also accepts.
protocol RecordingRepository: Sendable {
    func read<T: Sendable>(_ body: @escaping @Sendable (any RecordingTransaction) throws -> T) async throws -> T
    func write<T: Sendable>(_ body: @escaping @Sendable (any RecordingTransaction) throws -> T) async throws -> T
    /// The blob (and key) name of every recording, for the start-up sweep.
    func allBlobIDs() throws -> Set<String>
}

protocol RecordingTransaction {
    var connection: Connection { get }
    func insert(_ recording: RecordingRow) throws
    func recording(_ id: String, org: String) throws -> RecordingRow?
    /// Newest first; `after` is the (created_at, id) of the previous page's last row.
    func recordings(org: String, callID: String?, from: Int64?, before: Int64?, after: (Int64, String)?, limit: Int) throws -> [RecordingRow]
    func delete(_ id: String, org: String) throws -> Bool
    /// Points the recording at a new version of its file (a redaction); false when it is gone.
    /// Points the recording at a muted WAV file, only while its file is still `oldBlobID` (two
    /// redactions at once must not undo each other's muting).
    func replaceBlob(of id: String, org: String, replacing oldBlobID: String, with blobID: String, sha256: Data, sizeBytes: UInt64) throws
        -> ContentReplacement
    /// Points the recording at re-encoded content (a compressed recording muted), only while its
    /// file is still `oldBlobID`.
    func replaceContent(of id: String, org: String, replacing oldBlobID: String, with content: RecordingContent) throws -> ContentReplacement
    /// Flags a recording that could not be muted (redaction state 2, with why); false when it is gone.
    func markRedactionFailed(_ id: String, org: String, reason: String) throws -> Bool

    // Share links
    func insert(_ link: ShareLinkRow) throws
    func shareLink(secretHash: Data) throws -> ShareLinkRow?
    func shareLinks(org: String, recording: String?) throws -> [ShareLinkRow]
    func revokeShareLink(_ id: String, org: String, at now: Int64) throws -> Bool
    func countOpen(_ id: String) throws
    func deleteShareLinks(recording: String, org: String) throws
    /// The organisation's longest link lifetime, when it set one: (seconds, when, by whom).
    func shareLinkPolicy(org: String) throws -> (maxTTLSeconds: UInt32, updatedAt: Int64, updatedBy: String)?
    func putShareLinkPolicy(org: String, maxTTLSeconds: UInt32, at time: Int64, by actor: String) throws

    // An organisation's end
    /// The blob (and key) names of the organisation's recordings.
    func blobIDs(org: String) throws -> [String]
    /// Deletes every recording and share link of `org`; returns how many of each.
    func deleteAll(org: String) throws -> (recordings: Int, shareLinks: Int)

    // Deleted calls
    /// Notes that the call was deleted everywhere: no recording is taken for it from now on.
    func markCallDeleted(org: String, callID: String, at time: Int64) throws
    func isCallDeleted(org: String, callID: String) throws -> Bool

    // Retried uploads
    /// The call's recording that was received as the file with this SHA-256 (whatever a
    /// redaction made of it since), if any.
    func recording(org: String, callID: String, receivedSHA256: Data) throws -> RecordingRow?
}

/// A share link's row: the secret half of its token only as a hash, the note sealed.
struct ShareLinkRow: Sendable {
    let id: String
    let secretHash: Data
    let org: String
    let recording: String
    let expiresAt: Int64
    let sealedNote: Data
    let createdBy: String
    let createdAt: Int64
    let revokedAt: Int64?
    let opens: Int
}

struct SQLiteRecordingRepository: RecordingRepository, SQLiteRepository {
    static let schema = """
        CREATE TABLE recordings (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            call_id TEXT NOT NULL,
            format INTEGER NOT NULL,
            sample_rate_hz INTEGER NOT NULL,
            channels INTEGER NOT NULL,
            duration_ms INTEGER NOT NULL,
            size_bytes INTEGER NOT NULL,
            sha256 BLOB NOT NULL,
            chunk_bytes INTEGER NOT NULL,
            created_at_unix_ms INTEGER NOT NULL
        );
        CREATE INDEX recordings_by_org_time ON recordings (org_id, created_at_unix_ms, id);
        CREATE INDEX recordings_by_call ON recordings (org_id, call_id);
        """

    static let shareLinks = """
        CREATE TABLE share_links (
            id TEXT PRIMARY KEY,
            secret_hash BLOB NOT NULL UNIQUE,
            org_id TEXT NOT NULL,
            recording_id TEXT NOT NULL,
            expires_at_unix_ms INTEGER NOT NULL,
            note BLOB NOT NULL,
            created_by TEXT NOT NULL,
            created_at_unix_ms INTEGER NOT NULL,
            revoked_at_unix_ms INTEGER,
            opens INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX share_links_by_recording ON share_links (org_id, recording_id);
        """

    let database: Database

    static func statements(on connection: Connection) -> any RecordingTransaction { Transaction(connection: connection) }

    func allBlobIDs() throws -> Set<String> {
        try database.sync { Set(try $0.query("SELECT id, blob_id FROM recordings").compactMap(Transaction.blobID)) }
    }

    /// A version of its own for each recording's file (redaction writes a new one).
    static let blobVersions = "ALTER TABLE recordings ADD COLUMN blob_id TEXT NOT NULL DEFAULT '';"

    /// Whether a recording was muted, or could not be (P16: never silently kept as is).
    static let redactionStates = """
        ALTER TABLE recordings ADD COLUMN redaction_state INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE recordings ADD COLUMN redaction_failure TEXT NOT NULL DEFAULT '';
        """

    /// The SHA-256 of the file as it was received (a redaction changes `sha256`), so a gateway
    /// retrying an upload whose answer it lost gets the recording already stored, not a second.
    static let receivedFiles = """
        ALTER TABLE recordings ADD COLUMN received_sha256 BLOB;
        UPDATE recordings SET received_sha256 = sha256;
        CREATE INDEX recordings_by_received_file ON recordings (org_id, call_id, received_sha256);
        """

    /// The calls compliance deleted everywhere (P10): a recording uploaded for one afterwards is
    /// refused, so nothing of a deleted call can come back out of reach of its deletion.
    static let deletedCalls = """
        CREATE TABLE deleted_calls (
            org_id TEXT NOT NULL,
            call_id TEXT NOT NULL,
            deleted_at_unix_ms INTEGER NOT NULL,
            PRIMARY KEY (org_id, call_id)
        );
        """

    static let linkPolicies = """
        CREATE TABLE share_link_policies (
            org_id TEXT PRIMARY KEY,
            max_ttl_seconds INTEGER NOT NULL,
            updated_at_unix_ms INTEGER NOT NULL,
            updated_by TEXT NOT NULL
        );
        """


    struct Transaction: RecordingTransaction {
        let connection: Connection
        static let columns = "id, org_id, call_id, format, sample_rate_hz, channels, duration_ms, size_bytes, sha256, chunk_bytes, created_at_unix_ms, blob_id"
        /// What reads select: the inserted columns and the redaction state.
        static let readColumns = columns + ", redaction_state, redaction_failure"

        func insert(_ r: RecordingRow) throws {
            try connection.execute("INSERT INTO recordings (\(Self.columns), received_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                   r.id, r.org, r.callID, r.format, Int64(r.sampleRate), Int64(r.channels), Int64(r.durationMs),
                                   Int64(r.sizeBytes), r.sha256, r.chunkBytes, r.createdAt, r.blobID, r.sha256)
        }

        func recording(_ id: String, org: String) throws -> RecordingRow? {
            try connection.query("SELECT \(Self.readColumns) FROM recordings WHERE id = ? AND org_id = ?", id, org).first.flatMap(Self.row)
        }

        func recordings(org: String, callID: String?, from: Int64?, before: Int64?, after: (Int64, String)?, limit: Int) throws -> [RecordingRow] {
            var conditions = ["org_id = ?"]
            var values: [any SQLiteBindable] = [org]
            if let callID { conditions.append("call_id = ?"); values.append(callID) }
            if let from { conditions.append("created_at_unix_ms >= ?"); values.append(from) }
            if let before { conditions.append("created_at_unix_ms < ?"); values.append(before) }
            if let (time, id) = after {
                conditions.append("(created_at_unix_ms < ? OR (created_at_unix_ms = ? AND id < ?))")
                values += [time, time, id]
            }
            return try connection.query("""
                SELECT \(Self.readColumns) FROM recordings WHERE \(conditions.joined(separator: " AND "))
                ORDER BY created_at_unix_ms DESC, id DESC LIMIT \(limit)
                """, bindings: values).compactMap(Self.row)
        }

        func delete(_ id: String, org: String) throws -> Bool {
            try connection.execute("DELETE FROM recordings WHERE id = ? AND org_id = ?", id, org) == 1
        }

        static let linkColumns = "id, secret_hash, org_id, recording_id, expires_at_unix_ms, note, created_by, created_at_unix_ms, revoked_at_unix_ms, opens"

        func insert(_ link: ShareLinkRow) throws {
            try connection.execute("INSERT INTO share_links (\(Self.linkColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, 0)",
                                   link.id, link.secretHash, link.org, link.recording, link.expiresAt, link.sealedNote, link.createdBy, link.createdAt)
        }

        func shareLink(secretHash: Data) throws -> ShareLinkRow? {
            try connection.query("SELECT \(Self.linkColumns) FROM share_links WHERE secret_hash = ?", secretHash).first.flatMap(Self.link)
        }

        func shareLinks(org: String, recording: String?) throws -> [ShareLinkRow] {
            if let recording {
                return try connection.query("SELECT \(Self.linkColumns) FROM share_links WHERE org_id = ? AND recording_id = ? ORDER BY created_at_unix_ms DESC",
                                            org, recording).compactMap(Self.link)
            }
            return try connection.query("SELECT \(Self.linkColumns) FROM share_links WHERE org_id = ? ORDER BY created_at_unix_ms DESC LIMIT 1000", org)
                .compactMap(Self.link)
        }

        func revokeShareLink(_ id: String, org: String, at now: Int64) throws -> Bool {
            try connection.execute("UPDATE share_links SET revoked_at_unix_ms = ? WHERE id = ? AND org_id = ? AND revoked_at_unix_ms IS NULL",
                                   now, id, org) == 1
        }

        func countOpen(_ id: String) throws {
            try connection.execute("UPDATE share_links SET opens = opens + 1 WHERE id = ?", id)
        }

        func deleteShareLinks(recording: String, org: String) throws {
            try connection.execute("DELETE FROM share_links WHERE recording_id = ? AND org_id = ?", recording, org)
        }

        func shareLinkPolicy(org: String) throws -> (maxTTLSeconds: UInt32, updatedAt: Int64, updatedBy: String)? {
            try connection.query("SELECT max_ttl_seconds, updated_at_unix_ms, updated_by FROM share_link_policies WHERE org_id = ?", org).first.map {
                (UInt32($0.int("max_ttl_seconds") ?? 0), $0.int("updated_at_unix_ms") ?? 0, $0.text("updated_by") ?? "")
            }
        }

        func putShareLinkPolicy(org: String, maxTTLSeconds: UInt32, at time: Int64, by actor: String) throws {
            try connection.execute("DELETE FROM share_link_policies WHERE org_id = ?", org)
            try connection.execute("INSERT INTO share_link_policies (org_id, max_ttl_seconds, updated_at_unix_ms, updated_by) VALUES (?, ?, ?, ?)",
                                   org, Int64(maxTTLSeconds), time, actor)
        }

        func blobIDs(org: String) throws -> [String] {
            try connection.query("SELECT id, blob_id FROM recordings WHERE org_id = ?", org).compactMap(Self.blobID)
        }

        func replaceBlob(of id: String, org: String, replacing oldBlobID: String, with blobID: String, sha256: Data, sizeBytes: UInt64) throws
            -> ContentReplacement {
            guard let current = try recording(id, org: org) else { return .gone }
            guard current.blobID == oldBlobID else { return .changed }
            try connection.execute("""
                UPDATE recordings SET blob_id = ?, sha256 = ?, size_bytes = ?,
                    redaction_state = CASE WHEN redaction_state = 2 THEN 2 ELSE 1 END WHERE id = ? AND org_id = ?
                """, blobID, sha256, Int64(sizeBytes), id, org)
            return .replaced
        }

        func replaceContent(of id: String, org: String, replacing oldBlobID: String, with c: RecordingContent) throws -> ContentReplacement {
            guard let current = try recording(id, org: org) else { return .gone }
            guard current.blobID == oldBlobID else { return .changed }
            try connection.execute("""
                UPDATE recordings SET blob_id = ?, format = ?, sample_rate_hz = ?, channels = ?, duration_ms = ?, size_bytes = ?, sha256 = ?,
                    redaction_state = CASE WHEN redaction_state = 2 THEN 2 ELSE 1 END WHERE id = ? AND org_id = ?
                """, c.blobID, c.format, Int64(c.sampleRate), Int64(c.channels), Int64(c.durationMs), Int64(c.sizeBytes), c.sha256, id, org)
            return .replaced
        }

        func markRedactionFailed(_ id: String, org: String, reason: String) throws -> Bool {
            try connection.execute("UPDATE recordings SET redaction_state = 2, redaction_failure = ? WHERE id = ? AND org_id = ?", reason, id, org) == 1
        }

        /// Rows written before blob versions name their file after the recording.
        static func blobID(_ row: Row) -> String? {
            guard let id = row.text("id") else { return nil }
            let blob = row.text("blob_id") ?? ""
            return blob.isEmpty ? id : blob
        }

        func markCallDeleted(org: String, callID: String, at time: Int64) throws {
            try connection.execute("INSERT INTO deleted_calls (org_id, call_id, deleted_at_unix_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                                   org, callID, time)
        }

        func recording(org: String, callID: String, receivedSHA256: Data) throws -> RecordingRow? {
            try connection.query("SELECT \(Self.readColumns) FROM recordings WHERE org_id = ? AND call_id = ? AND received_sha256 = ? ORDER BY created_at_unix_ms, id",
                                 org, callID, receivedSHA256).first.flatMap(Self.row)
        }

        func isCallDeleted(org: String, callID: String) throws -> Bool {
            try !connection.query("SELECT 1 AS deleted FROM deleted_calls WHERE org_id = ? AND call_id = ?", org, callID).isEmpty
        }

        func deleteAll(org: String) throws -> (recordings: Int, shareLinks: Int) {
            try connection.execute("DELETE FROM deleted_calls WHERE org_id = ?", org)
            let links = try connection.execute("DELETE FROM share_links WHERE org_id = ?", org)
            return (try connection.execute("DELETE FROM recordings WHERE org_id = ?", org), links)
        }

        static func link(_ row: Row) -> ShareLinkRow? {
            guard let id = row.text("id"), let hash = row.blob("secret_hash"), let org = row.text("org_id"), let recording = row.text("recording_id"),
                  let note = row.blob("note") else { return nil }
            return ShareLinkRow(id: id, secretHash: hash, org: org, recording: recording, expiresAt: row.int("expires_at_unix_ms") ?? 0,
                                sealedNote: note, createdBy: row.text("created_by") ?? "", createdAt: row.int("created_at_unix_ms") ?? 0,
                                revokedAt: row.int("revoked_at_unix_ms"), opens: Int(row.int("opens") ?? 0))
        }

        static func row(_ row: Row) -> RecordingRow? {
            guard let id = row.text("id"), let org = row.text("org_id"), let call = row.text("call_id"), let sha = row.blob("sha256") else { return nil }
            return RecordingRow(id: id, org: org, callID: call, format: Int(row.int("format") ?? 0),
                                sampleRate: UInt32(row.int("sample_rate_hz") ?? 0), channels: UInt32(row.int("channels") ?? 0),
                                durationMs: UInt64(row.int("duration_ms") ?? 0), sizeBytes: UInt64(row.int("size_bytes") ?? 0),
                                sha256: sha, chunkBytes: Int(row.int("chunk_bytes") ?? 0), createdAt: row.int("created_at_unix_ms") ?? 0,
                                blobID: Self.blobID(row) ?? id, redactionState: Int(row.int("redaction_state") ?? 0),
                                redactionFailure: row.text("redaction_failure") ?? "")
        }
    }
}
