import CSQLite
import CallTraceSync
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A schema change, applied once, in order, by version number.
public struct Migration: Sendable {
    public let version: Int
    public let sql: String
    public init(version: Int, _ sql: String) {
        self.version = version
        self.sql = sql
    }
}

/// Schema changes on a version track of their own, beside the database's main track
/// (`PRAGMA user_version`, the service's own tables): a service host's shared tables (the audit
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

/// A service's own SQLite database.
///
/// - WAL journal, foreign keys on, busy timeout 5 s, `synchronous = FULL` (a committed change,
///   an audit event or a deletion, survives power loss; WAL keeps commits cheap enough).
/// - One process at a time: an exclusive `flock` on `<path>.lock`.
/// - Writes (and `sync`) run on the database's own serial thread, reads on one of a few read
///   connections, each with its own thread (`ReaderPool`): callers `await`, and neither Swift's
///   cooperative pool nor a connection's I/O thread ever blocks in `sqlite3_step`.
public final class Database: @unchecked Sendable {
    public let path: String
    private let handle: OpaquePointer
    private let lockFD: Int32
    private let queue: DispatchQueue
    /// The read connections (`read`); the handle above is the one writer.
    private let readers: ReaderPool
    /// At most this many read connections.
    static let readerLimit = 4
    /// Pages are read through a memory map of up to this many bytes, not a `pread` each: a
    /// report's scan of a year of calls took 27% less time (489 → 356 ms, `calltrace-bench transcript`).
    static let mmapSize = 1 << 30
    /// Prepared statements kept for reuse, used only on `queue`.
    private let statements = StatementCache()
    /// The schema version after migrations.
    public private(set) var schemaVersion: Int = 0

    /// Opens (creating if needed) and migrates the database.
    ///
    /// - Throws: `StorageError` when another process holds the database, when the file was
    ///   written by a newer schema version than `migrations` know, or when SQLite fails.
    public convenience init(path: String, migrations: [Migration]) throws {
        try self.init(path: path)
        try migrate(migrations)
    }

    /// Opens (creating if needed) without migrating; see `checkSchema` and `migrate`.
    public init(path: String) throws {
        self.path = path
        let lockPath = path + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let reason = errno
            let folder = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
            var isFolder: ObjCBool = false
            if !FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) || !isFolder.boolValue {
                throw StorageError("the database folder \(folder) does not exist: create it for the service's user "
                                   + "(install -d -m 700 -o <user> \(folder)) or point `database` elsewhere")
            }
            if reason == EACCES {
                throw StorageError("the database folder \(folder) is not writable by this user: the service creates \((path as NSString).lastPathComponent) "
                                   + "and its lock, WAL and journal files there")
            }
            throw StorageError("cannot open lock file \(lockPath): \(String(cString: strerror(reason)))")
        }
        // A process being spawned holds copies of our descriptors until its exec closes them
        // (O_CLOEXEC), so a lock just released can look held for an instant; another instance
        // holds it for good. Retry briefly before refusing.
        var locked = flock(fd, LOCK_EX | LOCK_NB) == 0
        for _ in 0..<50 where !locked {
            usleep(5_000)
            locked = flock(fd, LOCK_EX | LOCK_NB) == 0
        }
        guard locked else {
            Glibc.close(fd)
            throw StorageError("database \(path) is already opened by another instance of this service")
        }
        // A new database file is created 0600 whatever the umask (SQLite gives its -wal and -shm
        // files the database file's mode), and never through a symbolic link.
        if !FileManager.default.fileExists(atPath: path) {
            let created = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if created >= 0 { Glibc.close(created) }
        }
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let db else {
            let reason = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            Glibc.close(fd)
            throw StorageError("cannot open database \(path): \(reason)")
        }
        self.handle = db
        self.lockFD = fd
        self.queue = DispatchQueue(label: "calltrace.database")
        self.readers = ReaderPool(path: path, limit: Self.readerLimit)
        do {
            try Self.exec(db, "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON; PRAGMA busy_timeout = 5000; PRAGMA mmap_size = \(Self.mmapSize);", path: path)
            schemaVersion = try Connection(handle: db, path: path).query("PRAGMA user_version").first?.int("user_version").map(Int.init) ?? 0
        } catch {
            sqlite3_close_v2(db)
            Glibc.close(fd)
            throw error
        }
    }

    private var isClosed = false

    /// The last reference may be released on the database's own queue (by a finished block),
    /// so `deinit` must not `sync` onto it; nothing else can use the handle by then.
    deinit { closeNow() }

    /// Closes the database and releases the single-instance lock. Later calls fail.
    /// Waits for statements already queued to finish.
    public func close() {
        readers.close()
        queue.sync { closeNow() }
    }

    private func closeNow() {
        guard !isClosed else { return }
        statements.finalizeAll()
        isClosed = true
        sqlite3_close_v2(handle)
        Glibc.close(lockFD)
    }

    // MARK: Access

    /// Runs `body` on the database thread inside one transaction (committed if it returns,
    /// rolled back if it throws).
    public func write<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        try await run { connection in try connection.transaction { try body(connection) } }
    }

    /// Copies the write-ahead log into the database and truncates it: after a deletion, what
    /// was deleted is no longer in the log (with `secure_delete`, which every connection sets,
    /// its pages in the file are zeroed too). A reader still holding an old snapshot can keep
    /// part of the log until the next checkpoint.
    public func checkpoint() async throws {
        try await run { connection in _ = try connection.query("PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    /// Runs `body` on one of the read connections, inside a read transaction: it sees one
    /// snapshot (every write committed before it began), runs beside the writer and other
    /// reads, and cannot write.
    public func read<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        try await readers.run(body)
    }

    /// Runs `body` on the database thread, blocking the caller (start-up and commands only).
    public func sync<T>(_ body: (Connection) throws -> T) throws -> T {
        try queue.sync {
            guard !isClosed else { throw StorageError("database \(path) is closed") }
            return try body(Connection(handle: handle, path: path, statements: statements))
        }
    }

    private func run<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        let handle = UncheckedHandle(raw: handle)
        let path = self.path
        let statements = self.statements
        return try await handOff { finish in
            queue.async { [self] in
                guard !isClosed else { return finish(.failure(StorageError("database \(path) is closed"))) }
                finish(Result { try body(Connection(handle: handle.raw, path: path, statements: statements)) })
            }
        }
    }

    /// Copies the live database to `destination` with SQLite's online backup API; the service
    /// keeps serving meanwhile. The copy is a consistent snapshot.
    public func backup(to destination: String) throws {
        try queue.sync { try Self.copy(from: handle, to: destination) }
    }

    private static func copy(from source: OpaquePointer, to destination: String) throws {
        // The backup file is new, 0600, and never a symbolic link: an existing file is not overwritten.
        let created = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard created >= 0 else {
            throw StorageError("cannot create backup file \(destination): \(String(cString: strerror(errno)))")
        }
        Glibc.close(created)
        var target: OpaquePointer?
        guard sqlite3_open(destination, &target) == SQLITE_OK, let target else {
            sqlite3_close(target)
            throw StorageError("cannot create backup file \(destination)")
        }
        defer { sqlite3_close(target) }
        guard let backup = sqlite3_backup_init(target, "main", source, "main") else {
            throw StorageError("cannot start backup: \(String(cString: sqlite3_errmsg(target)))")
        }
        let rc = sqlite3_backup_step(backup, -1)
        sqlite3_backup_finish(backup)
        guard rc == SQLITE_DONE else { throw StorageError("backup to \(destination) failed: \(String(cString: sqlite3_errstr(rc)))") }
    }

    /// Backs up the database at `path` from another process (the running service keeps its
    /// lock): opened read-only, copied with the online backup API.
    public static func onlineBackup(of path: String, to destination: String) throws {
        try withReadOnly(path) { source in try copy(from: source, to: destination) }
    }

    /// Opens the database at `path` read-only for `body` (another process may hold it).
    private static func withReadOnly<T>(_ path: String, _ body: (OpaquePointer) throws -> T) throws -> T {
        guard FileManager.default.fileExists(atPath: path) else { throw StorageError("database \(path) does not exist") }
        var handle: OpaquePointer?
        guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READONLY, nil) == SQLITE_OK, let handle else {
            sqlite3_close(handle)
            throw StorageError("cannot open database \(path) read-only")
        }
        defer { sqlite3_close(handle) }
        _ = sqlite3_busy_timeout(handle, 5000)
        return try body(handle)
    }

    /// Runs one query on the database at `path` opened read-only, from another process while
    /// the service runs (operators' commands): no lock taken, nothing written.
    public static func query(readOnly path: String, _ sql: String, bindings: [any SQLiteBindable] = []) throws -> [Row] {
        try withReadOnly(path) { try Connection(handle: $0, path: path).query(sql, bindings: bindings) }
    }

    // MARK: Schema

    /// Refuses a database written by a newer schema than `latest`, or by a newer version of one
    /// of `tracks`.
    public func checkSchema(knownUpTo latest: Int, tracks: [SchemaTrack] = []) throws {
        if schemaVersion > latest {
            throw StorageError("database \(path) was written by a newer schema version (\(schemaVersion)); this build knows up to \(latest)")
        }
        for track in tracks {
            let version = try queue.sync { try Self.trackVersion(Connection(handle: handle, path: path), track: track) }
            if version > track.latest {
                throw StorageError("database \(path) was written by a newer \(track.name) schema version (\(version)); this build knows up to \(track.latest)")
            }
        }
    }

    /// Applies the migrations newer than the database — first each track's, then the main
    /// track's (`migrations`) — all in one transaction.
    public func migrate(_ migrations: [Migration], tracks: [SchemaTrack] = []) throws {
        schemaVersion = try queue.sync { try Self.migrate(handle, path: path, migrations: migrations, tracks: tracks) }
    }

    /// The version of `track` in the database: recorded, adopted from a database from before
    /// tracks, or 0 for a new one.
    private static func trackVersion(_ connection: Connection, track: SchemaTrack) throws -> Int {
        let hasTracks = try !connection.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_tracks'").isEmpty
        if hasTracks {
            return try connection.query("SELECT version FROM schema_tracks WHERE name = ?", track.name).first?.int("version").map(Int.init) ?? 0
        }
        let main = try connection.query("PRAGMA user_version").first?.int("user_version") ?? 0
        return main > 0 ? try track.adopt(connection) : 0
    }

    private static func migrate(_ db: OpaquePointer, path: String, migrations: [Migration], tracks: [SchemaTrack]) throws -> Int {
        let connection = Connection(handle: db, path: path)
        let latest = migrations.map(\.version).max() ?? 0
        let current = try connection.query("PRAGMA user_version").first?.int("user_version").map(Int.init) ?? 0
        if current > latest {
            throw StorageError("database \(path) was written by a newer schema version (\(current)); this build knows up to \(latest)")
        }
        var trackWork: [(SchemaTrack, current: Int, pending: [Migration])] = []
        for track in tracks {
            let version = try trackVersion(connection, track: track)
            if version > track.latest {
                throw StorageError("database \(path) was written by a newer \(track.name) schema version (\(version)); this build knows up to \(track.latest)")
            }
            trackWork.append((track, version, track.migrations.filter { $0.version > version }.sorted { $0.version < $1.version }))
        }
        let pending = migrations.filter { $0.version > current }.sorted { $0.version < $1.version }
        let recorded = try !connection.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_tracks'").isEmpty
        guard !pending.isEmpty || trackWork.contains(where: { !$0.pending.isEmpty }) || (!recorded && !tracks.isEmpty) else { return current }
        try connection.transaction {
            if !recorded && !tracks.isEmpty {
                try exec(db, "CREATE TABLE schema_tracks (name TEXT PRIMARY KEY, version INTEGER NOT NULL)", path: path)
            }
            for (track, version, pending) in trackWork {
                for migration in pending { try exec(db, migration.sql, path: path) }
                _ = try connection.execute("DELETE FROM schema_tracks WHERE name = ?", track.name)
                _ = try connection.execute("INSERT INTO schema_tracks (name, version) VALUES (?, ?)", track.name,
                                           Int64(pending.last?.version ?? version))
            }
            for migration in pending { try exec(db, migration.sql, path: path) }
            if !pending.isEmpty { try exec(db, "PRAGMA user_version = \(latest)", path: path) }
        }
        return pending.isEmpty ? current : latest
    }

    static func exec(_ db: OpaquePointer, _ sql: String, path: String) throws {
        var error: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(db, sql, nil, nil, &error) == SQLITE_OK else {
            let reason = error.map { String(cString: $0) } ?? "unknown error"
            sqlite3_free(error)
            throw StorageError("database \(path): \(reason)")
        }
    }
}

struct UncheckedHandle: @unchecked Sendable { let raw: OpaquePointer }

/// Prepared statements by SQL text, reset after each use and reused: a service runs the same
/// few hundred statements all day, and preparing one costs as much as running it. Used only on
/// the database's thread; a statement is taken out while it runs, so a nested use of the same
/// SQL prepares its own.
final class StatementCache: @unchecked Sendable {
    private var statements: [String: OpaquePointer] = [:]
    static let limit = 256

    func take(_ sql: String) -> OpaquePointer? { statements.removeValue(forKey: sql) }

    func give(back statement: OpaquePointer, for sql: String) {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        if statements.count >= Self.limit || statements[sql] != nil {
            sqlite3_finalize(statement)
        } else {
            statements[sql] = statement
        }
    }

    func finalizeAll() {
        for statement in statements.values { sqlite3_finalize(statement) }
        statements = [:]
    }
}

/// The current row of `Connection.scan`.
public struct ScanCursor {
    let statement: OpaquePointer
    /// The integer in column `column` (0-based) of the current row; 0 for NULL.
    public func int(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }
}

/// Statements on the database thread. Obtain one through `Database.read` / `write`.
public struct Connection {
    let handle: OpaquePointer
    let path: String
    var statements: StatementCache? = nil

    /// Runs a statement that returns no rows; returns the number of rows changed.
    @discardableResult
    public func execute(_ sql: String, _ bindings: any SQLiteBindable...) throws -> Int {
        try execute(sql, bindings: bindings)
    }

    @discardableResult
    public func execute(_ sql: String, bindings: [any SQLiteBindable]) throws -> Int {
        try withStatement(sql, bindings) { statement in
            let rc = sqlite3_step(statement)
            guard rc == SQLITE_DONE || rc == SQLITE_ROW else { throw failure("step", rc) }
            return Int(sqlite3_changes(handle))
        }
    }

    /// Runs a query and returns every row.
    public func query(_ sql: String, _ bindings: any SQLiteBindable...) throws -> [Row] {
        try query(sql, bindings: bindings)
    }

    public func query(_ sql: String, bindings: [any SQLiteBindable]) throws -> [Row] {
        try withStatement(sql, bindings) { statement in
            let count = Int(sqlite3_column_count(statement))
            var columns: [String: Int] = [:]
            for index in 0..<count { columns[String(cString: sqlite3_column_name(statement, Int32(index)))] = index }
            var rows: [Row] = []
            while true {
                let rc = sqlite3_step(statement)
                if rc == SQLITE_DONE { break }
                guard rc == SQLITE_ROW else { throw failure("step", rc) }
                var values: [SQLiteValue] = []
                values.reserveCapacity(count)
                for index in 0..<Int32(count) {
                    switch sqlite3_column_type(statement, index) {
                    case SQLITE_INTEGER: values.append(.integer(sqlite3_column_int64(statement, index)))
                    case SQLITE_FLOAT: values.append(.real(sqlite3_column_double(statement, index)))
                    case SQLITE_TEXT:
                        let size = Int(sqlite3_column_bytes(statement, index))
                        let text = sqlite3_column_text(statement, index).map { String(decoding: UnsafeBufferPointer(start: $0, count: size), as: UTF8.self) }
                        values.append(.text(text ?? ""))
                    case SQLITE_BLOB:
                        let size = Int(sqlite3_column_bytes(statement, index))
                        values.append(.blob(size == 0 ? Data() : Data(bytes: sqlite3_column_blob(statement, index), count: size)))
                    default: values.append(.null)
                    }
                }
                rows.append(Row(columns: columns, values: values))
            }
            return rows
        }
    }

    /// Steps through a query's rows without materialising them: `row` reads the current row's
    /// integer columns by position. For reports that go over many rows.
    public func scan(_ sql: String, bindings: [any SQLiteBindable], _ row: (ScanCursor) throws -> Void) throws {
        try withStatement(sql, bindings) { statement in
            let cursor = ScanCursor(statement: statement)
            while true {
                let rc = sqlite3_step(statement)
                if rc == SQLITE_DONE { return }
                guard rc == SQLITE_ROW else { throw failure("step", rc) }
                try row(cursor)
            }
        }
    }

    /// The rowid of the last insert on this connection.
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Runs `body` in a transaction (`BEGIN IMMEDIATE`), or as part of the enclosing one.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        if sqlite3_get_autocommit(handle) == 0 { return try body() }
        try Database.exec(handle, "BEGIN IMMEDIATE", path: path)
        do {
            let result = try body()
            try Database.exec(handle, "COMMIT", path: path)
            return result
        } catch {
            try? Database.exec(handle, "ROLLBACK", path: path)
            throw error
        }
    }

    private func withStatement<T>(_ sql: String, _ bindings: [any SQLiteBindable], _ body: (OpaquePointer) throws -> T) throws -> T {
        var statement = statements?.take(sql)
        if statement == nil {
            let rc = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
            guard rc == SQLITE_OK, statement != nil else { throw failure("prepare", rc) }
        }
        guard let statement else { throw failure("prepare", SQLITE_ERROR) }
        defer {
            if let statements { statements.give(back: statement, for: sql) } else { sqlite3_finalize(statement) }
        }
        for (offset, binding) in bindings.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch binding.sqliteValue {
            case .integer(let value): rc = sqlite3_bind_int64(statement, index, value)
            case .real(let value): rc = sqlite3_bind_double(statement, index, value)
            case .text(let value):
                // With its byte length: a string with an embedded NUL is bound whole, never cut short.
                // (An empty array may have no base address, which SQLite would bind as NULL.)
                let bytes = value.isEmpty ? [0] : Array(value.utf8)
                rc = bytes.withUnsafeBufferPointer { buffer in
                    buffer.withMemoryRebound(to: CChar.self) { sqlite3_bind_text(statement, index, $0.baseAddress, Int32(value.utf8.count), SQLITE_TRANSIENT) }
                }
            case .blob(let value):
                rc = value.withUnsafeBytes { sqlite3_bind_blob(statement, index, $0.baseAddress, Int32($0.count), SQLITE_TRANSIENT) }
            case .null: rc = sqlite3_bind_null(statement, index)
            }
            guard rc == SQLITE_OK else { throw failure("bind", rc) }
        }
        return try body(statement)
    }

    private func failure(_ stage: String, _ rc: Int32) -> StorageError {
        StorageError("database \(path): \(stage) failed: \(String(cString: sqlite3_errmsg(handle)))")
    }
}

/// `SQLITE_TRANSIENT` is a macro of a cast; this is its value.
private let SQLITE_TRANSIENT = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
