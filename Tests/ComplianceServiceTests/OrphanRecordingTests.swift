import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Testing

/// Media takes a recording only for a call transcript confirms: started in the organisation the
/// header names (its tracking number's), by a telephony gateway, and to be recorded. Anything
/// else is refused before any audio is read: no row, no file, no key (issues 27.4 and 28.6).
@Suite("Media: recordings only for calls transcript confirms, only from telephony gateways")
struct OrphanRecordingTests {
    static func upload(_ deployment: CallDataDeployment, as who: String = TemporaryPKI.telephony, org: String, call: String) async throws {
        let file = wavFile(seconds: 1)
        _ = try await deployment.recordings(as: who).uploadRecording { writer in
            try await writer.send(.with {
                $0.header = .with { $0.orgID = org; $0.callID = call; $0.format = .wavPcm16; $0.sampleRateHz = 8000; $0.channels = 1
                    $0.sha256 = sha256(file) }
            })
            try await writer.send(.with { $0.chunk = file })
        }
    }

    /// Media's recordings (rows) and the organisations its key store holds keys for.
    static func mediaHolds(_ deployment: CallDataDeployment) async throws -> (recordings: Int, keyedOrgs: Set<String>) {
        let rows = try await deployment.media.instance.database.read { db in try db.query("SELECT id FROM recordings").count }
        let orgs = try deployment.media.instance.keyStore.sync { db in try db.query("SELECT DISTINCT org_id FROM org_keys").compactMap { $0.text("org_id") } }
        return (rows, Set(orgs))
    }

    @Test("Unknown call, another firm's call, a made-up organisation, a caller who objected, the web gateway: each refused with a clear status; nothing stored, no key made")
    func refusedUploads() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let (other, _) = try await deployment.organisation("Jones LLP", tracking: "01184960001")
        _ = try await deployment.calls(as: TemporaryPKI.telephony).startCall(.with {
            $0.callID = "theirs"; $0.trackingNumber = "01184960001"; $0.callerNumber = "07700900555"; $0.direction = .inbound
        })
        _ = other
        let before = try await Self.mediaHolds(deployment)

        let unknown = await #expect(throws: RPCError.self) { try await Self.upload(deployment, org: org, call: "never-started") }
        #expect(unknown?.code == .notFound && unknown?.message.contains("was not started in organisation") == true, "\(String(describing: unknown))")
        #expect(await code { try await Self.upload(deployment, org: org, call: "theirs") } == .notFound, "another firm's call")
        #expect(await code { try await Self.upload(deployment, org: "org_madeup", call: "theirs") } == .notFound, "a made-up organisation")
        #expect(await code { try await Self.upload(deployment, as: CallDataDeployment.web, org: other, call: "theirs") } == .permissionDenied,
                "the web gateway reports no calls")

        // A caller who objected: their call is not recorded, and media takes no audio for it.
        _ = try await deployment.suppressions().addSuppression(.with { $0.orgID = org; $0.phoneNumber = "07700900999"; $0.reason = "objection" },
                                                              options: try bearer(admin))
        let started = try await deployment.calls(as: TemporaryPKI.telephony).startCall(.with {
            $0.callID = "objected"; $0.trackingNumber = "01184960000"; $0.callerNumber = "07700900999"; $0.direction = .inbound
        })
        #expect(!started.record)
        let objected = await #expect(throws: RPCError.self) { try await Self.upload(deployment, org: org, call: "objected") }
        #expect(objected?.code == .failedPrecondition && objected?.message.contains("objected") == true, "\(String(describing: objected))")

        let after = try await Self.mediaHolds(deployment)
        #expect(after.recordings == before.recordings && after.keyedOrgs == before.keyedOrgs && !after.keyedOrgs.contains("org_madeup"),
                "\(before) → \(after)")
        // The call that was started takes its recording, and transcript learns of it.
        _ = try await deployment.calls(as: TemporaryPKI.telephony).startCall(.with {
            $0.callID = "started"; $0.trackingNumber = "01184960000"; $0.callerNumber = "07700900123"; $0.direction = .inbound
        })
        try await Self.upload(deployment, org: org, call: "started")
        #expect(try await Self.mediaHolds(deployment).recordings == before.recordings + 1)
    }
}
