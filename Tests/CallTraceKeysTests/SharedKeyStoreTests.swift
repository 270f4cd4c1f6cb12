import CallTraceKeys
import CallTraceStorage
import CallTraceSync
import CallTraceTestSupport
import Foundation
import Testing

/// Issue 34: replicas of a service share one key store, a PostgreSQL database of its own. Each
/// replica is a `KeyRing` on its own connections, with its own clock for the cache's lifetime.
@Suite("Keys: one key store shared by a service's replicas, in PostgreSQL")
struct SharedKeyStoreTests {
    /// A replica's key ring on the key store at `url`, with a clock the test moves.
    final class Replica: Sendable {
        let store: Database
        let keys: KeyRing
        let now: Locked<Int64>

        init(url: String, server: TemporaryPostgres, masterKey: MasterKey) throws {
            store = try Database.open(url, passwordFile: server.passwordFile)
            try store.migrate(KeyRing.migrations)
            let now = Locked<Int64>(1_800_000_000_000)
            self.now = now
            keys = KeyRing(keyStore: store, masterKey: masterKey, now: { now.withLock { $0 } })
        }

        func advance(by duration: Duration) { now.withLock { $0 += duration.components.seconds * 1000 } }
    }

    private func withReplicas(_ body: (TemporaryPostgres, Replica, Replica) async throws -> Void) async throws {
        let pki = try TemporaryPKI()
        let masterKeyPath = pki.directory.appendingPathComponent("master.key").path
        try MasterKey.generate(path: masterKeyPath)
        try await withTemporaryPostgres(pki: pki) { server in
            let url = try server.newDatabase(named: "media_keys")
            let (a, b) = (try Replica(url: url, server: server, masterKey: try MasterKey.load(path: masterKeyPath)),
                          try Replica(url: url, server: server, masterKey: try MasterKey.load(path: masterKeyPath)))
            defer { a.store.close(); b.store.close() }
            // Both prove the master key; the store has one id, which both get.
            #expect(try a.keys.verifyMasterKey() == b.keys.verifyMasterKey())
            try await body(server, a, b)
        }
    }

    @Test("Two replicas share the keys: what one seals the other opens, an organisation created by both at once gets one set of keys, an object key made by one is read by the other")
    func shared() async throws {
        try await withReplicas { _, a, b in
            // Twenty creations of one firm's keys on each replica at once: one set, which both use.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 0..<40 {
                    let replica = n.isMultiple(of: 2) ? a : b
                    group.addTask { try replica.keys.createKeys(for: "org_firm") }
                }
                try await group.waitForAll()
            }
            #expect(try await a.store.read { try $0.query("SELECT count(*) AS n FROM org_keys").first?.int("n") } == 1)
            let sealed = try a.keys.seal(Data("Mrs Patel".utf8), org: "org_firm", table: "calls", column: "caller_name", row: "call_1")
            #expect(try b.keys.open(sealed, org: "org_firm", table: "calls", column: "caller_name", row: "call_1") == Data("Mrs Patel".utf8))
            #expect(try a.keys.blindIndex(phoneNumber: "07700900123", org: "org_firm") == b.keys.blindIndex(phoneNumber: "07700900123", org: "org_firm"))

            let made = try b.keys.createObjectKey(org: "org_firm", object: "rec_1")
            let chunk = try b.keys.sealChunk(Data("audio".utf8), with: made, index: 0, isLast: true)
            #expect(try a.keys.openChunk(chunk, with: try a.keys.objectKey(org: "org_firm", object: "rec_1"), index: 0, isLast: true) == Data("audio".utf8))
        }
    }

    @Test("A shred on one replica: the other adds no object key for the firm at once, opens nothing of it once its cache's lifetime is over, and the wrapped keys are gone from the key tables' files")
    func shredAcrossReplicas() async throws {
        try await withReplicas { server, a, b in
            try a.keys.createKeys(for: "org_leaving")
            try a.keys.createKeys(for: "org_staying")
            let sealed = try a.keys.seal(Data("07700 900123".utf8), org: "org_leaving", table: "calls", column: "caller", row: "call_1")
            let kept = try a.keys.seal(Data("07700 900456".utf8), org: "org_staying", table: "calls", column: "caller", row: "call_2")
            _ = try b.keys.createObjectKey(org: "org_leaving", object: "rec_1")
            #expect(try b.keys.open(sealed, org: "org_leaving", table: "calls", column: "caller", row: "call_1") == Data("07700 900123".utf8))

            // The wrapped keys as the tables' files hold them: found there before the shred, so
            // the search below can fail.
            let wrapped = try await a.store.read { db in
                try db.query("SELECT wrapped_data_key FROM org_keys WHERE org_id = 'org_leaving'").compactMap { $0.blob("wrapped_data_key") }
                    + db.query("SELECT wrapped_key FROM object_keys WHERE org_id = 'org_leaving'").compactMap { $0.blob("wrapped_key") }
            }
            #expect(wrapped.count == 2)
            #expect(try tableFiles(a.store, server: server).contains { file in wrapped.contains { file.range(of: $0) != nil } })

            try a.keys.shred(org: "org_leaving")
            #expect(try tableFiles(a.store, server: server).allSatisfy { file in wrapped.allSatisfy { file.range(of: $0) == nil } },
                    "VACUUM FULL rewrote the key tables without the shredded keys")
            #expect(throws: KeyError.self) { try a.keys.createKeys(for: "org_leaving") }

            // Replica B read the keys before the shred. It adds no object key for the firm, at once…
            let refused = #expect(throws: KeyError.self) { _ = try b.keys.createObjectKey(org: "org_leaving", object: "rec_2") }
            #expect(refused?.kind == .noKey)
            #expect(try await b.store.read { try $0.query("SELECT 1 FROM object_keys WHERE org_id = 'org_leaving'") }.isEmpty)
            // …and once its cache's lifetime is over, it opens nothing of the firm.
            b.advance(by: KeyRing.cacheLifetime)
            let unreadable = #expect(throws: KeyError.self) {
                _ = try b.keys.open(sealed, org: "org_leaving", table: "calls", column: "caller", row: "call_1")
            }
            #expect(unreadable?.kind == .noKey)
            #expect(try b.keys.open(kept, org: "org_staying", table: "calls", column: "caller", row: "call_2") == Data("07700 900456".utf8))

            // A recording's key destroyed on one replica is gone for the other at once (object
            // keys are never cached), and the table vacuumed.
            _ = try a.keys.createObjectKey(org: "org_staying", object: "rec_3")
            _ = try b.keys.objectKey(org: "org_staying", object: "rec_3")
            try b.keys.destroyObjectKey(org: "org_staying", object: "rec_3")
            #expect((#expect(throws: KeyError.self) { _ = try a.keys.objectKey(org: "org_staying", object: "rec_3") })?.kind == .noKey)
            let vacuumed = try await a.store.read { try $0.query("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'object_keys'").first?.int("vacuum_count") }
            #expect((vacuumed ?? 0) >= 1)
        }
    }

    /// The bytes of the key tables' files on the server's disk, after a checkpoint wrote their pages.
    private func tableFiles(_ store: Database, server: TemporaryPostgres) throws -> [Data] {
        try store.sync { db in
            try db.execute("CHECKPOINT")
            return try ["org_keys", "object_keys"].map { table in
                let path = try #require(try db.query("SELECT pg_relation_filepath('\(table)') AS path").first?.text("path"))
                return try Data(contentsOf: URL(fileURLWithPath: server.folder + "/data/" + path))
            }
        }
    }
}
