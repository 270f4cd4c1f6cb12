import CallTraceServiceHost
import CallTraceStorage
import CallTraceTestSupport
import Foundation
import Testing

/// The host's shared tables (audit outbox, dead letters, jobs) migrate on a track of their own,
/// and a database from before the track (when each service listed them among its migrations)
/// is adopted as it is: nothing re-run, nothing lost.
/// A folder of its own, removed when released.
private final class TemporaryFolder {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("calltrace-tracks-\(UUID().uuidString)")
    init() throws { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    deinit { try? FileManager.default.removeItem(at: url) }
}

@Suite("The host's schema track")
struct SchemaTrackTests {
    /// A service's own tables, as a service lists them now: the gaps are the versions the host's
    /// tables once took in its list.
    let own = [Migration(version: 2, "CREATE TABLE things (id TEXT PRIMARY KEY)"), Migration(version: 5, "CREATE TABLE more (id TEXT PRIMARY KEY)")]
    /// The same service's list before the track.
    var legacy: [Migration] {
        [Migration(version: 1, SharedSchema.v1), own[0], Migration(version: 3, SharedSchema.v2), Migration(version: 4, SharedSchema.v3), own[1]]
    }

    func tables(_ database: Database) throws -> Set<String> {
        Set(try database.sync { try $0.query("SELECT name FROM sqlite_master WHERE type = 'table'") }.compactMap { $0.text("name") })
    }

    func hostVersion(_ database: Database) throws -> Int64? {
        try database.sync { try $0.query("SELECT version FROM schema_tracks WHERE name = 'host'") }.first?.int("version")
    }

    @Test("A new database: the host's tables, then the service's; both versions recorded")
    func fresh() throws {
        let folder = try TemporaryFolder()
        let database = try Database(path: folder.path("a.sqlite"))
        defer { database.close() }
        try database.migrate(own, tracks: [SharedSchema.track])
        #expect(try tables(database).isSuperset(of: ["audit_outbox", "audit_dead_letters", "jobs", "job_schedules", "things", "more", "schema_tracks"]))
        #expect(try hostVersion(database) == Int64(SharedSchema.track.latest))
        #expect(database.schemaVersion == 5)
        // Again: nothing to do.
        try database.migrate(own, tracks: [SharedSchema.track])
        #expect(try hostVersion(database) == Int64(SharedSchema.track.latest))
    }

    @Test("A database from before the track, whole or half-way: adopted at the version its tables show, the rest applied, rows kept",
          arguments: [5, 4, 2, 1])
    func adopted(upTo version: Int) throws {
        let folder = try TemporaryFolder()
        let path = folder.path("legacy.sqlite")
        let old = try Database(path: path, migrations: legacy.filter { $0.version <= version })
        if version >= 2 { try old.sync { _ = try $0.execute("INSERT INTO things (id) VALUES ('kept')") } }
        old.close()

        let database = try Database(path: path)
        defer { database.close() }
        try database.checkSchema(knownUpTo: 5, tracks: [SharedSchema.track])
        // A table created twice would fail here ("table … already exists").
        try database.migrate(own, tracks: [SharedSchema.track])
        #expect(try hostVersion(database) == Int64(SharedSchema.track.latest))
        #expect(database.schemaVersion == 5)
        #expect(try tables(database).isSuperset(of: ["audit_outbox", "audit_dead_letters", "jobs", "things", "more"]))
        #expect(try database.sync { try $0.query("SELECT id FROM things") }.map { $0.text("id") } == (version >= 2 ? ["kept"] : []))
    }

    @Test("A database whose host track is newer than this build is refused, naming the track")
    func newer() throws {
        let folder = try TemporaryFolder()
        let database = try Database(path: folder.path("a.sqlite"))
        defer { database.close() }
        try database.migrate(own, tracks: [SharedSchema.track])
        try database.sync { _ = try $0.execute("UPDATE schema_tracks SET version = 9 WHERE name = 'host'") }
        let error = #expect(throws: StorageError.self) { try database.checkSchema(knownUpTo: 5, tracks: [SharedSchema.track]) }
        #expect("\(error!)".contains("newer host schema version (9); this build knows up to \(SharedSchema.track.latest)"), "\(error!)")
        #expect(throws: StorageError.self) { try database.migrate(own, tracks: [SharedSchema.track]) }
    }
}
