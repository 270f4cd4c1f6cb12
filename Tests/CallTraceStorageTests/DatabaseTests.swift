import CallTraceStorage
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A temporary folder for one test's databases, removed when the test ends.
final class Folder: @unchecked Sendable {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("calltrace-storage-\(UUID().uuidString)")

    init() throws { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(at: url) }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    /// The permission bits of `name`.
    func mode(_ name: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path(name))[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }
}

let notesTable = Migration(version: 1, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL UNIQUE)")

func count(_ db: Connection, _ table: String = "notes") throws -> Int64 {
    try db.query("SELECT count(*) AS n FROM \(table)")[0].int("n") ?? -1
}

@Suite("Storage: migrations and schema versions")
struct MigrationTests {
    @Test("Migrations run once each, in version order whatever order they are given in; reopening runs only the new ones")
    func onceInOrder() throws {
        let folder = try Folder()
        let path = folder.path("service.sqlite")
        let seed = Migration(version: 2, "INSERT INTO notes (body) VALUES ('seeded by 2')")
        let database = try Database(path: path, migrations: [seed, notesTable])
        #expect(database.schemaVersion == 2)
        database.close()

        // Run again, 1 would fail (the table exists) and 2 would add a second row.
        let reopened = try Database(path: path, migrations: [notesTable, seed, Migration(version: 3, "ALTER TABLE notes ADD COLUMN tag TEXT")])
        defer { reopened.close() }
        #expect(reopened.schemaVersion == 3)
        #expect(try reopened.sync { try $0.query("SELECT body, tag FROM notes").map { [$0.text("body"), $0.text("tag")] } } == [["seeded by 2", nil]])
        #expect(try reopened.sync { try $0.query("PRAGMA user_version")[0].int("user_version") } == 3)
    }

    @Test("A failing migration applies none of the pending ones: the file stays at its version, the error names the database")
    func failingMigrationRollsBack() throws {
        let folder = try Folder()
        let path = folder.path("service.sqlite")
        let error = #expect(throws: StorageError.self) {
            _ = try Database(path: path, migrations: [notesTable, Migration(version: 2, "INSERT INTO missing_table VALUES (1)")])
        }
        #expect(error?.message.contains(path) == true && error?.message.contains("no such table: missing_table") == true, "\(error?.message ?? "")")
        let database = try Database(path: path)
        defer { database.close() }
        #expect(database.schemaVersion == 0)
        #expect(try database.sync { try $0.query("SELECT name FROM sqlite_master WHERE name = 'notes'") }.isEmpty, "migration 1 was rolled back with 2")
    }

    @Test("A database written by a newer schema is refused when opened to migrate, and by checkSchema; the file is left as it was")
    func newerSchemaRefused() throws {
        let folder = try Folder()
        let path = folder.path("service.sqlite")
        let newer = try Database(path: path, migrations: [notesTable, Migration(version: 2, "CREATE TABLE later (x)"), Migration(version: 3, "CREATE TABLE latest (x)")])
        newer.close()

        let error = #expect(throws: StorageError.self) { _ = try Database(path: path, migrations: [notesTable]) }
        #expect(error?.message == "database \(path) was written by a newer schema version (3); this build knows up to 1")
        let opened = try Database(path: path)
        defer { opened.close() }
        #expect(opened.schemaVersion == 3)
        #expect(throws: StorageError.self) { try opened.checkSchema(knownUpTo: 2) }
        try opened.checkSchema(knownUpTo: 3)
        #expect(try opened.sync { try $0.query("SELECT name FROM sqlite_master WHERE name IN ('later', 'latest') ORDER BY name").compactMap { $0.text("name") } }
                == ["later", "latest"])
    }

    @Test("One process at a time: a second open of the same file is refused, naming it; after close it opens")
    func oneInstance() throws {
        let folder = try Folder()
        let path = folder.path("service.sqlite")
        let first = try Database(path: path, migrations: [notesTable])
        let error = #expect(throws: StorageError.self) { _ = try Database(path: path, migrations: [notesTable]) }
        #expect(error?.message == "database \(path) is already opened by another instance of this service")
        first.close()
        let second = try Database(path: path, migrations: [notesTable])
        second.close()
    }

    @Test("A new database is created 0600; a missing folder is named, with the command that makes it")
    func filesAndFolders() throws {
        let folder = try Folder()
        let database = try Database(path: folder.path("service.sqlite"), migrations: [notesTable])
        try database.sync { db in _ = try db.execute("INSERT INTO notes (body) VALUES ('x')") }
        #expect(try folder.mode("service.sqlite") == 0o600)
        #expect(try folder.mode("service.sqlite-wal") == 0o600, "SQLite gives its log the database's mode")
        database.close()

        let missing = folder.path("not-made/service.sqlite")
        let error = #expect(throws: StorageError.self) { _ = try Database(path: missing, migrations: [notesTable]) }
        #expect(error?.message.contains("the database folder \(folder.path("not-made")) does not exist: create it") == true, "\(error?.message ?? "")")
        #expect(!FileManager.default.fileExists(atPath: folder.path("not-made")))
    }
}

@Suite("Storage: transactions")
final class TransactionTests {
    let folder: Folder
    let database: Database

    init() throws {
        folder = try Folder()
        database = try Database(path: folder.path("service.sqlite"), migrations: [notesTable])
    }

    deinit { database.close() }

    @Test("A write that throws rolls back every statement it ran; the one before it stays committed")
    func writeRollsBack() async throws {
        try await database.write { db in _ = try db.execute("INSERT INTO notes (body) VALUES ('kept')") }
        await #expect(throws: StorageError.self) {
            try await self.database.write { db in
                try db.execute("INSERT INTO notes (body) VALUES ('first')")
                try db.execute("INSERT INTO notes (body) VALUES ('second')")
                throw StorageError("the action failed")
            }
        }
        // A statement that fails half way (a constraint) takes the earlier ones with it.
        let constraint = await #expect(throws: StorageError.self) {
            try await self.database.write { db in
                try db.execute("INSERT INTO notes (body) VALUES ('third')")
                try db.execute("INSERT INTO notes (body) VALUES ('kept')")
            }
        }
        #expect(constraint?.message.contains("UNIQUE constraint failed: notes.body") == true, "\(constraint?.message ?? "")")
        #expect(try await database.read { db in try db.query("SELECT body FROM notes").compactMap { $0.text("body") } } == ["kept"])
    }

    @Test("A transaction inside a transaction joins it: the inner one's work goes with the outer one's rollback")
    func nestedTransactionJoins() throws {
        #expect(throws: StorageError.self) {
            try self.database.sync { db in
                try db.transaction {
                    try db.execute("INSERT INTO notes (body) VALUES ('outer')")
                    try db.transaction { _ = try db.execute("INSERT INTO notes (body) VALUES ('inner')") }
                    throw StorageError("after the inner one returned")
                }
            }
        }
        #expect(try database.sync { try count($0) } == 0)
        let id = try database.sync { db in
            try db.transaction {
                try db.query("INSERT INTO notes (body) VALUES ('committed') RETURNING id").first?.int("id")
            }
        }
        #expect(try database.sync { try $0.query("SELECT id FROM notes WHERE body = 'committed'").first?.int("id") } == id)
    }

    @Test("After close, writes, reads and sync fail saying the database is closed")
    func closed() async throws {
        database.close()
        let write = await #expect(throws: StorageError.self) { try await self.database.write { db in _ = try db.execute("DELETE FROM notes") } }
        #expect(write?.message.contains("is closed") == true)
        let sync = #expect(throws: StorageError.self) { try self.database.sync { db in _ = try count(db) } }
        #expect(sync?.message.contains("is closed") == true)
        await #expect(throws: StorageError.self) { try await self.database.read { db in _ = try count(db) } }
    }
}

@Suite("Storage: values, statements, scans")
final class StatementTests {
    let folder: Folder
    let database: Database

    init() throws {
        folder = try Folder()
        database = try Database(path: folder.path("service.sqlite"), migrations: [
            notesTable, Migration(version: 2, "CREATE TABLE cells (id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB)"),
        ])
    }

    deinit { database.close() }

    @Test("Every bindable type reads back as itself: 64-bit extremes, text with a NUL inside, empty text and blobs, nil as NULL")
    func valuesRoundTrip() async throws {
        let cases: [(Int64, Int64, Double, String, Data)] = [
            (1, .min, -0.5, "a\u{0}b — £", Data([0, 1, 255])),
            (2, .max, 1e300, "", Data()),
        ]
        try await database.write { db in
            for (id, i, r, t, b) in cases { try db.execute("INSERT INTO cells (id, i, r, t, b) VALUES (?, ?, ?, ?, ?)", id, i, r, t, b) }
            try db.execute("INSERT INTO cells (id, i, r, t, b) VALUES (?, ?, ?, ?, ?)", 3, true, Optional<Double>.none, Optional<String>.none, SQLiteValue.null)
        }
        let rows = try await database.read { db in try db.query("SELECT id, i, r, t, b, typeof(t) AS tt, typeof(b) AS bt FROM cells ORDER BY id") }
        for (row, (id, i, r, t, b)) in zip(rows, cases) {
            #expect(row.int("id") == id && row.int("i") == i && row["r"] == .real(r))
            #expect(row.text("t") == t && row.text("t")?.utf8.count == t.utf8.count, "text \(id) whole")
            #expect(row.blob("b") == b && row.text("bt") == "blob", "blob \(id) stays a blob, empty or not")
            #expect(row.text("tt") == "text")
        }
        #expect(rows[2].int("i") == 1 && rows[2]["r"] == .null && rows[2].text("t") == nil && rows[2].blob("b") == nil)
        #expect(rows[2]["no_such_column"] == .null && rows[0].int("t") == nil, "a missing column or another type reads as nothing")
    }

    @Test("A statement is prepared once and reused for every later run of the same SQL; a failed run leaves it usable")
    func preparedStatementsReused() async throws {
        let insert = "INSERT INTO notes (body) VALUES (?)"
        for n in 0..<50 { try await database.write { db in _ = try db.execute(insert, "note \(n)") } }
        // A run that fails (a duplicate) resets the statement for the next one.
        await #expect(throws: StorageError.self) { try await self.database.write { db in _ = try db.execute(insert, "note 0") } }
        try await database.write { db in _ = try db.execute(insert, "note 50") }
        // SQLite's own list of this connection's prepared statements (Debian builds it with
        // SQLITE_ENABLE_STMTVTAB): one for the INSERT, run 52 times.
        let statements = try database.sync { db in try db.query("SELECT sql, run FROM sqlite_stmt WHERE sql = ?", insert) }
        #expect(statements.map { $0.int("run") } == [52], "\(statements.map { ($0.text("sql") ?? "", $0.int("run") ?? 0) })")
        #expect(try database.sync { try count($0) } == 51)
    }

    @Test("The same SQL nested inside its own run prepares a second statement instead of resetting the first under it")
    func nestedSameSQL() throws {
        try database.sync { db in
            for n in 1...3 { try db.execute("INSERT INTO notes (id, body) VALUES (?, ?)", n, "n\(n)") }
        }
        let select = "SELECT id FROM notes WHERE id >= ? ORDER BY id"
        let pairs = try database.sync { db -> [[Int64]] in
            var pairs: [[Int64]] = []
            try db.scan(select, bindings: [1]) { outer in
                try db.scan(select, bindings: [outer.int(0)]) { inner in pairs.append([outer.int(0), inner.int(0)]) }
            }
            return pairs
        }
        #expect(pairs == [[1, 1], [1, 2], [1, 3], [2, 2], [2, 3], [3, 3]])
    }

    @Test("scan steps through many rows by position without building them")
    func scan() throws {
        try database.sync { db in
            try db.transaction { for n in 1...1000 { try db.execute("INSERT INTO cells (id, i) VALUES (?, ?)", n, n * 3) } }
        }
        let (rows, sum) = try database.sync { db -> (Int, Int64) in
            var rows = 0, sum: Int64 = 0
            try db.scan("SELECT id, i FROM cells WHERE id > ?", bindings: [500]) { row in
                rows += 1
                sum += row.int(1) - row.int(0)
            }
            return (rows, sum)
        }
        #expect(rows == 500 && sum == (501...1000).reduce(0) { $0 + 2 * Int64($1) })
    }

    @Test("checkpoint empties the write-ahead log into the database file")
    func checkpoint() async throws {
        try await database.write { db in for n in 0..<200 { try db.execute("INSERT INTO notes (body) VALUES (?)", String(repeating: "x", count: 500) + "\(n)") } }
        let wal = folder.path("service.sqlite-wal")
        #expect(try FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int ?? 0 > 0)
        try await database.checkpoint()
        #expect(try FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int == 0)
        #expect(try await database.read { try count($0) } == 200)
    }
}

@Suite("Storage: backups and read-only access from another process")
final class BackupTests {
    let folder: Folder
    let database: Database

    init() throws {
        folder = try Folder()
        database = try Database(path: folder.path("service.sqlite"), migrations: [notesTable])
        try database.sync { db in try db.transaction { for n in 1...100 { try db.execute("INSERT INTO notes (id, body) VALUES (?, ?)", n, "note \(n)") } } }
    }

    deinit { database.close() }

    /// The notes in the database file at `path`, opened on its own.
    func notes(at path: String) throws -> [String] {
        let copy = try Database(path: path)
        defer { copy.close() }
        return try copy.sync { try $0.query("SELECT body FROM notes ORDER BY id").compactMap { $0.text("body") } }
    }

    @Test("backup(to:) copies the live database, committed log included, into a new 0600 file; it never overwrites a file or follows a link")
    func backup() throws {
        let destination = folder.path("backup.sqlite")
        try database.backup(to: destination)
        #expect(try notes(at: destination) == (1...100).map { "note \($0)" })
        #expect(try folder.mode("backup.sqlite") == 0o600)

        let again = #expect(throws: StorageError.self) { try self.database.backup(to: destination) }
        #expect(again?.message.contains("cannot create backup file \(destination): File exists") == true, "\(again?.message ?? "")")
        let target = folder.path("elsewhere.sqlite")
        try FileManager.default.createSymbolicLink(atPath: folder.path("link.sqlite"), withDestinationPath: target)
        #expect(throws: StorageError.self) { try self.database.backup(to: self.folder.path("link.sqlite")) }
        #expect(!FileManager.default.fileExists(atPath: target), "nothing written through the link")
    }

    @Test("onlineBackup(of:to:) copies a database another instance holds open, without its lock, and sees every committed change")
    func onlineBackup() throws {
        try database.sync { db in _ = try db.execute("DELETE FROM notes WHERE id > 10") }
        let destination = folder.path("online.sqlite")
        try Database.onlineBackup(of: database.path, to: destination)
        #expect(try notes(at: destination) == (1...10).map { "note \($0)" })
        let error = #expect(throws: StorageError.self) { try Database.onlineBackup(of: self.folder.path("none.sqlite"), to: self.folder.path("x.sqlite")) }
        #expect(error?.message == "database \(folder.path("none.sqlite")) does not exist")
        // The instance that holds the database goes on writing.
        try database.sync { db in _ = try db.execute("INSERT INTO notes (id, body) VALUES (11, 'after')") }
    }

    @Test("query(readOnly:) reads a database another instance holds, with bindings, and cannot write to it")
    func readOnlyQuery() throws {
        let rows = try Database.query(readOnly: database.path, "SELECT body FROM notes WHERE id BETWEEN ? AND ? ORDER BY id", bindings: [3, 5])
        #expect(rows.compactMap { $0.text("body") } == ["note 3", "note 4", "note 5"])
        let error = #expect(throws: StorageError.self) { _ = try Database.query(readOnly: self.database.path, "DELETE FROM notes") }
        #expect(error?.message.contains("readonly") == true, "\(error?.message ?? "")")
        #expect(try database.sync { try count($0) } == 100)
    }
}
