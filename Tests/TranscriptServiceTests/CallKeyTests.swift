import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceStorage
import CallTraceTestSupport
import Foundation
import Testing
@testable import TranscriptDomain

/// P11, issue 27.8: a call's caller data and its transcript are sealed under keys of their own,
/// destroyed when they are deleted, so what a backup of the database holds of them can no
/// longer be read.
@Suite("Transcript: each call's keys, destroyed with it")
struct CallKeyTests {
    /// The sealed cells a backup taken now would hold for `call`.
    static func backup(of call: String, in deployment: TranscriptDeployment) throws -> (caller: Data, transcript: Data) {
        try deployment.transcript.instance.database.sync { db in
            (try #require(try db.query("SELECT caller_number FROM calls WHERE id = ?", call).first?.blob("caller_number")),
             try #require(try db.query("SELECT segments FROM transcripts WHERE call_id = ?", call).first?.blob("segments")))
        }
    }

    static func keyObjects(_ deployment: TranscriptDeployment) throws -> Set<String> {
        Set(try deployment.transcript.instance.keyStore.sync { db in
            try db.query("SELECT object_id FROM object_keys").compactMap { $0.text("object_id") }
        })
    }

    /// The key ring as it stands now (a restore of the database beside today's key store).
    static func ring(_ deployment: TranscriptDeployment) throws -> CallKeys {
        CallKeys(keys: KeyRing(keyStore: deployment.transcript.instance.keyStore, masterKey: try MasterKey.load(path: deployment.transcript.setup.masterKey)))
    }

    @Test("Deleting a call destroys its caller and transcript keys; deleting a transcript destroys only the transcript's; a backup's cells of them no longer open")
    func keysDestroyedWithTheirData() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation()
        let member = try await deployment.user(.member, in: org, admin: admin)
        try await deployment.assign("0118 496 0000", org: org, admin: admin)
        for call in ["call-1", "call-2"] {
            try await deployment.start(call, tracking: "01184960000", caller: "07700900123")
            _ = try await deployment.transcripts(as: TemporaryPKI.telephony).submitTranscript(.with {
                $0.orgID = org; $0.callID = call; $0.segments = [.with { $0.speaker = "caller"; $0.text = "My neighbour's tree fell on my car." }]
            })
        }
        #expect(try Self.keyObjects(deployment).isSuperset(of: ["call/call-1/caller", "call/call-1/transcript", "call/call-2/caller", "call/call-2/transcript"]))
        let before = try Self.backup(of: "call-1", in: deployment)
        let ring = try Self.ring(deployment)
        #expect(String(decoding: try ring.open(before.caller, org: org, call: "call-1", .caller, table: "calls", column: "caller_number"), as: UTF8.self)
                == "+447700900123", "the backup opens while the call lives")

        // Compliance's step of deleting the call everywhere.
        _ = try await deployment.calls(as: TemporaryPKI.identity("service", "compliance")).deleteCall(.with { $0.orgID = org; $0.callID = "call-1" })
        let left = try Self.keyObjects(deployment)
        #expect(!left.contains("call/call-1/caller") && !left.contains("call/call-1/transcript"), "\(left)")
        // Read with the key store as it stands now (a ring of its own: the one above keeps what it
        // read for KeyRing.cacheLifetime, as another replica would).
        let after = try Self.ring(deployment)
        #expect(throws: KeyError.self) { _ = try after.open(before.caller, org: org, call: "call-1", .caller, table: "calls", column: "caller_number") }
        #expect(throws: KeyError.self) { _ = try after.open(before.transcript, org: org, call: "call-1", .transcript, table: "transcripts", column: "segments") }

        // A transcript deleted by the firm: its key goes, the call's caller data stays readable.
        let second = try Self.backup(of: "call-2", in: deployment)
        _ = try await deployment.transcripts().deleteTranscript(.with { $0.orgID = org; $0.callID = "call-2" }, options: try bearer(member))
        #expect(!(try Self.keyObjects(deployment)).contains("call/call-2/transcript"))
        #expect(throws: KeyError.self) {
            _ = try Self.ring(deployment).open(second.transcript, org: org, call: "call-2", .transcript, table: "transcripts", column: "segments")
        }
        let call = try await deployment.calls().getCall(.with { $0.orgID = org; $0.callID = "call-2" }, options: try bearer(admin)).call
        #expect(call.callerNumber == "+447700900123")
    }

    @Test("A key left by a crash between a deletion's commit and the key's destruction is destroyed by the start-up sweep, which says so")
    func startUpSweep() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation()
        try await deployment.assign("0118 496 0000", org: org, admin: admin)
        try await deployment.start("kept", tracking: "01184960000", caller: "07700900123")
        // The key of a call whose row is gone: what a crash at the wrong moment leaves.
        _ = try Self.ring(deployment).keys.objectKey(org: org, object: "call/gone/caller", creating: true)
        // Over an hour old: on PostgreSQL, where a replica may be writing, younger keys are spared.
        deployment.transcript.clock.advance(by: .seconds(2 * 3_600))
        await deployment.transcript.stop()
        let again = try await deployment.transcript.restarted()
        defer { Task { await again.stop() } }
        let left = Set(try again.instance.keyStore.sync { db in try db.query("SELECT object_id FROM object_keys").compactMap { $0.text("object_id") } })
        #expect(!left.contains("call/gone/caller") && left.contains("call/kept/caller"), "\(left)")
        #expect(again.log.text.contains("start-up sweep destroyed the keys of deleted calls"))
    }

    @Test("The daily sweep of a running transcript destroys a key no call names once it is an hour old, and spares a younger one")
    func dailySweep() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation()
        try await deployment.assign("0118 496 0000", org: org, admin: admin)
        try await deployment.start("kept", tracking: "01184960000", caller: "07700900123")
        // Keys made on the service's clock, as another replica's are.
        let clock = deployment.transcript.clock
        let ring = KeyRing(keyStore: deployment.transcript.instance.keyStore, masterKey: try MasterKey.load(path: deployment.transcript.setup.masterKey),
                           now: { clock.nowUnixMs })
        _ = try ring.objectKey(org: org, object: "call/gone/caller", creating: true)
        // The schedule is stored (its first run a day from now) before time moves.
        #expect(await eventually {
            (try? deployment.transcript.instance.database.sync { db in try db.query("SELECT name FROM job_schedules WHERE name = 'key-sweep'").count }) == 1
        })
        deployment.transcript.clock.advance(by: .seconds(23 * 3_600 + 50 * 60))
        // Another replica's call, its key made a moment before its row.
        _ = try ring.objectKey(org: org, object: "call/arriving/caller", creating: true)
        #expect(try Self.keyObjects(deployment).contains("call/gone/caller"), "not yet due")
        deployment.transcript.clock.advance(by: .seconds(20 * 60))
        #expect(await eventually { deployment.transcript.log.text.contains("daily sweep destroyed the keys of deleted calls keys=1") })
        let left = try Self.keyObjects(deployment)
        #expect(!left.contains("call/gone/caller") && left.contains("call/arriving/caller") && left.contains("call/kept/caller"), "\(left)")
    }
}
