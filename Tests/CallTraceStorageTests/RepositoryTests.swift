import CallTraceStorage
import Foundation
import Testing

/// A repository as a service writes one: a protocol of named statements, made over a connection.
protocol NoteStatements {
    func add(_ body: String) throws
    func notes() throws -> [String]
}

struct SQLiteNotes: SQLiteRepository {
    struct Transaction: NoteStatements {
        let connection: Connection
        func add(_ body: String) throws { try connection.execute("INSERT INTO notes (body) VALUES (?)", body) }
        func notes() throws -> [String] { try connection.query("SELECT body FROM notes ORDER BY id").compactMap { $0.text("body") } }
    }

    let database: Database
    static func statements(on connection: Connection) -> any NoteStatements { Transaction(connection: connection) }
}

@Suite("Storage: a service's repository")
struct RepositoryTests {
    @Test("A write commits all its statements or, when it throws, none; a read sees what was committed")
    func writeAndRead() async throws {
        let folder = try Folder()
        let database = try Database(path: folder.path("service.sqlite"), migrations: [notesTable])
        defer { database.close() }
        let notes = SQLiteNotes(database: database)
        try await notes.write { tx in
            try tx.add("first")
            try tx.add("second")
        }
        // The body's own error comes back, and its first statement is undone with it.
        await #expect(throws: StorageError.self) {
            try await notes.write { tx in
                try tx.add("third")
                try tx.add("first")  // UNIQUE
            }
        }
        #expect(try await notes.read { try $0.notes() } == ["first", "second"])
    }
}
