import CallTraceKeys
import CallTraceStorage
import CallTraceTestSupport
import Foundation
import Testing

/// A service starts only on its own key store, opened by its master key: the check value the
/// store keeps and the key store id its database records refuse the wrong master key, and a
/// new, empty key store where the database's was (a master key moved to another folder, with
/// `key_store` following it), in one line naming the files and never a key.
@Suite("Key store and master key at start-up")
struct KeyStoreStartupTests {
    /// `flags` with `flag`'s value replaced.
    static func replacing(_ flags: [String], _ flag: String, with value: String) -> [String] {
        var flags = flags
        flags[flags.firstIndex(of: flag)! + 1] = value
        return flags
    }

    /// Runs the service once until it serves, then stops it: its database is bound to its key store.
    static func serveOnce(_ setup: ServiceSetup, _ flags: [String]? = nil) async throws {
        let process = try setup.start(flags)
        try #require(await process.waitForOutput(containing: "serving"), "\(process.stderr)")
        process.signal(SIGTERM)
        #expect(await process.waitForExit()?.status == 0)
    }

    /// Starts the service expecting a refusal: exit 1 with one line, never having served, and no
    /// master key's bytes (raw, hex or base64) in it.
    static func refusal(_ setup: ServiceSetup, _ flags: [String], keys: [String]) async throws -> String {
        let process = try setup.start(flags)
        let exit = try #require(await process.waitForExit())
        #expect(exit.status == 1, "\(exit.stderr)")
        #expect(exit.stderr.split(separator: "\n").count == 1, "\(exit.stderr)")
        #expect(exit.stderr.hasPrefix("calltrace-\(setup.service): cannot start: "), "\(exit.stderr)")
        for path in keys {
            let key = try Data(contentsOf: URL(fileURLWithPath: path))
            let hex = key.map { String(format: "%02x", $0) }.joined()
            for spelling in [hex, hex.uppercased(), key.base64EncodedString(), String(decoding: key, as: UTF8.self)] {
                #expect(!exit.stderr.contains(spelling), "a master key's bytes are in the refusal")
            }
        }
        return exit.stderr
    }

    @Test("A master key that does not open the key store refuses start-up, naming both files; the right key still serves",
          arguments: ["identity", "media", "transcript", "compliance"])
    func wrongMasterKey(service: String) async throws {
        let setup = try ServiceSetup(service: service)
        try await Self.serveOnce(setup)
        // Another key in the same folder: the same key store is found, and its check value does not open.
        let other = (setup.masterKey as NSString).deletingLastPathComponent + "/\(service).other.master-key"
        try MasterKey.generate(path: other)
        let line = try await Self.refusal(setup, Self.replacing(setup.flags, "--master-key", with: other), keys: [other, setup.masterKey])
        #expect(line.contains("master key \(other) does not open key store \(setup.keyStore)"), "\(line)")
        try await Self.serveOnce(setup)
    }

    @Test("A master key moved to another folder, key_store unset: start-up refuses and creates no key store there; key_store set to the store serves",
          arguments: ["identity", "media", "transcript", "compliance"])
    func masterKeyInAnotherFolder(service: String) async throws {
        let setup = try ServiceSetup(service: service)
        try await Self.serveOnce(setup)
        let elsewhere = setup.pki.directory.appendingPathComponent("new-keys")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let moved = elsewhere.appendingPathComponent("\(service).master-key").path
        try FileManager.default.copyItem(atPath: setup.masterKey, toPath: moved)
        let flags = Self.replacing(setup.flags, "--master-key", with: moved)

        let line = try await Self.refusal(setup, flags, keys: [moved])
        let looked = elsewhere.appendingPathComponent("\(service).keys.sqlite").path
        #expect(line.contains("key store \(looked) does not exist (key_store is not set, so it is looked for beside master_key \(moved), named after the database), "
                              + "but database \(setup.database) was served with key store ks_"), "\(line)")
        #expect(line.contains("set key_store to \(setup.keyStore) (where it was last opened) or wherever it is now, or restore it from its backup"), "\(line)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere.path) == ["\(service).master-key"], "a key store was created")

        // An empty key store put there (a file, or one a command made) is refused the same way.
        try Data().write(to: URL(fileURLWithPath: looked))
        #expect(try await Self.refusal(setup, flags, keys: [moved]).contains("key store \(looked) is empty"))
        // Another service's key store (another id) too.
        try FileManager.default.removeItem(atPath: looked)
        let stranger = try ServiceSetup(service: service)
        try await Self.serveOnce(stranger)
        let strangerLine = try await Self.refusal(setup, Self.replacing(flags, "--master-key", with: stranger.masterKey) + ["--key-store", stranger.keyStore],
                                                  keys: [stranger.masterKey])
        #expect(strangerLine.contains("key store \(stranger.keyStore) is ks_"), "\(strangerLine)")

        // Pointed at the store the database was served with, the moved key serves.
        try await Self.serveOnce(setup, flags + ["--key-store", setup.keyStore])
    }

    @Test("A database from before key store ids: without data it starts on a new key store; holding data it refuses a missing one, and with its own it serves and records the id",
          arguments: ["identity", "media", "transcript", "compliance"])
    func databaseFromBeforeBindings(service: String) async throws {
        let setup = try ServiceSetup(service: service)
        try await Self.serveOnce(setup)
        /// What a database written before bindings looks like, holding a row of data when `withData`.
        func unbind(withData: Bool) throws {
            let database = try Database(path: setup.database)
            try database.sync { connection in
                _ = try connection.execute("DROP TABLE key_store_binding")
                // Any row of the service's own tables counts; a dead letter is one every service has, and inert.
                if withData {
                    _ = try connection.execute("INSERT INTO audit_dead_letters (idempotency_key, event, reason, rejected_at_unix_ms) VALUES ('k1', x'00', 'test', 1)")
                }
            }
            database.close()
        }
        let keyStoreID = { try Database.query(readOnly: $0, "SELECT key_store_id FROM key_store").compactMap { $0.text("key_store_id") } }
        let boundID = { try Database.query(readOnly: setup.database, "SELECT key_store_id FROM key_store_binding").compactMap { $0.text("key_store_id") } }
        let original = try keyStoreID(setup.keyStore)
        let aside = setup.keyStore + ".aside"
        try FileManager.default.moveItem(atPath: setup.keyStore, toPath: aside)

        // Nothing the service writes on a first start counts as data: a new key store is made.
        try unbind(withData: false)
        try await Self.serveOnce(setup)
        #expect(try boundID() == keyStoreID(setup.keyStore) && boundID() != original)

        try unbind(withData: true)
        try FileManager.default.removeItem(atPath: setup.keyStore)
        let line = try await Self.refusal(setup, setup.flags, keys: [setup.masterKey])
        #expect(line.contains("key store \(setup.keyStore) does not exist (key_store is not set, so it is looked for beside master_key \(setup.masterKey), "
                              + "named after the database), but database \(setup.database) holds data sealed under the keys of a key store"), "\(line)")
        #expect(!FileManager.default.fileExists(atPath: setup.keyStore))

        try FileManager.default.moveItem(atPath: aside, toPath: setup.keyStore)
        try await Self.serveOnce(setup)
        #expect(try boundID() == original)
    }

    @Test("rotate-master-key refuses a missing key store (creating none) and a master key that does not open the store (re-wrapping nothing); after it, the old key refuses start-up")
    func rotationCommand() async throws {
        let setup = try ServiceSetup(service: "media")
        try await Self.serveOnce(setup)
        let folder = (setup.masterKey as NSString).deletingLastPathComponent
        let newKey = folder + "/media.master-key.new"
        try MasterKey.generate(path: newKey)
        let before = try Data(contentsOf: URL(fileURLWithPath: setup.keyStore))

        // The old README's step: master_key pointed at a key in another folder, key_store unset.
        let elsewhere = setup.pki.directory.appendingPathComponent("elsewhere")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let movedKey = elsewhere.appendingPathComponent("media.master-key").path
        try FileManager.default.copyItem(atPath: setup.masterKey, toPath: movedKey)
        let missing = try #require(await RunningProcess("calltrace-media", ["rotate-master-key"]
            + Self.replacing(setup.flags, "--master-key", with: movedKey) + ["--new-key", newKey]).waitForExit())
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("there is no key store at \(elsewhere.path)/media.keys.sqlite"), "\(missing.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere.path) == ["media.master-key"])

        // A master key that does not open the store.
        let wrong = folder + "/media.wrong.master-key"
        try MasterKey.generate(path: wrong)
        let refused = try #require(await RunningProcess("calltrace-media", ["rotate-master-key"]
            + Self.replacing(setup.flags, "--master-key", with: wrong) + ["--new-key", newKey]).waitForExit())
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("master key \(wrong) does not open key store \(setup.keyStore)"), "\(refused.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: setup.keyStore)) == before, "the refused rotation changed the key store")

        let rotated = try #require(await RunningProcess("calltrace-media", ["rotate-master-key"] + setup.flags + ["--new-key", newKey]).waitForExit())
        #expect(rotated.status == 0, "\(rotated.stderr)")
        let line = try await Self.refusal(setup, setup.flags, keys: [setup.masterKey, newKey])
        #expect(line.contains("master key \(setup.masterKey) does not open key store \(setup.keyStore)"), "\(line)")
        try await Self.serveOnce(setup, Self.replacing(setup.flags, "--master-key", with: newKey))
    }
}
