import CSQLite
import Dispatch

/// The database's read connections: SQLite in WAL mode lets readers run beside the one writer
/// and beside each other, each on its own snapshot. `Database.read` takes a free reader, or opens
/// one (up to `limit`), or waits its turn; so a subject search never queues behind a write, and a
/// report can scan two halves of its period at once.
///
/// Each reader has its own serial thread and statement cache and is opened `query_only`: a write
/// through `read` fails loudly instead of slipping past the writer.
final class ReaderPool: Sendable {
    final class Reader: PooledConnection, @unchecked Sendable {
        let handle: OpaquePointer
        let queue: DispatchQueue
        /// Used only on `queue`.
        let statements = StatementCache()
        var isClosed = false
        var isUsable: Bool { true }

        /// Opens the connection on its own thread, never on the caller's (an I/O thread).
        static func open(_ path: String, number: Int) async throws -> Reader {
            let queue = DispatchQueue(label: "calltrace.database.reader-\(number)")
            let handle = try await withCheckedThrowingContinuation { continuation in
                queue.async { continuation.resume(with: Result { UncheckedHandle(raw: try ReaderPool.open(path)) }) }
            }
            return Reader(handle: handle.raw, queue: queue)
        }

        private init(handle: OpaquePointer, queue: DispatchQueue) {
            self.handle = handle
            self.queue = queue
        }

        func closeNow() {
            guard !isClosed else { return }
            isClosed = true
            statements.finalizeAll()
            sqlite3_close_v2(handle)
        }

        /// A read in flight holds its reader, so the last reference goes only when none runs:
        /// a database dropped without `close` still closes every reader, never under a read.
        deinit { closeNow() }
    }

    let path: String
    private let pool: ConnectionPool<Reader>

    init(path: String, limit: Int) {
        self.path = path
        pool = ConnectionPool(name: "database \(path)", limit: limit) { number in try await Reader.open(path, number: number) }
    }

    /// Runs `body` on a reader inside one read transaction (one snapshot of the database).
    func run<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        let path = self.path
        return try await pool.run { reader in
            let connection = SQLiteConnection(handle: reader.handle, path: path, statements: reader.statements)
            try connection.execute("BEGIN", bindings: [])
            defer { _ = try? connection.execute("COMMIT", bindings: []) }
            return try body(Connection(.sqlite(connection)))
        }
    }

    private static func open(_ path: String) throws -> OpaquePointer {
        var db: OpaquePointer?
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK, let db else {
            let reason = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            throw StorageError("cannot open a reader of database \(path): \(reason)")
        }
        do {
            try SQLiteDatabase.exec(db, "PRAGMA busy_timeout = 5000; PRAGMA mmap_size = \(SQLiteDatabase.mmapSize); PRAGMA query_only = 1;", path: path)
        } catch {
            sqlite3_close_v2(db)
            throw error
        }
        return db
    }

    /// Refuses later reads, waits for the running ones and closes every reader.
    func close() { pool.close() }
}
