import CallTraceStorage
import CallTraceSync
import Foundation

/// The per-organisation keys of one service, stored only wrapped under its master key, in a
/// key store of their own — a separate SQLite file, or a PostgreSQL database the service's
/// replicas share, that data backups never contain.
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
    public static let migrations = [Migration(version: 1, schema), Migration(version: 2, tombstones), Migration(version: 3, objectKeys),
                                    Migration(version: 4, identity)]

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

    /// The key store's own row: an id of its own, which the service's database records on its
    /// first start (so a database is never served with another key store, or a new empty one),
    /// and a check value — a known constant sealed under the master key — so a master key that
    /// does not open the store is refused at start-up, before anything is read or sealed. One row,
    /// written by `verifyMasterKey` when the store is first opened.
    static let identity = """
        CREATE TABLE key_store (
            key_store_id TEXT PRIMARY KEY,
            master_key_check BLOB NOT NULL,
            created_at_unix_ms INTEGER NOT NULL
        );
        """

    struct OrgKeys: Sendable {
        let data: SecretKey
        let index: SecretKey
    }

    /// How long an organisation's keys, once read, are used without reading the store again.
    /// Replicas of a service share one key store: after another replica shreds an organisation,
    /// this one seals or opens nothing of it for longer than this.
    public static let cacheLifetime: Duration = .seconds(10)

    private let store: Database
    private let master: Locked<MasterKey>
    private let cache = Locked<[String: (keys: OrgKeys, expires: Int64)]>([:])
    private let now: @Sendable () -> Int64

    /// - Parameters:
    ///   - keyStore: the key store, opened with `KeyRing.migrations`; never the data database.
    ///   - now: the time in Unix milliseconds, which the cache's lifetime is measured on.
    public init(keyStore: Database, masterKey: MasterKey,
                now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }) {
        self.store = keyStore
        self.master = Locked(masterKey)
        self.now = now
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

    /// The organisation's keys; created only when `create` is set. Cached for `cacheLifetime`
    /// once committed; `create` (a write's first step) also checks that cached keys are still in
    /// the store, so no replica writes for an organisation another one has shredded.
    func keys(for org: String, create: Bool) throws -> OrgKeys {
        if let cached = cached(org) {
            guard create else { return cached }
            if try store.sync({ try !$0.query("SELECT 1 FROM org_keys WHERE org_id = ?", org).isEmpty }) { return cached }
            cache.withLock { $0[org] = nil }
            throw KeyError(.noKey, "organisation \(org) was shredded; it never gets keys again")
        }
        let read: OrgKeys = try store.sync { connection in try connection.transaction { try self.keys(for: org, create: create, in: connection) } }
        remember(read, for: org)
        return read
    }

    private func cached(_ org: String) -> OrgKeys? {
        let now = self.now()
        return cache.withLock { cache in
            guard let entry = cache[org] else { return nil }
            guard entry.expires > now else {
                cache[org] = nil
                return nil
            }
            return entry.keys
        }
    }

    private func remember(_ keys: OrgKeys, for org: String) {
        let expires = now() + Self.cacheLifetime.components.seconds * 1000
        cache.withLock { $0[org] = (keys, expires) }
    }

    /// Reads (or creates) the keys in the caller's transaction; the caller caches them once it
    /// has committed.
    private func keys(for org: String, create: Bool, in connection: Connection) throws -> OrgKeys {
        let master = self.master.withLock { $0 }
        if let row = try connection.query("SELECT wrapped_data_key, wrapped_index_key FROM org_keys WHERE org_id = ?", org).first,
           let wrappedData = row.blob("wrapped_data_key"), let wrappedIndex = row.blob("wrapped_index_key") {
            let keys = OrgKeys(
                data: try AESGCM.openKey(wrappedData, under: master.key, associatedData: Self.wrapAAD(org, "data"), what: "data key of \(org)"),
                index: try AESGCM.openKey(wrappedIndex, under: master.key, associatedData: Self.wrapAAD(org, "index"), what: "index key of \(org)"))
            return keys
        }
        guard create else { throw KeyError(.noKey, "organisation \(org) has no keys (destroyed or never created)") }
        guard try connection.query("SELECT 1 FROM shredded_orgs WHERE org_id = ?", org).isEmpty else {
            throw KeyError(.noKey, "organisation \(org) was shredded; it never gets keys again")
        }
        // New keys only under the master key that opens the store: a replica still running with
        // the old key after rotate-master-key would wrap them where no one could open them.
        _ = try checkedID(under: master, in: connection)
        let keys = OrgKeys(data: try SecretKey.random(), index: try SecretKey.random())
        try connection.execute(
            "INSERT INTO org_keys (org_id, wrapped_data_key, wrapped_index_key, created_at_unix_ms) VALUES (?, ?, ?, ?)",
            org, try AESGCM.seal(key: keys.data, under: master.key, associatedData: Self.wrapAAD(org, "data")),
            try AESGCM.seal(key: keys.index, under: master.key, associatedData: Self.wrapAAD(org, "index")),
            now())
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
            try connection.transaction { try insertObjectKey(org: org, object: object, wrapped: wrapped, in: connection) }
        }
        return ObjectKey(key: key, org: org, object: object)
    }

    /// The key of `object`, created (and kept) first when it has none: for objects sealed cell by
    /// cell over time, such as a call's caller data or its transcript.
    ///
    /// - Throws: `KeyError(.noKey)` when the organisation has no keys.
    public func objectKey(org: String, object: String, creating: Bool) throws -> ObjectKey {
        guard creating else { return try objectKey(org: org, object: object) }
        let orgKey = try keys(for: org, create: false).data
        let fresh = try SecretKey.random()
        let wrapped = try store.sync { connection in
            try connection.transaction {
                if let existing = try connection.query("SELECT wrapped_key FROM object_keys WHERE org_id = ? AND object_id = ?", org, object)
                    .first?.blob("wrapped_key") {
                    // Sealed under again: a sweep's margin counts from now (`objectKeyIDs(createdBefore:)`).
                    try connection.execute("UPDATE object_keys SET created_at_unix_ms = ? WHERE org_id = ? AND object_id = ? AND created_at_unix_ms < ?",
                                           now(), org, object, now() - 60_000)
                    return existing
                }
                let wrapped = try AESGCM.seal(key: fresh, under: orgKey, associatedData: Self.objectAAD(org, object))
                try insertObjectKey(org: org, object: object, wrapped: wrapped, in: connection)
                return wrapped
            }
        }
        let key = try AESGCM.openKey(wrapped, under: orgKey, associatedData: Self.objectAAD(org, object), what: "key of object \(object)")
        return ObjectKey(key: key, org: org, object: object)
    }

    /// Keeps an object's wrapped key, in the caller's transaction: only while its organisation's
    /// keys are in the store. Keys read before another replica shredded the organisation are
    /// still in this one's cache for a while (`cacheLifetime`); no object key is added for it.
    private func insertObjectKey(org: String, object: String, wrapped: Data, in connection: Connection) throws {
        guard try !connection.query("SELECT 1 FROM org_keys WHERE org_id = ?", org).isEmpty else {
            cache.withLock { $0[org] = nil }
            throw KeyError(.noKey, "organisation \(org) has no keys (destroyed or never created)")
        }
        try connection.execute("INSERT INTO object_keys (org_id, object_id, wrapped_key, created_at_unix_ms) VALUES (?, ?, ?, ?)",
                               org, object, wrapped, now())
    }

    /// Seals one cell under an object's own key: it opens only with that key (destroyed with the
    /// object) and only for this org, table, column and row.
    public func seal(_ plaintext: Data, with key: ObjectKey, table: String, column: String, row: String) throws -> Data {
        try AESGCM.seal(plaintext, key: key.key, associatedData: Self.fieldAAD(key.org, table, column, row))
    }

    /// Opens a cell sealed with `seal(_:with:…)`.
    public func open(_ sealed: Data, with key: ObjectKey, table: String, column: String, row: String) throws -> Data {
        try AESGCM.open(sealed, key: key.key, associatedData: Self.fieldAAD(key.org, table, column, row), what: "\(table).\(column) of row \(row)")
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

    /// Destroys the key of `object` (`Database.syncErasing`): in a SQLite store overwritten and
    /// checkpointed out of its log, so whatever was sealed under it is unreadable in every copy
    /// of the data; in PostgreSQL deleted and vacuumed out of the table's live rows (its bytes
    /// can stay in free space and the write-ahead log until overwritten). Nothing to destroy
    /// is not an error.
    public func destroyObjectKey(org: String, object: String) throws {
        try destroyObjectKeys(org: org, objects: [object])
    }

    /// `destroyObjectKey` for many objects at once, in one transaction and one checkpoint.
    public func destroyObjectKeys(org: String, objects: [String]) throws {
        guard !objects.isEmpty else { return }
        try store.syncErasing(from: ["object_keys"]) { connection in
            for object in objects {
                try connection.execute("DELETE FROM object_keys WHERE org_id = ? AND object_id = ?", org, object)
            }
        }
    }

    /// Every object that has a key, for sweeps (a key whose object was never stored); with
    /// `createdBefore` (Unix ms, on this ring's clock), only keys made (or last taken again by
    /// `objectKey(creating:)`, to the minute) before then — a younger key may be another
    /// replica's, whose object is being written.
    public func objectKeyIDs(createdBefore cutoff: Int64? = nil) throws -> [(org: String, object: String)] {
        try store.sync { connection in
            try connection.query("SELECT org_id, object_id FROM object_keys WHERE created_at_unix_ms < ?", cutoff ?? Int64.max).compactMap { row in
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

    // MARK: The key store's identity and master-key check

    /// Whether the key store was never used: no id, no organisation keys, no shredded
    /// organisation. Such a store is new (or an empty file), whatever its path: beside a database
    /// that holds sealed data it is the wrong one, never a fresh start.
    public func isUnused() throws -> Bool {
        try store.sync { connection in
            try connection.query("SELECT 1 FROM key_store").isEmpty
                && connection.query("SELECT 1 FROM org_keys LIMIT 1").isEmpty
                && connection.query("SELECT 1 FROM shredded_orgs LIMIT 1").isEmpty
        }
    }

    /// Proves that the master key is the one this key store's keys are wrapped under, and returns
    /// the store's id.
    ///
    /// A store with a check value proves it by opening that value. A store written before check
    /// values existed proves it by opening one of its organisation keys (all are wrapped under the
    /// same master key), and is then given its check value and an id: `adopting` the id its
    /// database already recorded, when there is one, so a key-store backup taken before check
    /// values existed still belongs with that database. A store without any key accepts any
    /// master key (nothing is wrapped under one yet) and is sealed to it from now on.
    ///
    /// - Throws: `KeyError(.masterKey)` naming the master-key and key-store files (never a key)
    ///   when the master key does not open the store.
    public func verifyMasterKey(adopting recordedID: String? = nil) throws -> String {
        let master = self.master.withLock { $0 }
        return try store.sync { connection in try connection.transaction {
            if let id = try checkedID(under: master, in: connection) { return id }
            if let row = try connection.query("SELECT org_id, wrapped_data_key FROM org_keys LIMIT 1").first,
               let org = row.text("org_id"), let wrapped = row.blob("wrapped_data_key") {
                do {
                    _ = try AESGCM.openKey(wrapped, under: master.key, associatedData: Self.wrapAAD(org, "data"), what: "data key of \(org)")
                } catch {
                    throw wrongMasterKey(master)
                }
            }
            let id = recordedID ?? Self.newStoreID()
            try connection.execute("INSERT INTO key_store (key_store_id, master_key_check, created_at_unix_ms) VALUES (?, ?, ?)",
                                   id, try Self.sealCheck(id: id, under: master), now())
            return id
        } }
    }

    /// The store's id once its check value opens under `master`; nil when it has none yet.
    private func checkedID(under master: MasterKey, in connection: Connection) throws -> String? {
        guard let row = try connection.query("SELECT key_store_id, master_key_check FROM key_store").first,
              let id = row.text("key_store_id"), let check = row.blob("master_key_check") else { return nil }
        let opened: Data
        do {
            opened = try AESGCM.open(check, key: master.key, associatedData: Self.checkAAD(id), what: "the key store's check value")
        } catch {
            throw wrongMasterKey(master)
        }
        guard opened == Self.checkPlaintext else { throw wrongMasterKey(master) }
        return id
    }

    private func wrongMasterKey(_ master: MasterKey) -> KeyError {
        KeyError(.masterKey, "master key \(master.path) does not open key store \(store.path): its keys are wrapped under another master key "
                 + "(after rotate-master-key, only the new key opens it)")
    }

    /// What the check value seals: known, so opening it proves the key; bound to the store's id.
    private static let checkPlaintext = Data("calltrace key store check".utf8)
    private static func checkAAD(_ id: String) -> Data { Data("calltrace/key-store-check/\(id)".utf8) }
    private static func sealCheck(id: String, under master: MasterKey) throws -> Data {
        try AESGCM.seal(checkPlaintext, key: master.key, associatedData: checkAAD(id))
    }

    /// `ks_` and 32 hex digits: an id, not a secret.
    private static func newStoreID() -> String { "ks_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "") }

    // MARK: Lifecycle

    /// Crypto-shredding: destroys the organisation's keys and tombstones it. Everything sealed
    /// for it becomes unreadable at once, and stays so in every data backup (they hold no keys).
    ///
    /// In a SQLite store the wrapped keys are overwritten in the file (`secure_delete`) and the
    /// write-ahead log is checkpointed and truncated, so no copy stays in the live files; in
    /// PostgreSQL the organisation keys' table is rewritten and the object keys' vacuumed
    /// (`Database.syncErasing`), though copies can stay in freed space and the write-ahead log
    /// for a while. Only a key-store backup (or such a copy) from before the shred could bring
    /// them back: keep those on a short retention, and rotate the master key after a shred
    /// (`rotate-master-key`), so no older copy can be opened.
    /// Other replicas sharing the store stop using the keys within `cacheLifetime`.
    public func shred(org: String) throws {
        // Forgotten here whatever follows: the keys are gone from the store once the delete commits.
        defer { cache.withLock { $0[org] = nil } }
        try store.syncErasing(from: ["org_keys", "object_keys"], rewriting: ["org_keys"]) { connection in
            try connection.execute("DELETE FROM org_keys WHERE org_id = ?", org)
            try connection.execute("DELETE FROM object_keys WHERE org_id = ?", org)
            if try connection.query("SELECT 1 FROM shredded_orgs WHERE org_id = ?", org).isEmpty {
                try connection.execute("INSERT INTO shredded_orgs (org_id, shredded_at_unix_ms) VALUES (?, ?)",
                                       org, now())
            }
        }
    }

    /// Re-wraps every organisation key, and the check value, under `newKey`, in one transaction;
    /// data is untouched. From then on only `newKey` opens the store.
    ///
    /// - Throws: `KeyError(.masterKey)` when the current master key does not open the store
    ///   (nothing is re-wrapped).
    public func rotateMasterKey(to newKey: MasterKey) throws -> Int {
        let old = master.withLock { $0 }
        let count = try store.sync { connection in try connection.transaction {
            if let id = try checkedID(under: old, in: connection) {
                try connection.execute("UPDATE key_store SET master_key_check = ? WHERE key_store_id = ?", try Self.sealCheck(id: id, under: newKey), id)
            }
            let rows = try connection.query("SELECT org_id, wrapped_data_key, wrapped_index_key FROM org_keys")
            for row in rows {
                guard let org = row.text("org_id"), let data = row.blob("wrapped_data_key"),
                      let index = row.blob("wrapped_index_key") else { continue }
                let dataKey: SecretKey, indexKey: SecretKey
                do {
                    dataKey = try AESGCM.openKey(data, under: old.key, associatedData: Self.wrapAAD(org, "data"), what: "data key of \(org)")
                    indexKey = try AESGCM.openKey(index, under: old.key, associatedData: Self.wrapAAD(org, "index"), what: "index key of \(org)")
                } catch {
                    throw wrongMasterKey(old)
                }
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
