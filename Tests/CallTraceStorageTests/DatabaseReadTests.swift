import CallTraceStorage
import Foundation
import Testing

/// `Database.read`: the pool of read connections beside the one writer.
@Suite("Database reads")
final class DatabaseReadTests {
    /// Each test's own folder and database (ten notes), closed and removed when the test ends.
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("calltrace-reads-\(UUID().uuidString)")
    let database: Database

    init() throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        database = try Database(path: directory.appendingPathComponent("reads.sqlite").path,
                                migrations: [Migration(version: 1, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")])
        try database.sync { db in
            try db.transaction { for id in 1...10 { try db.execute("INSERT INTO notes (id, body) VALUES (?, ?)", id, "note \(id)") } }
        }
    }

    deinit {
        database.close()
        try? FileManager.default.removeItem(at: directory)
    }

    private static func count(_ db: Connection) throws -> Int64 {
        try db.query("SELECT count(*) AS n FROM notes")[0].int("n") ?? -1
    }

    @Test("Many reads at once on a fresh database, more than it has read connections: each is answered, whole")
    func concurrentReads() async throws {
        let database = self.database
        let counts = try await withThrowingTaskGroup(of: Int64.self) { group in
            for _ in 0..<32 { group.addTask { try await database.read { try Self.count($0) } } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(counts == [Int64](repeating: 10, count: 32))
    }

    @Test("A read sees one snapshot: a write committed while it runs is not half in it, and is in the next read")
    func snapshot() async throws {
        let database = self.database
        let (before, after) = try await database.read { db in
            let before = try Self.count(db)
            // The writer commits on its own thread while this read holds its snapshot.
            try database.sync { writer in _ = try writer.execute("DELETE FROM notes WHERE id > 5") }
            return (before, try Self.count(db))
        }
        #expect(before == 10 && after == 10)
        #expect(try await database.read { try Self.count($0) } == 5)
    }

    @Test("A write slipped into a read fails loudly and changes nothing")
    func readsCannotWrite() async throws {
        await #expect(throws: StorageError.self) {
            try await database.read { db in _ = try db.execute("DELETE FROM notes") }
        }
        #expect(try await database.read { try Self.count($0) } == 10)
    }

    @Test("After close, a read fails with a clear error instead of touching a closed connection")
    func readAfterClose() async throws {
        #expect(try await database.read { try Self.count($0) } == 10)
        database.close()
        let error = await #expect(throws: StorageError.self) { try await database.read { try Self.count($0) } }
        #expect("\(error.map { "\($0)" } ?? "")".contains("closed"))
    }
}
