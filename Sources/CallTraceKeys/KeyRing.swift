import CallTraceStorage
import Foundation
import Synchronization

/// The per-organisation keys of one service, stored only wrapped under its master key, in a
/// key store of their own — a separate SQLite file that data backups never contain.
///
/// Each organisation gets a data key (AES-256-GCM, seals its fields and audio) and an index key
/// (HMAC-SHA256, its blind index). Keys exist only once a service creates them for an
/// organisation it knows (`createKeys(for:)`: identity when the organisation is created, other
/// services on its first authorised write); sealing, opening and indexing never create keys, so
/// a made-up organisation id cannot grow the key store. `shred` deletes an organisation's keys
/// and tombstones it, so it never gets keys again; since a data backup holds no keys, restoring
/// any older data backup leaves that organisation's data unreadable while every other
/// organisation's reads as before.
public final class KeyRing: Sendable {
    /// The key store's schema.
    public static let migrations = [Migration(version: 1, schema), Migration(version: 2, tombstones), Migration(version: 3, objectKeys)]

    static let schema = """
        CREATE TABLE org_keys (
            org_id TEXT PRIMARY KEY,
            wrapped_data_key BLOB NOT NULL,
            wrapped_index_key BLOB NOT NULL,
            created_at_unix_ms INTEGER NOT NULL
        );
        """

    static let tombstones = """
        CREATE TABLE shredded_orgs (
            org_id TEXT PRIMARY KEY,
            shredded_at_unix_ms INTEGER NOT NULL
        );
        """

    /// A key of its own per stored object (a recording), wrapped under the organisation's data
    /// key: deleting the row destroys that object in every backup of its file, and shredding
    /// the organisation destroys all of them at once.
    static let objectKeys = """
        CREATE TABLE object_keys (
            org_id TEXT NOT NULL,
            object_id TEXT NOT NULL,
            wrapped_key BLOB NOT NULL,
            created_at_unix_ms INTEGER NOT NULL,
            PRIMARY KEY (org_id, object_id)
        );
        """

    struct OrgKeys: Sendable {
        let data: SecretKey
        let index: SecretKey
    }

    private let store: Database
    private let master: Mutex<MasterKey>
    private let cache = Mutex<[String: OrgKeys]>([:])

    /// - Parameter keyStore: the key store, opened with `KeyRing.migrations`; never the data database.
    public init(keyStore: Database, masterKey: MasterKey) {
        self.store = keyStore
        self.master = Mutex(masterKey)
    }

    /// Creates the organisation's keys if it has none yet (committed to the key store before any
    /// data is sealed under them). Call it only for an organisation the service knows exists.
    ///
    /// - Throws: `KeyError(.noKey)` for an organisation that was shredded: it never gets keys again.
    public func createKeys(for org: String) throws {
        _ = try keys(for: org, create: true)
    }

    /// True when the organisation has keys (it was created here and not shredded).
    public func hasKeys(for org: String) throws -> Bool {
        do {
            _ = try keys(for: org, create: false)
            return true
        } catch let error as KeyError where error.kind == .noKey {
            return false
        }
    }

    /// The organisation's keys; created only when `create` is set.
    func keys(for org: String, create: Bool) throws -> OrgKeys {
        if let cached = cache.withLock({ $0[org] }) { return cached }
        return try store.sync { connection in try connection.transaction { try keys(for: org, create: create, in: connection) } }
    }

    private func keys(for org: String, create: Bool, in connection: Connection) throws -> OrgKeys {
        if let cached = cache.withLock({ $0[org] }) { return cached }
        let master = self.master.withLock { $0 }
        if let row = try connection.query("SELECT wrapped_data_key, wrapped_index_key FROM org_keys WHERE org_id = ?", org).first,
           let wrappedData = row.blob("wrapped_data_key"), let wrappedIndex = row.blob("wrapped_index_key") {
            let keys = OrgKeys(
                data: try AESGCM.openKey(wrappedData, under: master.key, associatedData: Self.wrapAAD(org, "data"), what: "data key of \(org)"),
                index: try AESGCM.openKey(wrappedIndex, under: master.key, associatedData: Self.wrapAAD(org, "index"), what: "index key of \(org)"))
            cache.withLock { $0[org] = keys }
            return keys
        }
        guard create else { throw KeyError(.noKey, "organisation \(org) has no keys (destroyed or never created)") }
        guard try connection.query("SELECT 1 FROM shredded_orgs WHERE org_id = ?", org).isEmpty else {
            throw KeyError(.noKey, "organisation \(org) was shredded; it never gets keys again")
        }
        let keys = OrgKeys(data: try SecretKey.random(), index: try SecretKey.random())
        try connection.execute(
            "INSERT INTO org_keys (org_id, wrapped_data_key, wrapped_index_key, created_at_unix_ms) VALUES (?, ?, ?, ?)",
            org, try AESGCM.seal(key: keys.data, under: master.key, associatedData: Self.wrapAAD(org, "data")),
            try AESGCM.seal(key: keys.index, under: master.key, associatedData: Self.wrapAAD(org, "index")),
            Int64(Date().timeIntervalSince1970 * 1000))
        cache.withLock { $0[org] = keys }
        return keys
    }

    private static func wrapAAD(_ org: String, _ purpose: String) -> Data { Data("calltrace/org-key/\(purpose)/\(org)".utf8) }

    // MARK: Fields

    /// Seals `plaintext` for one cell: the ciphertext opens only for this org, table, column and row.
    public func seal(_ plaintext: Data, org: String, table: String, column: String, row: String) throws -> Data {
        try AESGCM.seal(plaintext, key: keys(for: org, create: false).data,
                        associatedData: Self.fieldAAD(org, table, column, row))
    }

    /// Opens a sealed cell. Throws `KeyError(.tampered)` loudly for a ciphertext that was
    /// altered or copied from another cell or organisation; never returns empty data instead.
    public func open(_ sealed: Data, org: String, table: String, column: String, row: String) throws -> Data {
        try AESGCM.open(sealed, key: keys(for: org, create: false).data,
                        associatedData: Self.fieldAAD(org, table, column, row), what: "\(table).\(column) of row \(row)")
    }

    private static func fieldAAD(_ org: String, _ table: String, _ column: String, _ row: String) -> Data {
        // Lengths count UTF-8 bytes, so no two (org, row) pairs can spell the same string.
        Data("calltrace/field/\(org.utf8.count):\(org)/\(table)/\(column)/\(row.utf8.count):\(row)".utf8)
    }

    // MARK: Blind index

    /// A keyed, per-organisation blind index of a phone number: HMAC-SHA256 of its E.164 form,
    /// so equal numbers can be found without decrypting any row.
    public func blindIndex(phoneNumber: String, org: String) throws -> Data {
        guard let e164 = PhoneNumber.e164(phoneNumber) else {
            throw KeyError(.crypto, "not a phone number")
        }
        return try blindIndex(e164, kind: "e164", org: org)
    }

    /// A blind index of any exact value (e.g. a lower-cased e-mail), separated by `kind`.
    public func blindIndex(_ value: String, kind: String, org: String) throws -> Data {
        AESGCM.hmacSHA256(key: try keys(for: org, create: false).index, message: Data("\(kind):\(value)".utf8))
    }

    // MARK: Object keys and chunked blobs (audio)

    /// A new key for `object` of `org`, stored wrapped under the organisation's data key before
    /// it is returned (so nothing is ever sealed under a key that is not kept).
    ///
    /// - Throws: `KeyError(.noKey)` when the organisation has no keys.
    public func createObjectKey(org: String, object: String) throws -> ObjectKey {
        let orgKey = try keys(for: org, create: false).data
        let key = try SecretKey.random()
        let wrapped = try AESGCM.seal(key: key, under: orgKey, associatedData: Self.objectAAD(org, object))
        try store.sync { connection in
            try connection.execute("INSERT INTO object_keys (org_id, object_id, wrapped_key, created_at_unix_ms) VALUES (?, ?, ?, ?)",
                                   org, object, wrapped, Int64(Date().timeIntervalSince1970 * 1000))
        }
        return ObjectKey(key: key, org: org, object: object)
    }

    /// The key of `object`; `KeyError(.noKey)` once it (or its organisation's key) is destroyed.
    public func objectKey(org: String, object: String) throws -> ObjectKey {
        let orgKey = try keys(for: org, create: false).data
        guard let wrapped = try store.sync({ connection in
            try connection.query("SELECT wrapped_key FROM object_keys WHERE org_id = ? AND object_id = ?", org, object).first?.blob("wrapped_key")
        }) else { throw KeyError(.noKey, "object \(object) of \(org) has no key (destroyed or never created)") }
        let key = try AESGCM.openKey(wrapped, under: orgKey, associatedData: Self.objectAAD(org, object), what: "key of object \(object)")
        return ObjectKey(key: key, org: org, object: object)
    }

    /// Destroys the key of `object`: overwritten in the key-store file and checkpointed out of
    /// its log, so whatever was sealed under it is unreadable in every copy. Nothing to destroy
    /// is not an error.
    public func destroyObjectKey(org: String, object: String) throws {
        try destroyObjectKeys(org: org, objects: [object])
    }

    /// `destroyObjectKey` for many objects at once, in one transaction and one checkpoint.
    public func destroyObjectKeys(org: String, objects: [String]) throws {
        guard !objects.isEmpty else { return }
        try store.sync { connection in
            try connection.execute("PRAGMA secure_delete = ON")
            try connection.transaction {
                for object in objects {
                    try connection.execute("DELETE FROM object_keys WHERE org_id = ? AND object_id = ?", org, object)
                }
            }
            _ = try connection.query("PRAGMA wal_checkpoint(TRUNCATE)")
        }
    }

    /// Every object that has a key, for start-up sweeps (a key whose object was never stored).
    public func objectKeyIDs() throws -> [(org: String, object: String)] {
        try store.sync { connection in
            try connection.query("SELECT org_id, object_id FROM object_keys").compactMap { row in
                guard let org = row.text("org_id"), let object = row.text("object_id") else { return nil }
                return (org, object)
            }
        }
    }

    /// Seals one chunk of an object. Its associated data binds the org, the object, the chunk's
    /// index and whether it is the last, so a chunk cannot be dropped, reordered, duplicated or
    /// taken from another object (or organisation) without detection.
    public func sealChunk(_ chunk: Data, with key: ObjectKey, index: Int, isLast: Bool) throws -> Data {
        try AESGCM.seal(chunk, key: key.key, associatedData: Self.chunkAAD(key.org, key.object, index, isLast))
    }

    /// Opens chunk `index` of the object.
    public func openChunk(_ sealed: Data, with key: ObjectKey, index: Int, isLast: Bool) throws -> Data {
        try AESGCM.open(sealed, key: key.key, associatedData: Self.chunkAAD(key.org, key.object, index, isLast),
                        what: "chunk \(index) of \(key.object)")
    }

    /// The bytes a sealed chunk of `plaintext` bytes takes.
    public static func sealedSize(ofChunk plaintext: Int) -> Int { plaintext + AESGCM.overhead }

    private static func objectAAD(_ org: String, _ object: String) -> Data {
        Data("calltrace/object-key/\(org.utf8.count):\(org)/\(object.utf8.count):\(object)".utf8)
    }

    private static func chunkAAD(_ org: String, _ blob: String, _ index: Int, _ isLast: Bool) -> Data {
        Data("calltrace/chunk/\(org.utf8.count):\(org)/\(blob.utf8.count):\(blob)/\(index)/\(isLast ? "last" : "more")".utf8)
    }

    // MARK: Lifecycle

    /// Crypto-shredding: destroys the organisation's keys and tombstones it. Everything sealed
    /// for it becomes unreadable at once, and stays so in every data backup (they hold no keys).
    ///
    /// The wrapped keys are overwritten in the key-store file (`secure_delete`) and the
    /// write-ahead log is checkpointed and truncated, so no copy stays in the live files. Only a
    /// key-store backup taken before the shred could bring them back: keep those on a short
    /// retention, and rotate the master key after a shred (`rotate-master-key`), so no older
    /// copy of the key store can be opened.
    public func shred(org: String) throws {
        try store.sync { connection in
            try connection.execute("PRAGMA secure_delete = ON")
            try connection.transaction {
                try connection.execute("DELETE FROM org_keys WHERE org_id = ?", org)
                try connection.execute("DELETE FROM object_keys WHERE org_id = ?", org)
                if try connection.query("SELECT 1 FROM shredded_orgs WHERE org_id = ?", org).isEmpty {
                    try connection.execute("INSERT INTO shredded_orgs (org_id, shredded_at_unix_ms) VALUES (?, ?)",
                                           org, Int64(Date().timeIntervalSince1970 * 1000))
                }
            }
            _ = try connection.query("PRAGMA wal_checkpoint(TRUNCATE)")
        }
        cache.withLock { $0[org] = nil }
    }

    /// Re-wraps every organisation key under `newKey`, in one transaction; data is untouched.
    public func rotateMasterKey(to newKey: MasterKey) throws -> Int {
        let old = master.withLock { $0 }
        let count = try store.sync { connection in try connection.transaction {
            let rows = try connection.query("SELECT org_id, wrapped_data_key, wrapped_index_key FROM org_keys")
            for row in rows {
                guard let org = row.text("org_id"), let data = row.blob("wrapped_data_key"),
                      let index = row.blob("wrapped_index_key") else { continue }
                let dataKey = try AESGCM.openKey(data, under: old.key, associatedData: Self.wrapAAD(org, "data"), what: "data key of \(org)")
                let indexKey = try AESGCM.openKey(index, under: old.key, associatedData: Self.wrapAAD(org, "index"), what: "index key of \(org)")
                try connection.execute("UPDATE org_keys SET wrapped_data_key = ?, wrapped_index_key = ? WHERE org_id = ?",
                                       try AESGCM.seal(key: dataKey, under: newKey.key, associatedData: Self.wrapAAD(org, "data")),
                                       try AESGCM.seal(key: indexKey, under: newKey.key, associatedData: Self.wrapAAD(org, "index")), org)
            }
            return rows.count
        } }
        master.withLock { $0 = newKey }
        return count
    }
}

/// The key of one stored object, held in wiped-on-release memory.
public struct ObjectKey: Sendable {
    let key: SecretKey
    public let org: String
    public let object: String
}
