@testable import CallTraceKeys
import CallTraceStorage
import Foundation
import Testing

/// The key store's check value and id (`KeyRing.verifyMasterKey`): a master key that does not
/// open the store is found before anything is read or sealed.
@Suite("Key store: check value and id")
struct KeyStoreCheckTests {
    @Test("A new key store gets an id and a check value; its master key opens it again, another is refused naming both files")
    func checkValue() throws {
        let vault = try Vault()
        let id = try vault.keys.verifyMasterKey()
        #expect(id.hasPrefix("ks_") && id.count == 35)
        #expect(try vault.keys.verifyMasterKey() == id)
        try vault.open()
        #expect(try vault.keys.verifyMasterKey() == id)

        let other = vault.directory.appendingPathComponent("other.key").path
        try MasterKey.generate(path: other)
        try vault.open(masterKey: other)
        let error = #expect(throws: KeyError.self) { _ = try vault.keys.verifyMasterKey() }
        #expect(error?.kind == .masterKey)
        #expect(error?.message == "master key \(other) does not open key store \(vault.keyStorePath): its keys are wrapped under another master key "
                + "(after rotate-master-key, only the new key opens it)")
    }

    @Test("A key store from before check values is proved by a wrapped key, then gets a check value and the id its database recorded")
    func storeFromBeforeChecks() async throws {
        let vault = try Vault()
        try await vault.addNote("n1", org: "org-a", body: "a call")
        // Another master key cannot prove itself on it, and writes nothing.
        let other = vault.directory.appendingPathComponent("other.key").path
        try MasterKey.generate(path: other)
        try vault.open(masterKey: other)
        let error = #expect(throws: KeyError.self) { _ = try vault.keys.verifyMasterKey(adopting: "ks_recorded") }
        #expect(error?.kind == .masterKey)
        #expect(try vault.keyStore.sync { try $0.query("SELECT 1 FROM key_store") }.isEmpty)

        try vault.open()
        #expect(try vault.keys.verifyMasterKey(adopting: "ks_recorded") == "ks_recorded")
        #expect(try await vault.readNote("n1") == "a call")
        try vault.open(masterKey: other)
        #expect(throws: KeyError.self) { _ = try vault.keys.verifyMasterKey() }
    }

    @Test("Rotation re-seals the check value: the new key opens the store, the old is refused; a wrong current key re-wraps nothing")
    func rotation() async throws {
        let vault = try Vault()
        try await vault.addNote("n1", org: "org-a", body: "before rotation")
        let id = try vault.keys.verifyMasterKey()
        let newPath = vault.directory.appendingPathComponent("new.key").path
        try MasterKey.generate(path: newPath)

        let wrongPath = vault.directory.appendingPathComponent("wrong.key").path
        try MasterKey.generate(path: wrongPath)
        try vault.open(masterKey: wrongPath)
        let snapshot = { try vault.keyStore.sync { try $0.query("SELECT wrapped_data_key FROM org_keys").compactMap { $0.blob("wrapped_data_key") } } }
        let before = try snapshot()
        let refused = #expect(throws: KeyError.self) { _ = try vault.keys.rotateMasterKey(to: try MasterKey.load(path: newPath)) }
        #expect(refused?.kind == .masterKey)
        #expect(try snapshot() == before)

        try vault.open()
        #expect(try vault.keys.rotateMasterKey(to: try MasterKey.load(path: newPath)) == 1)
        try vault.open(masterKey: newPath)
        #expect(try vault.keys.verifyMasterKey() == id)
        #expect(try await vault.readNote("n1") == "before rotation")
        try vault.open()
        #expect(throws: KeyError.self) { _ = try vault.keys.verifyMasterKey() }
    }

    @Test("A store is unused until it has an id, a key or a shredded organisation")
    func unused() throws {
        let vault = try Vault()
        #expect(try vault.keys.isUnused())
        _ = try vault.keys.verifyMasterKey()
        #expect(try !vault.keys.isUnused())

        let shredded = try Vault()
        try shredded.keys.createKeys(for: "org-a")
        try shredded.keys.shred(org: "org-a")
        #expect(try !shredded.keys.isUnused())
    }
}
