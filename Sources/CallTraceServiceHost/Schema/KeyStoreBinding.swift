import CallTraceKeys
import CallTraceStorage
import Foundation

/// Which key store a service's database belongs with: the key store's id (`KeyRing.verifyMasterKey`),
/// recorded in the database the first time the two are served together.
///
/// The key store holds the only keys that open the database's sealed rows, and its default path
/// follows `master_key` (beside it, named after the database). Without the binding, a service
/// pointed at a master key in another folder, or at another `key_store`, would create a new,
/// empty key store there and serve: every recording NOT_FOUND, every sealed field unreadable,
/// and the keys it made meanwhile in no backup. With it, start-up refuses in one line naming
/// the files and what to do: a database that was served with a key store opens only with that
/// store (or a backup of it: a backup keeps the id), never with a new one.
///
/// The id decides, not the path: restoring the key store elsewhere, or renaming it, is fine; a
/// store that merely sits at the expected path is not. The path it was last opened at is kept
/// beside the id only to name it in a refusal. The table is the host's own, created on every
/// start when missing, apart from the service's numbered migrations: it needs no migration in
/// any service, and a database of any schema version has it.
enum KeyStoreBinding {
    static let schema = """
        CREATE TABLE IF NOT EXISTS key_store_binding (
            key_store_id TEXT PRIMARY KEY,
            key_store_path TEXT NOT NULL,
            bound_at_unix_ms INTEGER NOT NULL
        )
        """

    /// The key store the database was served with: its id, and where it was opened last (only
    /// a hint for the operator: the id decides).
    struct Recorded: Equatable {
        let id: String
        let path: String
    }

    /// Tables the host fills by itself on a first start (durable jobs and their schedules, this
    /// binding): rows there say nothing about organisations' sealed data.
    static let hostTables: Set<String> = ["jobs", "job_schedules", "key_store_binding", "schema_tracks"]

    /// Opens the key store at `configuration.keyStorePath` for `database` under `masterKey`:
    /// creates it only beside a database that holds no data, proves the master key opens it, and
    /// checks (or, on the first start, records) that it is the database's own.
    ///
    /// - Throws: `ConfigurationError` when the key store is missing, unused or another one while
    ///   the database was served with one (or, for a database from before bindings, holds data);
    ///   `KeyError(.masterKey)` when the master key does not open it. Nothing is created then.
    static func openKeyStore(configuration: ServiceConfiguration, masterKey: MasterKey, for database: Database,
                             clock: any WallClock) throws -> (store: Database, keys: KeyRing) {
        let path = configuration.keyStorePath
        let shared = configuration.keyStoreIsPostgres
        let absolutePath = shared ? path : URL(fileURLWithPath: path).standardizedFileURL.path
        let recorded = try self.recorded(in: database)
        // Whether a new key store here would lose data: the database says which store it was
        // served with; a database from before bindings says so by holding any row.
        let needsExisting = try recorded != nil || holdsData(database)
        func refusal(_ problem: String) -> ConfigurationError {
            let follows = configuration.keyStore == nil
                ? " (key_store is not set, so it is looked for beside master_key \(configuration.masterKey ?? ""), named after the database)" : ""
            let served = recorded.map { "database \(database.path) was served with key store \($0.id), last opened at \($0.path)" }
                ?? "database \(database.path) holds data sealed under the keys of a key store"
            let remedy = recorded.map { "set key_store to \($0.path) (where it was last opened) or wherever it is now, or restore it from its backup" }
                ?? "set key_store to the key store it was served with, or restore that key store from its backup"
            return ConfigurationError("\(problem)\(follows), but \(served); a new, empty key store would leave every sealed record unreadable: \(remedy)")
        }
        guard shared || FileManager.default.fileExists(atPath: path) || !needsExisting else {
            throw refusal("key store \(path) does not exist")
        }
        let store = try Database.open(path, passwordFile: configuration.keyStorePasswordFile)
        do {
            // Never the service's database itself (it has the binding by now): its backups
            // would hold the keys a shred destroys, and the two schemas would be mixed.
            if try store.sync({ try $0.hasTable(anywhere: "key_store_binding") }) {
                throw ConfigurationError("key_store \(path) is a service's database, not a key store: the keys must be kept apart from the data, "
                                         + "so that a backup of the data never holds them; give the key store a database (or file) of its own")
            }
            try store.migrate(KeyRing.migrations)
            // The key store's user vacuums the deleted keys out of its tables after a shred:
            // PostgreSQL lets only a table's owner, and says so only in a warning.
            let unowned = try Set(["org_keys", "object_keys"]).subtracting(store.sync { try $0.ownedTableNames() })
            guard unowned.isEmpty else {
                throw ConfigurationError("key_store \(path): its user does not own table(s) \(unowned.sorted().joined(separator: ", ")), so it cannot vacuum "
                                         + "destroyed keys out of them; connect as the tables' owner (or ALTER TABLE … OWNER TO it)")
            }
            let keys = KeyRing(keyStore: store, masterKey: masterKey, now: { clock.nowUnixMs })
            if needsExisting, try keys.isUnused() {
                throw refusal("key store \(path) is empty")
            }
            let id = try keys.verifyMasterKey(adopting: recorded?.id)
            if let recorded, recorded.id != id {
                throw refusal("key store \(path) is \(id)")
            }
            if recorded != Recorded(id: id, path: absolutePath) {
                // Read again in the write: a replica of the service starting beside this one on
                // a shared database may have bound another key store meanwhile.
                let bound = try database.sync { connection in
                    try connection.transaction { () -> String? in
                        let now = try connection.query("SELECT key_store_id FROM key_store_binding").first?.text("key_store_id")
                        guard now == nil || now == id else { return now }
                        _ = try connection.execute("DELETE FROM key_store_binding")
                        _ = try connection.execute("INSERT INTO key_store_binding (key_store_id, key_store_path, bound_at_unix_ms) VALUES (?, ?, ?)",
                                                   id, absolutePath, clock.nowUnixMs)
                        return nil
                    }
                }
                if let bound { throw refusal("key store \(path) is \(id), and the database was bound to \(bound) as this one started") }
            }
            return (store, keys)
        } catch {
            store.close()
            throw error
        }
    }

    /// The key store `database` was served with; nil before its first start with one.
    static func recorded(in database: Database) throws -> Recorded? {
        try database.sync { connection in
            try connection.transaction { try connection.runSchema(schema) }
            return try connection.query("SELECT key_store_id, key_store_path FROM key_store_binding").first.flatMap { row in
                row.text("key_store_id").map { Recorded(id: $0, path: row.text("key_store_path") ?? "") }
            }
        }
    }

    /// Whether any of the service's own tables holds a row: data whose sealed fields need the
    /// key store it was written with. Only for databases from before bindings.
    static func holdsData(_ database: Database) throws -> Bool {
        try database.sync { connection in
            let tables = try connection.tableNames().filter { !hostTables.contains($0) }.sorted()
            return try tables.contains { try !connection.query("SELECT 1 FROM \"\($0)\" LIMIT 1").isEmpty }
        }
    }
}
