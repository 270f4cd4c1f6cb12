import CSQLite
import CallTraceSync
import Dispatch

/// The database's read connections: SQLite in WAL mode lets readers run beside the one writer
/// and beside each other, each on its own snapshot. `Database.read` takes a free reader, or opens
/// one (up to `limit`), or waits its turn; so a subject search never queues behind a write, and a
/// report can scan two halves of its period at once.
///
/// Each reader has its own serial thread and statement cache and is opened `query_only`: a write
/// through `read` fails loudly instead of slipping past the writer.
final class ReaderPool: Sendable {
    final class Reader: @unchecked Sendable {
        let handle: OpaquePointer
        let queue: DispatchQueue
        /// Used only on `queue`.
        let statements = StatementCache()
        /// Set on `queue` when the pool closes; a read already handed this reader then fails.
        var isClosed = false

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

        /// A read in flight holds its reader, so the last reference goes only when none runs:
        /// a database dropped without `close` still closes every reader, never under a read.
        deinit {
            guard !isClosed else { return }
            statements.finalizeAll()
            sqlite3_close_v2(handle)
        }
    }

    private struct State {
        var idle: [Reader] = []
        var all: [Reader] = []
        var waiting: [CheckedContinuation<Reader, any Error>] = []
        var closed = false
    }

    let path: String
    let limit: Int
    private let state = Locked(State())

    init(path: String, limit: Int) {
        self.path = path
        self.limit = limit
    }

    /// Runs `body` on a reader inside one read transaction (one snapshot of the database).
    func run<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        let reader = try await take()
        defer { giveBack(reader) }
        let path = self.path
        return try await handOff { finish in
            reader.queue.async {
                finish(Result {
                    guard !reader.isClosed else { throw StorageError("database \(path) is closed") }
                    let connection = Connection(handle: reader.handle, path: path, statements: reader.statements)
                    try connection.execute("BEGIN")
                    defer { _ = try? connection.execute("COMMIT") }
                    return try body(connection)
                })
            }
        }
    }

    private enum Taken { case reader(Reader), open(Int), wait }

    private func take() async throws -> Reader {
        let taken: Taken = try state.withLock { state in
            guard !state.closed else { throw StorageError("database \(path) is closed") }
            if let reader = state.idle.popLast() { return .reader(reader) }
            return state.all.count < limit ? .open(state.all.count + 1) : .wait
        }
        switch taken {
        case .reader(let reader): return reader
        case .open(let number):
            let reader = try await Reader.open(path, number: number)
            let kept = state.withLock { state -> Bool in
                guard !state.closed, state.all.count < limit else { return false }
                state.all.append(reader)
                return true
            }
            // A reader not kept closes in its deinit, as it goes out of scope here.
            guard kept else { return try await take() }
            return reader
        case .wait:
            return try await withCheckedThrowingContinuation { continuation in
                let refused = state.withLock { state -> Bool in
                    if state.closed { return true }
                    if let reader = state.idle.popLast() {
                        continuation.resume(returning: reader)
                    } else {
                        state.waiting.append(continuation)
                    }
                    return false
                }
                if refused { continuation.resume(throwing: StorageError("database \(path) is closed")) }
            }
        }
    }

    private func giveBack(_ reader: Reader) {
        let next = state.withLock { state -> CheckedContinuation<Reader, any Error>? in
            if !state.waiting.isEmpty { return state.waiting.removeFirst() }
            state.idle.append(reader)
            return nil
        }
        next?.resume(returning: reader)
    }

    private static func open(_ path: String) throws -> OpaquePointer {
        var db: OpaquePointer?
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK, let db else {
            let reason = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            throw StorageError("cannot open a reader of database \(path): \(reason)")
        }
        do {
            try Database.exec(db, "PRAGMA busy_timeout = 5000; PRAGMA mmap_size = \(Database.mmapSize); PRAGMA query_only = 1;", path: path)
        } catch {
            sqlite3_close_v2(db)
            throw error
        }
        return db
    }

    /// Refuses later reads, waits for the running ones and closes every reader.
    func close() {
        let (readers, waiting) = state.withLock { state in
            state.closed = true
            defer { state.waiting = [] }
            return (state.all, state.waiting)
        }
        for continuation in waiting { continuation.resume(throwing: StorageError("database \(path) is closed")) }
        for reader in readers {
            let closeReader = {
                guard !reader.isClosed else { return }
                reader.isClosed = true
                reader.statements.finalizeAll()
                sqlite3_close_v2(reader.handle)
            }
            reader.queue.sync(execute: closeReader)
        }
    }
}
