import CallTraceStorage
import CallTraceTestSupport
import Foundation
import Testing

/// Issue 34: a service's `Database` on PostgreSQL — the same migrations, reads and writes as on
/// SQLite, shared by several replicas.
@Suite("Storage: a service's database on PostgreSQL, shared by replicas")
struct PostgresDatabaseTests {
    /// A migration in SQLite's words, as the services write theirs.
    static let migrations = [
        Migration(version: 1, """
            CREATE TABLE notes (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                org_id TEXT NOT NULL,
                at_unix_ms INTEGER NOT NULL,
                body BLOB NOT NULL,
                score REAL
            );
            CREATE INDEX notes_by_org ON notes (org_id, at_unix_ms); -- an index, INTEGER in a comment
            """),
        Migration(version: 2, "CREATE TABLE numbered (org_id TEXT NOT NULL, no INTEGER NOT NULL, PRIMARY KEY (org_id, no))"),
    ]
    static let track = SchemaTrack(name: "host", migrations: [Migration(version: 1, "CREATE TABLE jobs (id TEXT PRIMARY KEY, run_at_unix_ms INTEGER NOT NULL)")]) { _ in 0 }

    /// A new server and a new database on it (its URL and name).
    private func withDatabase(_ body: (TemporaryPostgres, _ url: String, _ name: String) async throws -> Void) async throws {
        let pki = try TemporaryPKI()
        try await withTemporaryPostgres(pki: pki) { server in
            let name = "service_\(UUID().uuidString.prefix(8).lowercased())"
            try await body(server, try server.newDatabase(named: name), name)
        }
    }

    @Test("Migrations written for SQLite apply on PostgreSQL: 64-bit integers, bytes, doubles and an identity key; versions kept per track; a second start finds nothing to do, a newer schema is refused")
    func migrations() async throws {
        try await withDatabase { server, url, _ in
            let database = try Database.open(url, passwordFile: server.passwordFile)
            #expect(database.dialect == .postgres && database.schemaVersion == 0)
            try database.migrate(Self.migrations, tracks: [Self.track])
            #expect(database.schemaVersion == 2)
            let bytes = Data([0, 1, 2, 255, 0])
            try await database.write { db in
                try db.execute("INSERT INTO notes (org_id, at_unix_ms, body, score) VALUES (?, ?, ?, ?)", "org-a", Int64.max, bytes, 0.5)
                try db.execute("INSERT INTO notes (org_id, at_unix_ms, body) VALUES (?, ?, ?)", "org-a", 1_800_000_000_000, Data())
                try db.execute("INSERT INTO jobs (id, run_at_unix_ms) VALUES (?, ?)", "j", 1_800_000_000_000)
            }
            let rows = try await database.read { try $0.query("SELECT id, at_unix_ms, body, score FROM notes ORDER BY id") }
            #expect(rows.map { $0.int("id") } == [1, 2], "the identity numbers rows as AUTOINCREMENT does")
            #expect(rows[0].int("at_unix_ms") == Int64.max && rows[0].blob("body") == bytes && rows[0]["score"] == .real(0.5))
            #expect(rows[1]["score"] == .null && rows[1].blob("body") == Data())
            #expect(try await database.read { try $0.tableNames() } == ["notes", "numbered", "jobs", "schema_tracks"])
            let tracks = try await database.read { try $0.query("SELECT name, version FROM schema_tracks ORDER BY name") }
            #expect(tracks.map { "\($0.text("name") ?? "")=\($0.int("version") ?? -1)" } == ["host=1", "main=2"])
            database.close()

            // A replica starting on the migrated database: nothing to do, the data as it was.
            let again = try Database.open(url, passwordFile: server.passwordFile)
            #expect(again.schemaVersion == 2)
            try again.migrate(Self.migrations, tracks: [Self.track])
            #expect(try await again.read { try $0.query("SELECT COUNT(*) AS n FROM notes").first?.int("n") } == 2)
            // A build that knows only version 1 refuses the database.
            let refused = #expect(throws: StorageError.self) { try again.checkSchema(knownUpTo: 1, tracks: [Self.track]) }
            #expect(refused?.message.contains("newer schema version (2)") == true)
            again.close()
        }
    }

    @Test("Two replicas write at once: each write runs alone (the database's write lock), so read-then-insert numbering from both gives every number once; a read sees one snapshot")
    func replicasWriteOneAtATime() async throws {
        try await withDatabase { server, url, _ in
            let one = try Database.open(url, passwordFile: server.passwordFile)
            let two = try Database.open(url, passwordFile: server.passwordFile)
            defer { one.close(); two.close() }
            try one.migrate(Self.migrations)
            try two.migrate(Self.migrations)
            // The next number is read, then written: two writers in READ COMMITTED without the
            // lock would read the same maximum, and one insert would fail on the key.
            @Sendable func next(_ db: Connection) throws {
                let last = try db.query("SELECT MAX(no) AS last FROM numbered WHERE org_id = ?", "org-a").first?.int("last") ?? 0
                try db.execute("INSERT INTO numbered (org_id, no) VALUES (?, ?)", "org-a", last + 1)
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for replica in [one, two] {
                    for _ in 0..<4 {
                        group.addTask { for _ in 0..<15 { try await replica.write(next) } }
                    }
                }
                try await group.waitForAll()
            }
            let numbers = try await two.read { try $0.query("SELECT no FROM numbered ORDER BY no").compactMap { $0.int("no") } }
            #expect(numbers == Array(1...120))

            // One snapshot: a write committed by the other replica between two statements of a
            // read is not seen by the second.
            let (first, second) = try await one.read { db -> (Int64, Int64) in
                let before = try db.query("SELECT COUNT(*) AS n FROM numbered").first?.int("n") ?? -1
                let other = try PostgresConnection(try PostgresAddress(url: url, passwordFile: server.passwordFile))
                try other.execute("INSERT INTO numbered (org_id, no) VALUES ('org-b', 1)")
                other.close()
                return (before, try db.query("SELECT COUNT(*) AS n FROM numbered").first?.int("n") ?? -1)
            }
            #expect(first == 120 && second == 120)
            #expect(try await one.read { try $0.query("SELECT COUNT(*) AS n FROM numbered").first?.int("n") } == 121)
            await #expect(throws: StorageError.self) {
                try await one.read { db in try db.execute("INSERT INTO numbered (org_id, no) VALUES ('org-c', 1)") }
            }
        }
    }

    @Test("Connections the server ends (a restart, a failover) are replaced: a write or read that finds its session gone at its start runs on a new one; a failed write keeps none of its statements")
    func droppedConnection() async throws {
        try await withDatabase { server, url, name in
            let database = try Database.open(url, passwordFile: server.passwordFile)
            defer { database.close() }
            try database.migrate(Self.migrations)
            try await database.write { try $0.execute("INSERT INTO numbered (org_id, no) VALUES ('org-a', 1)") }
            // Every other session of this database ended from outside, as a server restart or a
            // failover would.
            let admin = try PostgresConnection(try PostgresAddress(url: server.url, passwordFile: server.passwordFile))
            defer { admin.close() }
            func sessions() throws -> Int64 {
                try admin.query("SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = ?", name).first?.int("n") ?? -1
            }
            #expect(try sessions() >= 1)
            _ = try admin.query("SELECT COUNT(*) AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ?) AS ended", name)
            #expect(await eventually { (try? sessions()) == 0 })
            // Nothing of it ran on the ended session: it runs whole, once, on a new one.
            try await database.write { try $0.execute("INSERT INTO numbered (org_id, no) VALUES ('org-a', 2)") }
            try await database.write { try $0.execute("INSERT INTO numbered (org_id, no) VALUES ('org-a', 3)") }
            #expect(try database.sync { try $0.query("SELECT no FROM numbered ORDER BY no").compactMap { $0.int("no") } } == [1, 2, 3],
                    "start-up's connection is replaced too")
            // Reads too, with every session ended again.
            _ = try admin.query("SELECT COUNT(*) AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ?) AS ended", name)
            #expect(await eventually { (try? sessions()) == 0 })
            #expect(try await database.read { try $0.query("SELECT COUNT(*) AS n FROM numbered").first?.int("n") } == 3)

            await #expect(throws: StorageError.self) {
                try await database.write { db in
                    try db.execute("INSERT INTO numbered (org_id, no) VALUES ('org-b', 1)")
                    try db.execute("INSERT INTO numbered (org_id, no) VALUES ('org-b', 1)")
                }
            }
            #expect(try await database.read { try $0.query("SELECT no FROM numbered WHERE org_id = 'org-b'") }.isEmpty)
        }
    }
}
