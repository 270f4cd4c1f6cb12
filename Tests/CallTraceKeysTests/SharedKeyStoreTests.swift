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

    /// `count` replicas on one new key store, each with the same master key.
    private func withReplicas(_ count: Int, _ body: (TemporaryPostgres, [Replica]) async throws -> Void) async throws {
        let pki = try TemporaryPKI()
        let masterKeyPath = pki.directory.appendingPathComponent("master.key").path
        try MasterKey.generate(path: masterKeyPath)
        try await withTemporaryPostgres(pki: pki) { server in
            let url = try server.newDatabase(named: "media_keys")
            let replicas = try (0..<count).map { _ in try Replica(url: url, server: server, masterKey: try MasterKey.load(path: masterKeyPath)) }
            defer { for replica in replicas { replica.store.close() } }
            // Each proves the master key; the store has one id, which all get.
            #expect(Set(try replicas.map { try $0.keys.verifyMasterKey() }).count == 1)
            try await body(server, replicas)
        }
    }

    @Test("Two replicas share the keys: what one seals the other opens, an organisation created by both at once gets one set of keys, an object key made by one is read by the other")
    func shared() async throws {
        try await withReplicas(2) { _, replicas in
            let (a, b) = (replicas[0], replicas[1])
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

    @Test("A shred on one replica: another that read the keys before writes nothing more for the firm at once (no keys made, no object key added) and opens nothing of it once its cache's lifetime is over; the wrapped data key is gone from the rewritten table's file")
    func shredAcrossReplicas() async throws {
        try await withReplicas(4) { server, replicas in
            let (a, b, c) = (replicas[0], replicas[1], replicas[2])
            try a.keys.createKeys(for: "org_leaving")
            try a.keys.createKeys(for: "org_staying")
            let sealed = try a.keys.seal(Data("07700 900123".utf8), org: "org_leaving", table: "calls", column: "caller", row: "call_1")
            let kept = try a.keys.seal(Data("07700 900456".utf8), org: "org_staying", table: "calls", column: "caller", row: "call_2")
            _ = try b.keys.createObjectKey(org: "org_leaving", object: "rec_1")
            // B and C read the firm's keys before the shred.
            for replica in [b, c] {
                #expect(try replica.keys.open(sealed, org: "org_leaving", table: "calls", column: "caller", row: "call_1") == Data("07700 900123".utf8))
            }

            // The wrapped data key as the table's file holds it: found there before the shred,
            // so the search below can fail.
            let wrapped = try #require(try await a.store.read { db in
                try db.query("SELECT wrapped_data_key FROM org_keys WHERE org_id = 'org_leaving'").first?.blob("wrapped_data_key")
            })
            #expect(try tableFile("org_keys", a.store, server: server).range(of: wrapped) != nil)

            try a.keys.shred(org: "org_leaving")
            #expect(try tableFile("org_keys", a.store, server: server).range(of: wrapped) == nil, "VACUUM FULL rewrote org_keys without the shredded key")
            #expect(try await a.store.read { try $0.query("SELECT 1 FROM object_keys WHERE org_id = 'org_leaving'") }.isEmpty)
            #expect((#expect(throws: KeyError.self) { try a.keys.createKeys(for: "org_leaving") })?.kind == .noKey)

            // B still holds the keys in its cache: it writes nothing more for the firm, at once…
            #expect((#expect(throws: KeyError.self) { try b.keys.createKeys(for: "org_leaving") })?.kind == .noKey)
            // …and C, holding them too, adds no object key for it.
            #expect((#expect(throws: KeyError.self) { _ = try c.keys.createObjectKey(org: "org_leaving", object: "rec_2") })?.kind == .noKey)
            #expect(try await c.store.read { try $0.query("SELECT 1 FROM object_keys WHERE org_id = 'org_leaving'") }.isEmpty)

            // The cache's lifetime, on a replica that makes no write for the firm (a write's check
            // would end its cache at once): D reads another firm's keys, A shreds that firm, D
            // still opens its data within the lifetime, and nothing after it.
            try a.keys.createKeys(for: "org_second")
            let second = try a.keys.seal(Data("x".utf8), org: "org_second", table: "calls", column: "caller", row: "call_3")
            let d = replicas[3]
            #expect(try d.keys.open(second, org: "org_second", table: "calls", column: "caller", row: "call_3") == Data("x".utf8))
            try a.keys.shred(org: "org_second")
            #expect(try d.keys.open(second, org: "org_second", table: "calls", column: "caller", row: "call_3") == Data("x".utf8),
                    "within its lifetime the cache still serves: what cacheLifetime states")
            d.advance(by: KeyRing.cacheLifetime)
            #expect((#expect(throws: KeyError.self) {
                _ = try d.keys.open(second, org: "org_second", table: "calls", column: "caller", row: "call_3")
            })?.kind == .noKey)
            #expect(try d.keys.open(kept, org: "org_staying", table: "calls", column: "caller", row: "call_2") == Data("07700 900456".utf8))

            // A recording's key destroyed on one replica is gone for the other at once (object
            // keys are never cached).
            _ = try a.keys.createObjectKey(org: "org_staying", object: "rec_3")
            _ = try b.keys.objectKey(org: "org_staying", object: "rec_3")
            try b.keys.destroyObjectKey(org: "org_staying", object: "rec_3")
            #expect((#expect(throws: KeyError.self) { _ = try a.keys.objectKey(org: "org_staying", object: "rec_3") })?.kind == .noKey)
            // Made again (a transcript submitted again), it is a new key, which both use.
            let again = try a.keys.objectKey(org: "org_staying", object: "rec_3", creating: true)
            let sealedAgain = try a.keys.sealChunk(Data("new".utf8), with: again, index: 0, isLast: true)
            #expect(try b.keys.openChunk(sealedAgain, with: try b.keys.objectKey(org: "org_staying", object: "rec_3", creating: true), index: 0, isLast: true)
                    == Data("new".utf8))
        }
    }

    @Test("After rotate-master-key, a replica still running with the old master key makes no keys: they would be wrapped where no replica could open them")
    func rotationFence() async throws {
        try await withReplicas(2) { server, replicas in
            let (a, b) = (replicas[0], replicas[1])
            try a.keys.createKeys(for: "org_firm")
            let newPath = server.folder + "/new-master.key"
            try MasterKey.generate(path: newPath)
            #expect(try a.keys.rotateMasterKey(to: try MasterKey.load(path: newPath)) == 1)
            #expect((#expect(throws: KeyError.self) { try b.keys.createKeys(for: "org_new") })?.kind == .masterKey)
            #expect(try await b.store.read { try $0.query("SELECT 1 FROM org_keys WHERE org_id = 'org_new'") }.isEmpty)
            try a.keys.createKeys(for: "org_new")
        }
    }

    /// The bytes of `table`'s file on the server's disk, after a checkpoint wrote its pages.
    private func tableFile(_ table: String, _ store: Database, server: TemporaryPostgres) throws -> Data {
        try store.sync { db in
            try db.execute("CHECKPOINT")
            let path = try #require(try db.query("SELECT pg_relation_filepath('\(table)') AS path").first?.text("path"))
            return try Data(contentsOf: URL(fileURLWithPath: server.folder + "/data/" + path))
        }
    }
}
