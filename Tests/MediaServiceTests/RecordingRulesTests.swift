import CallTraceKeys
import CallTraceProto
import CallTraceServiceHost
import CallTraceStorage
import CallTraceDeploymentSupport
import CallTraceTestSupport
import Foundation
@testable import MediaDomain
import Testing

/// Media's rules over real files in a temporary folder, without sockets.
final class MediaRulesFixture: @unchecked Sendable {
    let stores: TemporaryStores
    var keys: KeyRing { stores.keys }
    let blobs: FileBlobStore
    let rules: RecordingRules
    let clock = TestClock()

    init() throws {
        stores = try TemporaryStores(MediaService.self)
        blobs = try FileBlobStore(folder: stores.directory.appendingPathComponent("recordings").path)
        let jobs = JobQueue(database: stores.database, clock: clock)
        rules = RecordingRules(repository: SQLiteRecordingRepository(database: stores.database), blobs: blobs, keys: stores.keys,
                               outbox: AuditOutbox(database: stores.database, service: "media", jobs: jobs), jobs: jobs, clock: clock)
    }

    func upload(_ file: Data, org: String) async throws -> RecordingRow {
        let header = RecordingUpload(org: org, callID: "call", format: .wavPcm16, sampleRate: 8000, channels: 1, durationMs: 0, sha256: sha256(file))
        var pieces = [file]
        return try await rules.upload(header, by: "gateway:test") { pieces.isEmpty ? nil : pieces.removeFirst() }
    }
}

@Suite("Media rules: the start-up sweep and the chunk layout")
struct RecordingRulesTests {
    @Test("The sweep removes unfinished files, files without a row and keys without a row, and nothing else")
    func sweep() async throws {
        let fixture = try MediaRulesFixture()
        let file = wavFile(samples: 40_000)
        let kept = try await fixture.upload(file, org: "org-a")
        // What a process killed mid-upload or mid-delete leaves behind.
        let unfinished = try fixture.blobs.create("rec_unfinished")
        try unfinished.append(Data(repeating: 1, count: 1000))
        let orphan = try fixture.blobs.create("rec_orphan")
        try orphan.append(Data(repeating: 2, count: 1000))
        try orphan.commit()
        _ = try fixture.keys.createObjectKey(org: "org-a", object: "rec_keyonly")

        let swept = try fixture.rules.sweep()
        #expect(swept.count == 3 && swept.contains { $0.contains("unfinished") } && swept.contains { $0.contains("no recording names it") }, "\(swept)")
        #expect(try fixture.blobs.names() == [kept.id])
        #expect(try fixture.keys.objectKeyIDs().map(\.object) == [kept.id])
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.blobs.folder) == [kept.id])
        var played = Data()
        try await fixture.rules.play(kept.id, org: "org-a", offset: 0, length: 0, by: "user:test") { _, _, data in played += data }
        #expect(played == file)
        #expect(try fixture.rules.sweep().isEmpty)
        _ = unfinished
    }

    @Test("Beside replicas (a cutoff given), the sweep spares the last day's unfinished file, file no row names yet and key no row names yet — another replica's upload in flight — and removes them once a day old")
    func sweepSparesWritesInFlight() async throws {
        let fixture = try MediaRulesFixture()
        let kept = try await fixture.upload(wavFile(samples: 20_000), org: "org-a")
        let unfinished = try fixture.blobs.create("rec_uploading")
        try unfinished.append(Data(repeating: 1, count: 1000))
        let committed = try fixture.blobs.create("rec_rownext")
        try committed.append(Data(repeating: 2, count: 1000))
        try committed.commit()
        _ = try fixture.keys.createObjectKey(org: "org-a", object: "rec_uploading")
        func cutoff() -> Int64 { fixture.clock.nowUnixMs - RecordingRules.sweepGrace.wholeMilliseconds }
        let folder = { Set(try FileManager.default.contentsOfDirectory(atPath: fixture.blobs.folder)) }

        #expect(try fixture.rules.sweep(sparingSince: cutoff()).isEmpty)
        #expect(try folder() == [kept.id, "rec_uploading.partial", "rec_rownext"])
        #expect(Set(try fixture.keys.objectKeyIDs().map(\.object)) == [kept.id, "rec_uploading"])

        fixture.clock.advance(by: .seconds(86_400 + 3_600))
        let swept = try fixture.rules.sweep(sparingSince: cutoff())
        #expect(swept.count == 3, "\(swept)")
        #expect(try folder() == [kept.id])
        #expect(try fixture.keys.objectKeyIDs().map(\.object) == [kept.id])
        _ = unfinished
    }

    @Test("The daily sweep of a running media removes a key no recording names once it is a day old, and spares a younger one")
    func dailySweep() async throws {
        let deployment = try await MediaDeployment()
        defer { Task { await deployment.stop() } }
        let (org, _) = try await deployment.organisation()
        let clock = deployment.media.clock
        let keys = KeyRing(keyStore: deployment.media.instance.keyStore, masterKey: try MasterKey.load(path: deployment.media.setup.masterKey),
                           now: { clock.nowUnixMs })
        try keys.createKeys(for: org)
        // What a crash between a deletion's commit and its key's destruction leaves, while media runs on.
        _ = try keys.createObjectKey(org: org, object: "rec_deleted")
        // The schedule is stored (its first run a day from now) before time moves.
        #expect(await eventually {
            (try? deployment.media.instance.database.sync { db in try db.query("SELECT name FROM job_schedules WHERE name = 'sweep'").count }) == 1
        })
        deployment.media.clock.advance(by: .seconds(23 * 3_600))
        _ = try keys.createObjectKey(org: org, object: "rec_uploading")
        #expect(try deployment.keyedRecordings().contains("rec_deleted"), "not yet due")
        deployment.media.clock.advance(by: .seconds(2 * 3_600))
        #expect(await eventually { deployment.media.log.text.contains("daily sweep removed unfinished recordings") })
        #expect(deployment.media.log.text.contains("key of rec_deleted (no recording names it)"))
        let left = try deployment.keyedRecordings()
        #expect(!left.contains("rec_deleted") && left.contains("rec_uploading"), "\(left)")
    }

    @Test("The same file for the same call again (a gateway's retry) answers the recording already stored, without a second file, key or audit event")
    func retriedUpload() async throws {
        let fixture = try MediaRulesFixture()
        let file = wavFile(samples: 20_000)
        let first = try await fixture.upload(file, org: "org-r")
        let again = try await fixture.upload(file, org: "org-r")
        #expect(again.id == first.id)
        #expect(try fixture.blobs.names() == [first.id])
        #expect(try fixture.keys.objectKeyIDs().map(\.object) == [first.id])
        let stored = try await fixture.stores.database.read { db in
            try db.query("SELECT count(*) AS n FROM audit_outbox WHERE org_id = 'org-r'")[0].int("n")
        }
        #expect(stored == 1, "one recording.stored event")
        let other = try await fixture.upload(wavFile(samples: 20_001), org: "org-r")
        #expect(other.id != first.id, "another file of the call is another recording")
    }

    @Test("Files are chunked exactly: sizes around the chunk boundary play back whole and by any range")
    func chunkBoundaries() async throws {
        let fixture = try MediaRulesFixture()
        let chunk = RecordingRules.chunkBytes
        for size in [45, chunk - 1, chunk, chunk + 1, 2 * chunk, 3 * chunk + 17] {
            var file = wavFile(samples: 0)
            file += Data((0..<(size - min(size, file.count))).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            let row = try await fixture.upload(file, org: "org-b")
            #expect(row.sizeBytes == UInt64(file.count))
            let sealed = try FileManager.default.attributesOfItem(atPath: fixture.blobs.folder + "/" + row.id)[.size] as? Int
            let chunks = (file.count + chunk - 1) / chunk
            #expect(sealed == file.count + chunks * KeyRing.sealedSize(ofChunk: 0))
            for (offset, length) in [(0, 0), (file.count - 1, 1), (max(0, chunk - 3), min(6, file.count - max(0, chunk - 3)))] where offset < file.count {
                var played = Data()
                try await fixture.rules.play(row.id, org: "org-b", offset: UInt64(offset), length: UInt64(length), by: "user:test") { _, _, data in
                    played += data
                }
                let end = length == 0 ? file.count : offset + length
                #expect(played == file.subdata(in: offset..<end), "size \(size), range \(offset)+\(length)")
            }
        }
    }

    @Test("A play that a redaction overtakes reads on from the muted file, never calling the recording damaged")
    func playOvertakenByARedaction() async throws {
        let fixture = try MediaRulesFixture()
        let file = wavFile(samples: 40_000)
        let row = try await fixture.upload(file, org: "org-a")
        var played = Data()
        var redacted = false
        try await fixture.rules.play(row.id, org: "org-a", offset: 0, length: 0, by: "user:test", pieceBytes: 16 << 10) { _, _, data in
            played += data
            if !redacted {
                // After the first piece: 1–2 s muted, and the file this play was reading deleted.
                redacted = true
                _ = try await fixture.rules.redact(row.id, org: "org-a", ranges: [(start: 1000, end: 2000)], reason: "test", by: "user:test")
                #expect(try fixture.blobs.names() != [row.blobID], "the old file is gone")
            }
        }
        var muted = Data()
        try await fixture.rules.play(row.id, org: "org-a", offset: 0, length: 0, by: "user:test") { _, _, data in muted += data }
        #expect(muted != file && muted.count == file.count)
        #expect(played.prefix(16 << 10) == file.prefix(16 << 10), "the first piece, read before the redaction")
        #expect(played.dropFirst(16 << 10) == muted.dropFirst(16 << 10), "the rest from the muted file")
    }
}
