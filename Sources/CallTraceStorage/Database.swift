import Foundation

/// A schema change, applied once, in order, by version number.
///
/// Written once, in SQLite's words; on PostgreSQL its column types are read as PostgreSQL's
/// (`PostgresDialect.schema`: INTEGER is bigint, BLOB bytea, REAL double precision, an
/// AUTOINCREMENT key an identity). A change that must differ on PostgreSQL (a trigger, say)
/// gives its PostgreSQL form too.
public struct Migration: Sendable {
    public let version: Int
    public let sql: String
    /// The change in PostgreSQL's words, when it cannot be read from `sql`.
    public let postgres: String?

    public init(version: Int, _ sql: String, postgres: String? = nil) {
        self.version = version
        self.sql = sql
        self.postgres = postgres
    }

    /// The change as `dialect` runs it.
    func sql(for dialect: SQLDialect) -> String {
        switch dialect {
        case .sqlite: sql
        case .postgres: postgres ?? PostgresDialect.schema(sql)
        }
    }
}

/// Schema changes on a version track of their own, beside the database's main track
/// (the service's own tables: SQLite's `PRAGMA user_version`, PostgreSQL's `main` track): a service host's shared tables (the audit
/// outbox, durable jobs) migrate on one, so a service's list holds only its own migrations and
/// the host can add a table without touching any service. Versions are kept in `schema_tracks`.
public struct SchemaTrack: Sendable {
    public let name: String
    public let migrations: [Migration]
    /// For a database from before tracks existed (its `user_version` above 0, no
    /// `schema_tracks`): the version of this track its tables already show.
    public let adopt: @Sendable (Connection) throws -> Int

    public init(name: String, migrations: [Migration], adopt: @escaping @Sendable (Connection) throws -> Int) {
        self.name = name
        self.migrations = migrations
        self.adopt = adopt
    }

    /// The newest version this build knows.
    public var latest: Int { migrations.map(\.version).max() ?? 0 }
}


/// A service's own store: a SQLite file (the default: `make run`, a small deployment, the
/// suite), or a PostgreSQL database (`database: postgres://…`), which several replicas of the
/// service can share. Repositories see the same `Connection` on either.
///
/// - Writes run one at a time, each in one transaction: SQLite's one writer; on PostgreSQL
///   every write transaction first takes the database's write lock (an advisory lock), so the
///   replicas' writes are as serial as one process's.
/// - A read runs in one snapshot (SQLite's read transaction; PostgreSQL's `REPEATABLE READ
///   READ ONLY`), beside the writer and other reads.
public final class Database: @unchecked Sendable {
    enum Engine {
        case sqlite(SQLiteDatabase)
        case postgres(PostgresDatabase)
    }

    let engine: Engine
    /// The file, or the PostgreSQL URL (which holds no password).
    public let path: String
    /// The schema version after migrations (set while the service starts, before it serves).
    public private(set) var schemaVersion: Int = 0

    /// Opens (creating if needed) and migrates a SQLite database.
    ///
    /// - Throws: `StorageError` when another process holds the database, when the file was
    ///   written by a newer schema version than `migrations` know, or when SQLite fails.
    public convenience init(path: String, migrations: [Migration]) throws {
        try self.init(path: path)
        try migrate(migrations)
    }

    /// Opens a SQLite database (creating it if needed) without migrating; see `checkSchema` and
    /// `migrate`. One process at a time holds it.
    public init(path: String) throws {
        engine = .sqlite(try SQLiteDatabase(path: path))
        self.path = path
        try readSchemaVersion()
    }

    /// Connections a service opens to a PostgreSQL database, at most.
    public static let defaultPostgresConnections = 8

    /// Connects to a PostgreSQL database (once, to check it answers) without migrating.
    public init(postgres address: PostgresAddress, connections: Int = Database.defaultPostgresConnections) throws {
        engine = .postgres(try PostgresDatabase(address, connections: connections))
        path = address.description
        try readSchemaVersion()
    }

    /// A SQLite file, or a PostgreSQL database when `location` is a `postgres://` URL (its
    /// password in `passwordFile`).
    public static func open(_ location: String, passwordFile: String? = nil) throws -> Database {
        if location.hasPrefix("postgres://") || location.hasPrefix("postgresql://") {
            return try Database(postgres: PostgresAddress(url: location, passwordFile: passwordFile))
        }
        guard passwordFile == nil else { throw StorageError("a database password file is for a postgres:// database, not a SQLite file") }
        return try Database(path: location)
    }

    private func readSchemaVersion() throws {
        do {
            schemaVersion = try sync { try $0.mainVersion() }
        } catch {
            close()
            throw error
        }
    }

    public var dialect: SQLDialect {
        switch engine {
        case .sqlite: .sqlite
        case .postgres: .postgres
        }
    }

    /// Closes the database (waiting for statements already queued). Later calls fail.
    public func close() {
        switch engine {
        case .sqlite(let database): database.close()
        case .postgres(let database): database.close()
        }
    }

    // MARK: Access

    /// Runs `body` in one write transaction, committed if it returns and rolled back if it throws.
    public func write<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        switch engine {
        case .sqlite(let database): try await database.write(body)
        case .postgres(let database): try await database.write(body)
        }
    }

    /// Runs `body` in one read-only snapshot: it sees every write committed before it began,
    /// runs beside the writer and other reads, and cannot write.
    public func read<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        switch engine {
        case .sqlite(let database): try await database.read(body)
        case .postgres(let database): try await database.read(body)
        }
    }

    /// Runs `body` on a connection, blocking the caller (start-up and commands only); a write in
    /// it belongs in `transaction`.
    public func sync<T>(_ body: (Connection) throws -> T) throws -> T {
        switch engine {
        case .sqlite(let database): try database.sync(body)
        case .postgres(let database): try database.sync(body)
        }
    }

    /// After a deletion, makes sure what was deleted has left the store's files: SQLite copies
    /// its write-ahead log into the database and truncates it (with `secure_delete` the pages
    /// are zeroed too). PostgreSQL keeps a deleted row's old version until vacuum reclaims it,
    /// which this does not force: there, the keys a deletion destroys (crypto-shredding) are
    /// what make it unreadable.
    public func checkpoint() async throws {
        if case .sqlite(let database) = engine { try await database.checkpoint() }
    }

    /// Runs `body`, deletions of secrets from `tables`, in one write transaction blocking the
    /// caller, then pushes what it deleted out of the store's live files as far as the engine
    /// can (a key store's shred and key destruction):
    ///
    /// - SQLite zeroes deleted content (`secure_delete`, set on every connection), then copies
    ///   its write-ahead log into the file and truncates it: no copy stays in the live files.
    /// - PostgreSQL vacuums `tables` after the commit, so the deleted rows leave the tables' live
    ///   data; the tables in `rewriting` (small ones) are written anew (`VACUUM FULL`: new files,
    ///   the old ones removed). Neither waits over 2 s for a lock: a vacuum that cannot run now
    ///   is left to autovacuum. The bytes can stay in free space, freed disk blocks, the
    ///   write-ahead log and its archives until overwritten or expired, and a snapshot older
    ///   than the deletion (a `pg_dump` under way) keeps the rows for its life: what is deleted
    ///   there must be sealed under a key that does not outlive it (a master key rotated after a
    ///   shred).
    ///
    /// - Throws: when `body` or the commit fails (nothing deleted); not for a vacuum put off.
    public func syncErasing<T>(from tables: [String], rewriting: Set<String> = [], _ body: (Connection) throws -> T) throws -> T {
        try sync { connection in
            let result = try connection.transaction { try body(connection) }
            switch connection.dialect {
            case .sqlite:
                _ = try connection.query("PRAGMA wal_checkpoint(TRUNCATE)")
            case .postgres:
                try? connection.runScript("SET lock_timeout = '2s'")
                for table in tables {
                    try? connection.runScript(rewriting.contains(table) ? "VACUUM (FULL) \"\(table)\"" : "VACUUM \"\(table)\"")
                }
                try? connection.runScript("RESET lock_timeout")
            }
            return result
        }
    }

    /// Copies the live SQLite database to `destination` (the service keeps serving). A
    /// PostgreSQL database is backed up with PostgreSQL's own tools (`pg_dump`).
    public func backup(to destination: String) throws {
        guard case .sqlite(let database) = engine else {
            throw StorageError("a PostgreSQL database is backed up with pg_dump, not by the service")
        }
        try database.backup(to: destination)
    }

    /// Backs up the SQLite database at `path` from another process (the running service keeps
    /// its lock): opened read-only, copied with the online backup API.
    public static func onlineBackup(of path: String, to destination: String) throws {
        try SQLiteDatabase.onlineBackup(of: path, to: destination)
    }

    /// Runs one query on the SQLite database at `path` opened read-only, from another process
    /// while the service runs (operators' commands): no lock taken, nothing written.
    public static func query(readOnly path: String, _ sql: String, bindings: [any SQLiteBindable] = []) throws -> [Row] {
        try SQLiteDatabase.query(readOnly: path, sql, bindings: bindings)
    }

    // MARK: Schema

    /// Refuses a database written by a newer schema than `latest`, or by a newer version of one
    /// of `tracks`.
    public func checkSchema(knownUpTo latest: Int, tracks: [SchemaTrack] = []) throws {
        if schemaVersion > latest {
            throw StorageError("database \(path) was written by a newer schema version (\(schemaVersion)); this build knows up to \(latest)")
        }
        for track in tracks {
            let version = try sync { try Self.trackVersion($0, track: track) }
            if version > track.latest {
                throw StorageError("database \(path) was written by a newer \(track.name) schema version (\(version)); this build knows up to \(track.latest)")
            }
        }
    }

    /// Applies the migrations newer than the database — first each track's, then the main
    /// track's (`migrations`) — all in one write transaction, deciding what is pending inside it:
    /// replicas starting together migrate once, the others finding it done.
    public func migrate(_ migrations: [Migration], tracks: [SchemaTrack] = []) throws {
        let path = self.path
        schemaVersion = try sync { connection in
            try connection.transaction { try Self.migrate(connection, path: path, migrations: migrations, tracks: tracks) }
        }
    }

    /// The version of `track` in the database: recorded, adopted from a database from before
    /// tracks, or 0 for a new one.
    private static func trackVersion(_ connection: Connection, track: SchemaTrack) throws -> Int {
        if try connection.tableNames().contains("schema_tracks") {
            return try connection.query("SELECT version FROM schema_tracks WHERE name = ?", track.name).first?.int("version").map(Int.init) ?? 0
        }
        return try connection.mainVersion() > 0 ? try track.adopt(connection) : 0
    }

    private static func migrate(_ connection: Connection, path: String, migrations: [Migration], tracks: [SchemaTrack]) throws -> Int {
        let latest = migrations.map(\.version).max() ?? 0
        let current = try connection.mainVersion()
        if current > latest {
            throw StorageError("database \(path) was written by a newer schema version (\(current)); this build knows up to \(latest)")
        }
        if !tracks.isEmpty, try !connection.tableNames().contains("schema_tracks") {
            let adopted = try tracks.map { try trackVersion(connection, track: $0) }
            try connection.runSchema("CREATE TABLE schema_tracks (name TEXT PRIMARY KEY, version INTEGER NOT NULL)")
            for (track, version) in zip(tracks, adopted) { try setVersion(connection, track: track.name, version) }
        }
        for track in tracks {
            precondition(track.name != Connection.mainTrack, "the track name \(Connection.mainTrack) is the service's own")
            let version = try trackVersion(connection, track: track)
            if version > track.latest {
                throw StorageError("database \(path) was written by a newer \(track.name) schema version (\(version)); this build knows up to \(track.latest)")
            }
            let pending = track.migrations.filter { $0.version > version }.sorted { $0.version < $1.version }
            for migration in pending { try connection.runScript(migration.sql(for: connection.dialect)) }
            if let last = pending.last { try setVersion(connection, track: track.name, last.version) }
        }
        let pending = migrations.filter { $0.version > current }.sorted { $0.version < $1.version }
        for migration in pending { try connection.runScript(migration.sql(for: connection.dialect)) }
        if !pending.isEmpty { try connection.setMainVersion(latest) }
        return pending.isEmpty ? current : latest
    }

    static func setVersion(_ connection: Connection, track: String, _ version: Int) throws {
        try connection.execute("DELETE FROM schema_tracks WHERE name = ?", track)
        try connection.execute("INSERT INTO schema_tracks (name, version) VALUES (?, ?)", track, Int64(version))
    }
}
