import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceStorage
import CallTraceDeploymentSupport
import CallTraceTestSupport
import Foundation
import Testing

/// Media as a process, with a recording stored before its master key changes: whatever an
/// operator does with the key files, media either plays the recording or refuses to start,
/// naming the files — it never serves an empty key store (every recording NOT_FOUND) or a key
/// store its master key does not open.
@Suite("Media: master-key rotation keeps recordings playable; a wrong master key or key store never serves", .overTLS)
struct MasterKeyRotationTests {
    /// Starts media with `flags`, its peers `ledger`'s, and waits until it serves.
    static func serve(_ setup: ServiceSetup, _ flags: [String], _ ledger: CallLedger) async throws -> RunningProcess {
        let process = try setup.start(flags, environment: ledger.peerEnvironment)
        try #require(await process.waitForOutput(containing: "serving"), "\(process.stderr)")
        return process
    }

    static func stop(_ process: RunningProcess) async {
        process.signal(SIGTERM)
        #expect(await process.waitForExit()?.status == 0)
    }

    /// Starts media with `flags` expecting a refusal; its one line.
    static func refusal(_ setup: ServiceSetup, _ flags: [String]) async throws -> String {
        let exit = try #require(await setup.start(flags).waitForExit())
        #expect(exit.status == 1, "\(exit.stderr)")
        #expect(exit.stderr.split(separator: "\n").count == 1 && exit.stderr.hasPrefix("calltrace-media: cannot start: "), "\(exit.stderr)")
        #expect(!exit.stderr.contains("serving"))
        return exit.stderr
    }

    /// Stores a recording of a new organisation's call, as a telephony gateway does: the
    /// recording and its organisation.
    static func store(_ file: Data, in setup: ServiceSetup, _ ledger: CallLedger) async throws -> (recording: String, org: String) {
        let org = try await ledger.organisation().org
        try await ledger.start("call-before-rotation", in: org)
        let client = try setup.client(identity: CallLedger.telephony)
        defer { client.close() }
        return (try await Media(client).upload(file, org: org, call: "call-before-rotation").recordingID, org)
    }

    /// Plays it back as compliance does (as itself, no user needed).
    static func play(_ recording: String, org: String, in setup: ServiceSetup) async throws -> Data {
        let client = try setup.client(identity: TemporaryPKI.identity("service", "compliance"))
        defer { client.close() }
        return try await Media(client).play(recording, org: org, options: CallOptions())
    }

    static func replacing(_ flags: [String], _ flag: String, with value: String) -> [String] {
        var flags = flags
        flags[flags.firstIndex(of: flag)! + 1] = value
        return flags
    }

    @Test("The old README's rotation (a new key in another folder, master_key pointed at it) refuses to start instead of serving an empty key store; so does the old key; key_store set to the store plays the recording")
    func rotationToAnotherFolder() async throws {
        let setup = try ServiceSetup(service: "media")
        let ledger = try await CallLedger(pki: setup.pki, mediaPort: setup.port)
        let file = wavFile(samples: 100_000)
        var process = try await Self.serve(setup, setup.flags, ledger)
        let (recording, org) = try await Self.store(file, in: setup, ledger)
        await Self.stop(process)

        // `calltrace keys init media-new.master-key` in the operator's working folder, then rotate.
        let workingFolder = setup.pki.directory.appendingPathComponent("operator")
        try FileManager.default.createDirectory(at: workingFolder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let newKey = workingFolder.appendingPathComponent("media-new.master-key").path
        try MasterKey.generate(path: newKey)
        let rotated = try #require(await RunningProcess("calltrace-media", ["rotate-master-key"] + setup.flags + ["--new-key", newKey]).waitForExit())
        #expect(rotated.status == 0, "\(rotated.stderr)")

        // "point master_key at media-new.master-key": the key store is looked for in its folder.
        let moved = Self.replacing(setup.flags, "--master-key", with: newKey)
        let missing = try await Self.refusal(setup, moved)
        #expect(missing.contains("key store \(workingFolder.path)/media.keys.sqlite does not exist (key_store is not set"), "\(missing)")
        #expect(missing.contains("but database \(setup.database) was served with key store ks_"), "\(missing)")
        #expect(missing.contains("set key_store to \(setup.keyStore) (where it was last opened)"), "\(missing)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: workingFolder.path) == ["media-new.master-key"], "a key store was created beside the new key")

        // The old key no longer opens the rotated store.
        let old = try await Self.refusal(setup, setup.flags)
        #expect(old.contains("master key \(setup.masterKey) does not open key store \(setup.keyStore)"), "\(old)")

        // What the refusal says to do: key_store set to the store the database was served with.
        process = try await Self.serve(setup, moved + ["--key-store", setup.keyStore], ledger)
        #expect(try await Self.play(recording, org: org, in: setup) == file)
        await Self.stop(process)
        await ledger.stop()
    }

    @Test("Key files from before check values and key store ids: the right master key serves and plays (and the files get both); another refuses")
    func filesFromBeforeChecks() async throws {
        let setup = try ServiceSetup(service: "media")
        let ledger = try await CallLedger(pki: setup.pki, mediaPort: setup.port)
        let file = wavFile(samples: 50_000)
        var process = try await Self.serve(setup, setup.flags, ledger)
        let (recording, org) = try await Self.store(file, in: setup, ledger)
        await Self.stop(process)
        // As an older build left them: no check value in the key store, no key store id in the database.
        do {
            let keyStore = try Database(path: setup.keyStore)
            try keyStore.sync { _ = try $0.execute("DELETE FROM key_store") }
            keyStore.close()
            let database = try Database(path: setup.database)
            try database.sync { _ = try $0.execute("DROP TABLE key_store_binding") }
            database.close()
        }

        let other = (setup.masterKey as NSString).deletingLastPathComponent + "/media.other.master-key"
        try MasterKey.generate(path: other)
        let line = try await Self.refusal(setup, Self.replacing(setup.flags, "--master-key", with: other))
        #expect(line.contains("master key \(other) does not open key store \(setup.keyStore)"), "\(line)")

        process = try await Self.serve(setup, setup.flags, ledger)
        #expect(try await Self.play(recording, org: org, in: setup) == file)
        await Self.stop(process)
        let stored = try Database.query(readOnly: setup.keyStore, "SELECT key_store_id FROM key_store").compactMap { $0.text("key_store_id") }
        let bound = try Database.query(readOnly: setup.database, "SELECT key_store_id FROM key_store_binding").compactMap { $0.text("key_store_id") }
        #expect(stored.count == 1 && stored == bound, "\(stored) \(bound)")
        await ledger.stop()
    }
}
