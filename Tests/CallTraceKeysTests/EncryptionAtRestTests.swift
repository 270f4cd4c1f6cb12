@testable import CallTraceKeys
import CallTraceStorage
import CallTraceSync
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A temporary folder with a master key and a database holding sealed rows.
final class Vault: @unchecked Sendable {
    let directory: URL
    let masterKeyPath: String
    var database: Database!
    var keyStore: Database!
    var keys: KeyRing!

    static let migrations = [Migration(version: 1, """
        CREATE TABLE notes (id TEXT PRIMARY KEY, org_id TEXT NOT NULL, body BLOB NOT NULL, caller_index BLOB);
        CREATE TABLE chunks (blob_id TEXT NOT NULL, idx INTEGER NOT NULL, sealed BLOB NOT NULL, PRIMARY KEY (blob_id, idx));
        """)]

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("calltrace-vault-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        masterKeyPath = directory.appendingPathComponent("master.key").path
        try MasterKey.generate(path: masterKeyPath)
        try open()
    }

    var databasePath: String { directory.appendingPathComponent("service.sqlite").path }
    var keyStorePath: String { directory.appendingPathComponent("service.keys.sqlite").path }

    func open(path: String? = nil, masterKey: String? = nil) throws {
        database?.close()
        keyStore?.close()
        keys = nil
        database = try Database(path: path ?? databasePath, migrations: Self.migrations)
        keyStore = try Database(path: keyStorePath, migrations: KeyRing.migrations)
        keys = KeyRing(keyStore: keyStore, masterKey: try MasterKey.load(path: masterKey ?? masterKeyPath))
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    func addNote(_ id: String, org: String, body: String) async throws {
        let keys = self.keys!
        try keys.createKeys(for: org)
        try await database.write { db in
            let sealed = try keys.seal(Data(body.utf8), org: org, table: "notes", column: "body", row: id)
            try db.execute("INSERT INTO notes (id, org_id, body) VALUES (?, ?, ?)", id, org, sealed)
        }
    }

    func readNote(_ id: String) async throws -> String {
        let keys = self.keys!
        return try await database.read { db in
            guard let row = try db.query("SELECT org_id, body FROM notes WHERE id = ?", id).first,
                  let org = row.text("org_id"), let body = row.blob("body") else { throw StorageError("no note \(id)") }
            return String(decoding: try keys.open(body, org: org, table: "notes", column: "body", row: id), as: UTF8.self)
        }
    }
}

@Suite("P4: encryption at rest")
struct EncryptionAtRestTests {
    @Test("Sealed fields are not stored in clear and read back")
    func roundTrip() async throws {
        let vault = try Vault()
        try await vault.addNote("n1", org: "org-a", body: "caller asked about a will")
        #expect(try await vault.readNote("n1") == "caller asked about a will")
        let raw = try Data(contentsOf: URL(fileURLWithPath: vault.databasePath))
            + ((try? Data(contentsOf: URL(fileURLWithPath: vault.databasePath + "-wal"))) ?? Data())
        #expect(raw.range(of: Data("asked about a will".utf8)) == nil)
    }

    @Test("Swapping two rows' ciphertexts, or moving one to another org, fails loudly")
    func tampering() async throws {
        let vault = try Vault()
        try await vault.addNote("n1", org: "org-a", body: "first")
        try await vault.addNote("n2", org: "org-a", body: "second")
        try await vault.addNote("n3", org: "org-b", body: "third")
        try await vault.database.write { db in
            let one = try db.query("SELECT body FROM notes WHERE id = 'n1'")[0].blob("body")!
            let two = try db.query("SELECT body FROM notes WHERE id = 'n2'")[0].blob("body")!
            try db.execute("UPDATE notes SET body = ? WHERE id = 'n1'", two)
            try db.execute("UPDATE notes SET body = ? WHERE id = 'n2'", one)
            let three = try db.query("SELECT body FROM notes WHERE id = 'n3'")[0].blob("body")!
            try db.execute("INSERT INTO notes (id, org_id, body) VALUES ('n4', 'org-a', ?)", three)
        }
        for id in ["n1", "n2", "n4"] {
            let error = await #expect(throws: KeyError.self) { _ = try await vault.readNote(id) }
            #expect(error?.kind == .tampered)
        }
        #expect(try await vault.readNote("n3") == "third")
    }

    @Test("E.164: the common UK ways of writing one number agree; extensions dropped; other scripts' digits and junk refused",
          arguments: [
            ("0118 230 4651", "+441182304651"), ("+44 118 230 4651", "+441182304651"), ("+44 (0)118 230 4651", "+441182304651"),
            ("+44 0118 230 4651", "+441182304651"), ("00441182304651", "+441182304651"), ("(0118) 230-4651", "+441182304651"),
            ("0118 230 4651 ext. 12", "+441182304651"), ("0118 230 4651 x12", "+441182304651"), ("+1 415 555 0100", "+14155550100"),
            ("0118 230 4651 EXT 12", "+441182304651"), ("0118 230 4651 #12", "+441182304651"), ("0118 230 4651X", "+441182304651"),
          ])
    func e164(raw: String, expected: String) {
        #expect(PhoneNumber.e164(raw) == expected)
    }

    @Test("E.164 abroad: a trunk 0 written after any country code goes, with or without brackets, except where the 0 is the number's own",
          arguments: [
            ("+49 (0)30 1234567", "+49301234567"), ("+49 030 1234567", "+49301234567"), ("+49 30 1234567", "+49301234567"),
            ("0049 (0)30 1234567", "+49301234567"), ("+33 (0)1 23 45 67 89", "+33123456789"), ("+33 1 23 45 67 89", "+33123456789"),
            ("+31 (0)20 123 4567", "+31201234567"), ("+41 (0)44 123 45 67", "+41441234567"), ("+43 (0)1 234 5678", "+4312345678"),
            ("+353 (0)1 234 5678", "+35312345678"), ("+353 1 234 5678", "+35312345678"), ("+32 (0)2 123 45 67", "+3221234567"),
            ("+61 (0)2 9876 5432", "+61298765432"), ("+27 (0)21 123 4567", "+27211234567"), ("+971 (0)4 123 4567", "+97141234567"),
            ("+1 (415) 555-0100", "+14155550100"), ("+7 495 123-45-67", "+74951234567"),
            ("+39 06 1234 5678", "+390612345678"), ("+39 (0)6 1234 5678", "+390612345678"), ("+39 333 123 4567", "+393331234567"),
            ("+225 07 12 34 56 78", "+2250712345678"), ("+378 0549 123456", "+3780549123456"),
          ])
    func e164Abroad(raw: String, expected: String) {
        #expect(PhoneNumber.e164(raw) == expected)
    }

    @Test("E.164 refuses what is not a phone number", arguments: ["", "hello", "٠١١٨ ٢٣٠ ٤٦٥١", "0118 230 4651abc", "12345", "+44 +118",
                                                                    "0118 230 4651 ex 12", "0118 230 4651 e"])
    func e164Refusals(raw: String) {
        #expect(PhoneNumber.e164(raw) == nil)
    }

    @Test("Audio chunks under each recording's own key: truncation, reordering and splicing are detected; a destroyed key opens nothing")
    func chunks() async throws {
        let vault = try Vault()
        let keys = vault.keys!
        try keys.createKeys(for: "org-a")
        let keyA = try keys.createObjectKey(org: "org-a", object: "rec-1")
        let keyB = try keys.createObjectKey(org: "org-a", object: "rec-2")
        let parts = (0..<4).map { Data(repeating: UInt8($0), count: 1000) }
        let sealedA = try parts.enumerated().map { try keys.sealChunk($1, with: keyA, index: $0, isLast: $0 == 3) }
        let sealedB = try parts.enumerated().map { try keys.sealChunk($1, with: keyB, index: $0, isLast: $0 == 3) }
        /// Opens `chunks` as the whole of rec-1, in order.
        func open(_ chunks: [Data]) throws -> Data {
            let key = try keys.objectKey(org: "org-a", object: "rec-1")
            return try chunks.enumerated().reduce(into: Data()) { whole, item in
                whole += try keys.openChunk(item.element, with: key, index: item.offset, isLast: item.offset == chunks.count - 1)
            }
        }
        #expect(try open(sealedA) == parts.reduce(Data(), +))
        let variants: [(String, [Data])] = [
            ("truncated", Array(sealedA.dropLast())),
            ("reordered", [sealedA[1], sealedA[0], sealedA[2], sealedA[3]]),
            ("spliced from another recording", [sealedA[0], sealedB[1], sealedA[2], sealedA[3]]),
            ("chunk dropped", [sealedA[0], sealedA[2], sealedA[3]]),
        ]
        for (name, chunks) in variants {
            let error = #expect(throws: KeyError.self, "\(name)") { _ = try open(chunks) }
            #expect(error?.kind == .tampered)
        }
        try keys.destroyObjectKey(org: "org-a", object: "rec-1")
        #expect(throws: KeyError.self) { _ = try open(sealedA) }
        #expect(try keys.objectKeyIDs().map(\.object) == ["rec-2"])
        // Shredding the organisation takes every object key with it.
        try keys.shred(org: "org-a")
        #expect(try keys.objectKeyIDs().isEmpty)
    }

    @Test("A sweep's margin counts from a key's making, or from when it was taken again to seal under: an old key sealed under again is young")
    func keyAgeForSweeps() throws {
        let vault = try Vault()
        let now = Locked<Int64>(1_800_000_000_000)
        let keys = KeyRing(keyStore: vault.keyStore, masterKey: try MasterKey.load(path: vault.masterKeyPath), now: { now.withLock { $0 } })
        try keys.createKeys(for: "org-a")
        _ = try keys.objectKey(org: "org-a", object: "call/1/caller", creating: true)
        _ = try keys.objectKey(org: "org-a", object: "call/2/caller", creating: true)
        now.withLock { $0 += 2 * 3_600_000 }
        // call 2 is sealed under again (a retried write, an update): another replica may be about to commit under it.
        _ = try keys.objectKey(org: "org-a", object: "call/2/caller", creating: true)
        let hourAgo = now.withLock { $0 } - 3_600_000
        #expect(try keys.objectKeyIDs(createdBefore: hourAgo).map(\.object) == ["call/1/caller"])
        #expect(Set(try keys.objectKeyIDs().map(\.object)) == ["call/1/caller", "call/2/caller"])
    }

    @Test("Blind index: the same number in any format matches; another org's index differs")
    func blindIndex() async throws {
        let vault = try Vault()
        let keys = vault.keys!
        try keys.createKeys(for: "org-a")
        try keys.createKeys(for: "org-b")
        let a1 = try keys.blindIndex(phoneNumber: "0118 230 4651", org: "org-a")
        let a2 = try keys.blindIndex(phoneNumber: "+44 118 230 4651", org: "org-a")
        let b1 = try keys.blindIndex(phoneNumber: "0118 230 4651", org: "org-b")
        #expect(a1 == a2)
        #expect(a1 != b1)
        #expect(a1.count == 32)
    }

    @Test("Master-key rotation keeps data readable; the old key no longer opens the keys")
    func rotation() async throws {
        let vault = try Vault()
        try await vault.addNote("n1", org: "org-a", body: "before rotation")
        let newPath = vault.directory.appendingPathComponent("master-2.key").path
        try MasterKey.generate(path: newPath)
        let newKey = try MasterKey.load(path: newPath)
        do {
            let keys = vault.keys!
            let count = try keys.rotateMasterKey(to: newKey)
            #expect(count == 1)
        }
        // Reopened with the new key, the data reads; with the old key, the keys do not open.
        try vault.open(masterKey: newPath)
        #expect(try await vault.readNote("n1") == "before rotation")
        try vault.open(masterKey: vault.masterKeyPath)
        let error = await #expect(throws: KeyError.self) { _ = try await vault.readNote("n1") }
        #expect(error?.kind == .tampered)
    }

    @Test("Crypto-shredding an org makes its data unreadable; another org's stays readable")
    func shredding() async throws {
        let vault = try Vault()
        try await vault.addNote("a1", org: "org-a", body: "org a's call")
        try await vault.addNote("b1", org: "org-b", body: "org b's call")
        let wrapped = try #require(try vault.keyStore.sync {
            try $0.query("SELECT wrapped_data_key FROM org_keys WHERE org_id = 'org-a'").first?.blob("wrapped_data_key")
        })
        try vault.keys.shred(org: "org-a")
        let error = await #expect(throws: KeyError.self) { _ = try await vault.readNote("a1") }
        #expect(error?.kind == .noKey)
        #expect(try await vault.readNote("b1") == "org b's call")
        // Tombstoned: the organisation never gets keys again, so nothing new is sealed for it.
        let again = #expect(throws: KeyError.self) { try vault.keys.createKeys(for: "org-a") }
        #expect(again?.kind == .noKey)
        // The wrapped key is gone from the key store's files, WAL included (secure_delete, checkpoint).
        let files = [vault.keyStorePath, vault.keyStorePath + "-wal"]
        let bytes = files.compactMap { FileManager.default.contents(atPath: $0) }.reduce(Data(), +)
        #expect(!bytes.isEmpty)
        #expect(bytes.range(of: wrapped) == nil, "the shredded organisation's wrapped key is still in the key store's files")
    }

    @Test("Keys are never created by sealing, opening or indexing: a made-up organisation gets none")
    func noKeysForUnknownOrganisations() throws {
        let vault = try Vault()
        let keys = vault.keys!
        for attempt in 0..<3 {
            let error = #expect(throws: KeyError.self) { _ = try keys.blindIndex("someone@example.com", kind: "email", org: "org-made-up-\(attempt)") }
            #expect(error?.kind == .noKey)
            #expect(throws: KeyError.self) { _ = try keys.seal(Data("x".utf8), org: "org-made-up-\(attempt)", table: "t", column: "c", row: "1") }
        }
        #expect(try !keys.hasKeys(for: "org-made-up-0"))
        #expect(try vault.keyStore.sync { try $0.query("SELECT count(*) AS n FROM org_keys")[0].int("n") } == 0)
    }

    @Test("Crypto-shredding reaches older backups: restored, the org's data stays unreadable, the other org's reads")
    func shreddingReachesBackups() async throws {
        let vault = try Vault()
        try await vault.addNote("a1", org: "org-a", body: "org a's call")
        try await vault.addNote("b1", org: "org-b", body: "org b's call")
        let backup = vault.directory.appendingPathComponent("before-shred.sqlite").path
        try vault.database.backup(to: backup)
        try vault.keys.shred(org: "org-a")
        // Restore the backup taken before the shred, with the service's current key store.
        try vault.open(path: backup)
        let error = await #expect(throws: KeyError.self) { _ = try await vault.readNote("a1") }
        #expect(error?.kind == .noKey)
        #expect(try await vault.readNote("b1") == "org b's call")
        // The backup itself holds no key material at all.
        let tables = try vault.database.sync { try $0.query("SELECT name FROM sqlite_master WHERE type = 'table'") }
        #expect(!tables.contains { $0.text("name") == "org_keys" })
    }

    @Test("Backup, then restore into a new file: identical data")
    func backupRestore() async throws {
        let vault = try Vault()
        for index in 0..<50 { try await vault.addNote("n\(index)", org: index % 2 == 0 ? "org-a" : "org-b", body: "note \(index)") }
        let backup = vault.directory.appendingPathComponent("backup.sqlite").path
        try vault.database.backup(to: backup)
        let restored = vault.directory.appendingPathComponent("restored.sqlite").path
        try FileManager.default.copyItem(atPath: backup, toPath: restored)
        try vault.open(path: restored)
        for index in 0..<50 { #expect(try await vault.readNote("n\(index)") == "note \(index)") }
    }
}

/// (A second instance on one database, and a database of a newer schema, are refused by
/// `CallTraceStorage` itself: CallTraceStorageTests.)
@Suite("Key files refuse bad set-ups")
struct KeyFileRefusalTests {
    @Test("Master key files: wrong size or readable by others are refused")
    func masterKeyFiles() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("calltrace-mk-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let short = directory.appendingPathComponent("short.key").path
        FileManager.default.createFile(atPath: short, contents: Data(count: 31), attributes: [.posixPermissions: 0o600])
        let open = directory.appendingPathComponent("open.key").path
        FileManager.default.createFile(atPath: open, contents: Data(count: 32), attributes: [.posixPermissions: 0o644])
        let shortError = #expect(throws: KeyError.self) { _ = try MasterKey.load(path: short) }
        #expect(shortError?.message.contains("must be exactly 32 bytes, found 31") == true)
        let openError = #expect(throws: KeyError.self) { _ = try MasterKey.load(path: open) }
        #expect(openError?.message.contains("accessible by group or others (mode 644)") == true)
        let long = directory.appendingPathComponent("long.key").path
        FileManager.default.createFile(atPath: long, contents: Data(count: 40), attributes: [.posixPermissions: 0o600])
        let longError = #expect(throws: KeyError.self) { _ = try MasterKey.load(path: long) }
        #expect(longError?.message.contains("must be exactly 32 bytes, found 40") == true)
        // Exactly 32 bytes load, straight into the key's own memory.
        let good = directory.appendingPathComponent("good.key").path
        FileManager.default.createFile(atPath: good, contents: Data((1...32).map { UInt8($0) }), attributes: [.posixPermissions: 0o600])
        #expect(try MasterKey.load(path: good).key.withUnsafeBytes { Array($0) } == (1...32).map { UInt8($0) })
    }

    @Test("Keys live in memory of their own and are wiped before it is freed; a wrapped key unwraps into it")
    func keysAreWiped() throws {
        let key = try SecretKey.random()
        #expect(key.withUnsafeBytes { $0.contains { $0 != 0 } })
        let master = try SecretKey.random()
        let wrapped = try AESGCM.seal(key: key, under: master, associatedData: Data("aad".utf8))
        let unwrapped = try AESGCM.openKey(wrapped, under: master, associatedData: Data("aad".utf8), what: "key")
        #expect(unwrapped.withUnsafeBytes { Array($0) } == key.withUnsafeBytes { Array($0) })
        #expect(throws: KeyError.self) { _ = try AESGCM.openKey(wrapped, under: master, associatedData: Data("other".utf8), what: "key") }
        // What deinit does before it frees the memory.
        key.wipe()
        #expect(key.withUnsafeBytes { $0.allSatisfy { $0 == 0 } })
    }
}
