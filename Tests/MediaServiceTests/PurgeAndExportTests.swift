import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceDeploymentSupport
import CallTraceTestSupport
import Foundation
import Testing

@Suite("P9/P11/P14: retention purge, offboarding purge and export — for the compliance service only")
struct PurgeAndExportTests {
    @Test("Retention purges only what is older than the cutoff, in batches, idempotently; export streams the original; others are refused")
    func retentionAndExport() async throws {
        let deployment = try await MediaDeployment()
        let (org, admin) = try await deployment.organisation()
        let compliance = try deployment.media(as: TemporaryPKI.identity("service", "compliance"))
        let file = wavFile(samples: 2_000)
        var old: [String] = []
        for index in 0..<3 { old.append(try await deployment.upload(file, org: org, call: "old-\(index)").recordingID) }
        deployment.media.clock.advance(by: .seconds(3600))
        let cutoff = deployment.media.clock.nowUnixMs
        var recent: [String] = []
        for index in 0..<2 { recent.append(try await deployment.upload(file, org: org, call: "new-\(index)").recordingID) }

        let exported = try await compliance.exportRecording(.with { $0.orgID = org; $0.recordingID = old[0] }) { stream in
            var metadata: Calltrace_Media_V1_Recording?
            var data = Data()
            for try await message in stream {
                if message.hasRecording { metadata = message.recording }
                data += message.data
            }
            return (metadata, data)
        }
        #expect(exported.0?.callID == "old-0" && exported.1 == file)

        func purge(_ max: UInt32) async throws -> Calltrace_Media_V1_PurgeRecordingsResponse {
            try await compliance.purgeRecordings(.with { $0.orgID = org; $0.createdBeforeUnixMs = cutoff; $0.maxCount = max })
        }
        let first = try await purge(2), second = try await purge(2), third = try await purge(2)
        #expect((first.purged, first.more) == (2, true))
        #expect((second.purged, second.more) == (1, false))
        #expect(first.purgedBytes == 2 * UInt64(file.count))
        #expect((third.purged, third.more) == (0, false))
        let left = try await deployment.gateway.listRecordings(.with { $0.orgID = org }, options: try bearer(admin))
        #expect(Set(left.recordings.map(\.recordingID)) == Set(recent))
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: deployment.blobFolder)) == Set(recent))
        #expect(Set(try deployment.keyedRecordings()) == Set(recent))
        #expect(try deployment.auditEvents().filter { $0.action == "recordings.purged" }.map(\.detail)
                == ["count=2; created_before=\(cutoff)", "count=1; created_before=\(cutoff)"])
        #expect(try deployment.auditEvents().contains { $0.action == "recording.exported" })

        // Only compliance: not a user through a gateway, not another service.
        let transcript = try deployment.media(as: TemporaryPKI.identity("service", "transcript"))
        for client in [deployment.gateway, transcript] {
            #expect(await code { _ = try await client.purgeRecordings(.with { $0.orgID = org; $0.createdBeforeUnixMs = cutoff + 10_000_000 },
                                                                         options: try bearer(admin)) } == .permissionDenied)
            #expect(await code { _ = try await client.purgeOrganisation(.with { $0.orgID = org }, options: try bearer(admin)) } == .permissionDenied)
            #expect(await code {
                _ = try await client.exportRecording(.with { $0.orgID = org; $0.recordingID = recent[0] }, options: try bearer(admin)) { stream in
                    for try await _ in stream {}
                }
            } == .permissionDenied)
        }
        await deployment.stop()
    }

    @Test("Offboarding destroys every recording, link and key of the organisation, which then takes no recordings; another organisation is untouched")
    func offboarding() async throws {
        let deployment = try await MediaDeployment()
        let (org, admin) = try await deployment.organisation()
        let (otherOrg, otherAdmin) = try await deployment.organisation("Other LLP")
        let compliance = try deployment.media(as: TemporaryPKI.identity("service", "compliance"))
        let file = wavFile(samples: 3_000)
        // Two recordings of the call (the same file twice would be one: a retry).
        let leaving = [try await deployment.upload(file, org: org).recordingID, try await deployment.upload(wavFile(samples: 3_001), org: org).recordingID]
        let staying = try await deployment.upload(file, org: otherOrg).recordingID
        _ = try await ShareLinks(try deployment.media.client()).createShareLink(.with {
            $0.orgID = org; $0.recordingID = leaving[0]; $0.ttlSeconds = 600
        }, options: try bearer(admin))

        let purged = try await compliance.purgeOrganisation(.with { $0.orgID = org })
        #expect((purged.recordingsPurged, purged.shareLinksPurged) == (2, 1))
        let again = try await compliance.purgeOrganisation(.with { $0.orgID = org })
        #expect((again.recordingsPurged, again.shareLinksPurged) == (0, 0))
        #expect(try FileManager.default.contentsOfDirectory(atPath: deployment.blobFolder) == [staying])
        #expect(try deployment.keyedRecordings() == [staying])
        let refused = await #expect(throws: RPCError.self) { _ = try await deployment.upload(file, org: org) }
        #expect(refused?.code == .failedPrecondition)
        #expect(try await deployment.gateway.play(staying, org: otherOrg, options: try bearer(otherAdmin)) == file)
        // In the trail's one spelling, the one transcript's purge uses too: a firm's filter finds both.
        #expect(try deployment.auditEvents().filter { $0.action == "organisation.purged" }.map { [$0.resource, $0.detail] }
                == [["organisation:\(org)", "recordings=2; share_links=1"], ["organisation:\(org)", "recordings=0; share_links=0"]])
        #expect(try !deployment.auditEvents().contains { $0.action.contains("organization") || $0.resource.contains("organization") })
        await deployment.stop()
    }
}
