import CSQLite
import CallTraceSync
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A service's own SQLite database (`Database` on a file).
///
/// - WAL journal, foreign keys on, busy timeout 5 s, `synchronous = FULL` (a committed change,
///   an audit event or a deletion, survives power loss; WAL keeps commits cheap enough).
/// - One process at a time: an exclusive `flock` on `<path>.lock`.
/// - Writes (and `sync`) run on the database's own serial thread, reads on one of a few read
///   connections, each with its own thread (`ReaderPool`): callers `await`, and neither Swift's
///   cooperative pool nor a connection's I/O thread ever blocks in `sqlite3_step`.
final class SQLiteDatabase: @unchecked Sendable {
    let path: String
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
    /// Opens (creating if needed) without migrating.
    init(path: String) throws {
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
    func close() {
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
    func write<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        try await run { connection in try connection.transaction { try body(connection) } }
    }

    /// Copies the write-ahead log into the database and truncates it: after a deletion, what
    /// was deleted is no longer in the log (with `secure_delete`, which every connection sets,
    /// its pages in the file are zeroed too). A reader still holding an old snapshot can keep
    /// part of the log until the next checkpoint.
    func checkpoint() async throws {
        try await run { connection in _ = try connection.query("PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    /// Runs `body` on one of the read connections, inside a read transaction: it sees one
    /// snapshot (every write committed before it began), runs beside the writer and other
    /// reads, and cannot write.
    func read<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        try await readers.run(body)
    }

    /// Runs `body` on the database thread, blocking the caller (start-up and commands only).
    func sync<T>(_ body: (Connection) throws -> T) throws -> T {
        try queue.sync {
            guard !isClosed else { throw StorageError("database \(path) is closed") }
            return try body(Connection(.sqlite(SQLiteConnection(handle: handle, path: path, statements: statements))))
        }
    }

    private func run<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        let handle = UncheckedHandle(raw: handle)
        let path = self.path
        let statements = self.statements
        return try await handOff { finish in
            queue.async { [self] in
                guard !isClosed else { return finish(.failure(StorageError("database \(path) is closed"))) }
                finish(Result { try body(Connection(.sqlite(SQLiteConnection(handle: handle.raw, path: path, statements: statements)))) })
            }
        }
    }

    /// Copies the live database to `destination` with SQLite's online backup API; the service
    /// keeps serving meanwhile. The copy is a consistent snapshot.
    func backup(to destination: String) throws {
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
    static func onlineBackup(of path: String, to destination: String) throws {
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
    static func query(readOnly path: String, _ sql: String, bindings: [any SQLiteBindable] = []) throws -> [Row] {
        try withReadOnly(path) { try SQLiteConnection(handle: $0, path: path).query(sql, bindings: bindings) }
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
