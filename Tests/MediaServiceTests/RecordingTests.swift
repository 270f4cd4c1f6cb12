import CallTraceProto
import CallTraceRPC
import CallTraceDeploymentSupport
import CallTraceTestSupport
import Foundation
import Testing

@Suite("P4/P10: recordings — sealed upload, metadata, playback by range, instant deletion")
struct RecordingTests {
    @Test("Upload → get → list → play → range read → delete, each step audited; the file on disk is sealed")
    func lifecycle() async throws {
        let deployment = try await MediaDeployment()
        let (org, admin) = try await deployment.organisation()
        let file = wavFile(samples: 100_000)  // 200 KB: four sealed chunks
        let stored = try await deployment.upload(file, org: org, call: "gw-call-42")
        #expect(stored.orgID == org && stored.callID == "gw-call-42" && stored.sizeBytes == UInt64(file.count))
        #expect(stored.sha256 == sha256(file))
        #expect(stored.format == .wavPcm16)

        let asAdmin = try bearer(admin)
        let got = try await deployment.gateway.getRecording(.with { $0.orgID = org; $0.recordingID = stored.recordingID }, options: asAdmin)
        #expect(got.recording == stored)
        let listed = try await deployment.gateway.listRecordings(.with { $0.orgID = org; $0.callID = "gw-call-42" }, options: asAdmin)
        #expect(listed.recordings.map(\.recordingID) == [stored.recordingID])

        #expect(try await deployment.gateway.play(stored.recordingID, org: org, options: asAdmin) == file)
        // A range across a chunk boundary (chunks are 64 KiB).
        let range = try await deployment.gateway.play(stored.recordingID, org: org, offset: 65_000, length: 3_000,
                                                      reason: "complaint review", options: asAdmin)
        #expect(range == file.subdata(in: 65_000..<68_000))
        // A reason with a control character (a terminal escape, a tab) is refused like the other services' text.
        for reason in ["review \u{1b}[2J", "a\tb", "one\ntwo"] {
            #expect(await code { _ = try await deployment.gateway.play(stored.recordingID, org: org, reason: reason, options: asAdmin) } == .invalidArgument)
        }
        // offset + length past 2^64 (an HTTP Range header passed through): out of range, and media serves on.
        for (offset, length) in [(UInt64(1), UInt64.max), (UInt64(file.count - 1), UInt64.max - UInt64(file.count) + 2), (0, UInt64(file.count) + 1)] {
            #expect(await code { _ = try await deployment.gateway.play(stored.recordingID, org: org, offset: offset, length: length, options: asAdmin) }
                    == .outOfRange)
        }

        // At rest: no run of the audio appears in the sealed file.
        let onDisk = try Data(contentsOf: URL(fileURLWithPath: deployment.blobFolder + "/" + stored.recordingID))
        #expect(onDisk.range(of: file.subdata(in: 1_000..<1_064)) == nil)

        _ = try await deployment.gateway.deleteRecording(.with { $0.orgID = org; $0.recordingID = stored.recordingID }, options: asAdmin)
        #expect(await code { _ = try await deployment.gateway.getRecording(.with { $0.orgID = org; $0.recordingID = stored.recordingID }, options: asAdmin) }
                == .notFound)
        #expect(await code { _ = try await deployment.gateway.play(stored.recordingID, org: org, options: asAdmin) } == .notFound)
        #expect(await code { _ = try await deployment.gateway.deleteRecording(.with { $0.orgID = org; $0.recordingID = stored.recordingID }, options: asAdmin) }
                == .notFound)
        #expect(!FileManager.default.fileExists(atPath: deployment.blobFolder + "/" + stored.recordingID))
        #expect(try !deployment.keyedRecordings().contains(stored.recordingID))

        let events = try deployment.auditEvents()
        #expect(events.map(\.action) == ["recording.stored", "recording.played", "recording.played", "recording.deleted"])
        #expect(events[1].resource == "recording:\(stored.recordingID)" && events[1].detail == "bytes=0-\(file.count - 1)")
        #expect(events[2].detail == "bytes=65000-67999; reason: complaint review")
        await deployment.stop()
    }

    @Test("Listing pages newest first and filters by call and time")
    func listing() async throws {
        let deployment = try await MediaDeployment()
        let (org, admin) = try await deployment.organisation()
        var ids: [String] = []
        for index in 0..<5 {
            ids.append(try await deployment.upload(wavFile(samples: 100 + index), org: org, call: "call-\(index % 2)").recordingID)
            deployment.media.clock.advance(by: .seconds(60))
        }
        var pages: [[String]] = []
        var token = ""
        repeat {
            let page = try await deployment.gateway.listRecordings(.with { $0.orgID = org; $0.pageSize = 2; $0.pageToken = token },
                                                                   options: try bearer(admin))
            pages.append(page.recordings.map(\.recordingID))
            token = page.nextPageToken
        } while !token.isEmpty
        #expect(pages == [[ids[4], ids[3]], [ids[2], ids[1]], [ids[0]]])
        let calls = try await deployment.gateway.listRecordings(.with { $0.orgID = org; $0.callID = "call-1" }, options: try bearer(admin))
        #expect(calls.recordings.map(\.recordingID) == [ids[3], ids[1]])
        await deployment.stop()
    }

    @Test("An upload that is wrong or interrupted stores nothing and says why",
          arguments: ["checksum", "WAV header contradicts", "not a WAV file", "no header", "interrupted", "empty", "a second fmt chunk"])
    func refusedUploads(_ case: String) async throws {
        let deployment = try await MediaDeployment()
        let (org, _) = try await deployment.organisation()
        let file = wavFile(samples: 50_000)
        let thrown = await #expect(throws: (any Error).self) {
            switch `case` {
            case "checksum":
                _ = try await deployment.upload(file, org: org, declaredSHA: sha256(file + Data([1])))
            case "WAV header contradicts":
                _ = try await deployment.upload(file, org: org, format: .wavMulaw)
            case "not a WAV file":
                _ = try await deployment.upload(Data(repeating: 0x55, count: 10_000), org: org)
            case "no header":
                _ = try await deployment.telephony.uploadRecording { try await $0.send(.with { $0.chunk = file }) }
            case "empty":
                _ = try await deployment.upload(Data(), org: org)
            case "a second fmt chunk":
                // The first fmt chunk matches the header; a second one (rate 2^32-1, 65535-byte
                // blocks) follows it: redaction used to read the last one and trap.
                var hostile = file.prefix(36)
                hostile.append(contentsOf: "fmt ".utf8)
                hostile.append(contentsOf: [16, 0, 0, 0, 1, 0, 1, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 16, 0])
                hostile.append(file.dropFirst(36))
                _ = try await deployment.upload(hostile, org: org)
            default:
                struct GatewayHungUp: Error {}
                try await deployment.calls.start("c", in: org)
                _ = try await deployment.telephony.uploadRecording { writer in
                    try await writer.send(.with { $0.header = .with { $0.orgID = org; $0.callID = "c"; $0.format = .wavPcm16
                        $0.sampleRateHz = 8000; $0.channels = 1; $0.sha256 = sha256(file) } })
                    try await writer.send(.with { $0.chunk = file.prefix(70_000) })
                    throw GatewayHungUp()
                }
            }
        }
        if `case` != "interrupted" {  // there the gateway's own error ends the call
            let error = thrown as? RPCError
            #expect(error?.code == .invalidArgument, "\(error?.message ?? "\(String(describing: thrown))")")
            #expect(error?.message.isEmpty == false)
        }
        // Nothing stored: no row, no file (finished or not), no key.
        #expect(await eventually {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: deployment.blobFolder)) ?? []
            return files.isEmpty && ((try? deployment.keyedRecordings().isEmpty) ?? false)
        })
        let listed = try await deployment.media.instance.database.read { try $0.query("SELECT count(*) AS n FROM recordings")[0].int("n") }
        #expect(listed == 0)
        await deployment.stop()
    }

    @Test("Tampering is detected: a flipped byte, a truncated file, files swapped between recordings — never altered audio")
    func tampering() async throws {
        let deployment = try await MediaDeployment()
        let (org, admin) = try await deployment.organisation()
        let file = wavFile(samples: 80_000)
        var ids: [String] = []
        for call in ["a", "b", "c", "d"] { ids.append(try await deployment.upload(file, org: org, call: call).recordingID) }
        let path = { (id: String) in deployment.blobFolder + "/" + id }
        var flipped = try Data(contentsOf: URL(fileURLWithPath: path(ids[0])))
        flipped[70_000] ^= 0x01
        try flipped.write(to: URL(fileURLWithPath: path(ids[0])))
        let whole = try Data(contentsOf: URL(fileURLWithPath: path(ids[1])))
        try whole.prefix(whole.count - 100).write(to: URL(fileURLWithPath: path(ids[1])))
        try FileManager.default.removeItem(atPath: path(ids[2]))
        try FileManager.default.copyItem(atPath: path(ids[3]), toPath: path(ids[2]))
        for id in ids.prefix(3) {
            let error = await #expect(throws: RPCError.self) { _ = try await deployment.gateway.play(id, org: org, options: try bearer(admin)) }
            #expect(error?.code == .dataLoss, "\(id): \(error?.message ?? "")")
        }
        #expect(try await deployment.gateway.play(ids[3], org: org, options: try bearer(admin)) == file)
        await deployment.stop()
    }

    @Test("P8: an operator plays a recording only under a support grant naming recordings.play; it does not reach delete")
    func operatorUnderGrant() async throws {
        let deployment = try await MediaDeployment()
        let (org, admin) = try await deployment.organisation()
        let file = wavFile(samples: 5_000)
        let id = try await deployment.upload(file, org: org).recordingID
        let operatorMedia = try deployment.media(as: TemporaryPKI.identity("operator", "ops"))
        #expect(await code { _ = try await operatorMedia.play(id, org: org, options: CallOptions()) } == .permissionDenied)
        _ = try await deployment.identityGateway.unary(Calltrace_Identity_V1_IdentityService.createSupportGrant, .with {
            $0.orgID = org; $0.permissions = [.recordingsPlay]; $0.durationSeconds = 3600; $0.reason = "ticket SUP-7"
        }, options: try bearer(admin))
        #expect(try await operatorMedia.play(id, org: org, reason: "SUP-7 audio fault", options: CallOptions()) == file)
        #expect(await code { _ = try await operatorMedia.deleteRecording(.with { $0.orgID = org; $0.recordingID = id }) } == .permissionDenied)
        // Media's own trail records the playback with the operator's reason.
        #expect(try deployment.auditEvents().contains { $0.action == "recording.played" && $0.detail.contains("SUP-7 audio fault") })
        await deployment.stop()
    }

    @Test("Every user-facing media RPC refuses no token, another org's token, too weak a role, an operator without a grant and the wrong certificate", .overTLS)
    func refusals() async throws {
        let deployment = try await MediaDeployment()
        let (org, admin) = try await deployment.organisation()
        let (otherOrg, otherAdmin) = try await deployment.organisation("Other LLP")
        _ = otherOrg
        let analyst = try await deployment.user(.analyst, in: org, admin: admin)
        let id = try await deployment.upload(wavFile(samples: 1_000), org: org).recordingID
        let operatorMedia = try deployment.media(as: TemporaryPKI.identity("operator", "ops"))
        let identityService = try deployment.media(as: TemporaryPKI.identity("service", "identity"))
        let transcript = try deployment.media(as: TemporaryPKI.identity("service", "transcript"))

        typealias Attempt = (Media, CallOptions) async throws -> Void
        let calls: [(String, Attempt)] = [
            ("get", { _ = try await $0.getRecording(.with { $0.orgID = org; $0.recordingID = id }, options: $1) }),
            ("list", { _ = try await $0.listRecordings(.with { $0.orgID = org }, options: $1) }),
            ("play", { _ = try await $0.play(id, org: org, options: $1) }),
            ("delete", { _ = try await $0.deleteRecording(.with { $0.orgID = org; $0.recordingID = id }, options: $1) }),
            ("redact", { _ = try await $0.redactRecording(.with { $0.orgID = org; $0.recordingID = id; $0.ranges = [.with { $0.startMs = 0; $0.endMs = 1 }] },
                                                      options: $1) }),
        ]
        for (name, call) in calls {
            #expect(await code { try await call(deployment.gateway, CallOptions()) } == .unauthenticated, "\(name) without a token")
            #expect(await code { try await call(deployment.gateway, try bearer("not-a-session")) } == .unauthenticated, "\(name) with a made-up token")
            #expect(await code { try await call(deployment.gateway, try bearer(otherAdmin)) } == .permissionDenied, "\(name) with another org's token")
            #expect(await code { try await call(operatorMedia, CallOptions()) } == .permissionDenied, "\(name) by an operator without a grant")
            #expect(await code { try await call(identityService, try bearer(admin)) } == .permissionDenied, "\(name) from the wrong service")
        }
        // An analyst reads metadata, never audio, and deletes nothing.
        #expect(await code { try await calls[0].1(deployment.gateway, try bearer(analyst)) } == .ok)
        #expect(await code { try await calls[2].1(deployment.gateway, try bearer(analyst)) } == .permissionDenied)
        #expect(await code { try await calls[3].1(deployment.gateway, try bearer(analyst)) } == .permissionDenied)
        // Uploads come from gateways only; transcript may play (to transcribe) as itself.
        #expect(await code { _ = try await operatorMedia.upload(wavFile(samples: 10), org: org) } == .permissionDenied)
        #expect(try await transcript.play(id, org: org, options: CallOptions()).count == wavFile(samples: 1_000).count)
        #expect(try deployment.auditEvents().contains { $0.action == "recording.played" })
        // The organisation's link policy: settings.manage, refused like the rest.
        typealias LinkAttempt = (ShareLinks, CallOptions) async throws -> Void
        let policyCalls: [(String, LinkAttempt)] = [
            ("get link policy", { _ = try await $0.getShareLinkPolicy(.with { $0.orgID = org }, options: $1) }),
            ("set link policy", { _ = try await $0.setShareLinkPolicy(.with { $0.orgID = org; $0.maxTtlSeconds = 86_400 }, options: $1) }),
        ]
        let web = ShareLinks(try deployment.media.client()), operatorLinks = ShareLinks(try deployment.media.client(identity: TemporaryPKI.identity("operator", "ops")))
        let serviceLinks = ShareLinks(try deployment.media.client(identity: TemporaryPKI.identity("service", "identity")))
        for (name, call) in policyCalls {
            #expect(await code { try await call(web, CallOptions()) } == .unauthenticated, "\(name) without a token")
            #expect(await code { try await call(web, try bearer("not-a-session")) } == .unauthenticated, "\(name) with a made-up token")
            #expect(await code { try await call(web, try bearer(otherAdmin)) } == .permissionDenied, "\(name) with another org's token")
            #expect(await code { try await call(web, try bearer(analyst)) } == .permissionDenied, "\(name) by an analyst")
            #expect(await code { try await call(operatorLinks, CallOptions()) } == .permissionDenied, "\(name) by an operator without a grant")
            #expect(await code { try await call(serviceLinks, try bearer(admin)) } == .permissionDenied, "\(name) from the wrong service")
            #expect(await code { try await call(web, try bearer(admin)) } == .ok, "\(name) by the admin")
        }
        // Deleting a call's recordings is compliance's alone: a gateway (even with the admin's
        // token), an operator and another service are refused.
        let deleteCall: Attempt = { _ = try await $0.deleteCallRecordings(.with { $0.orgID = org; $0.callID = "call-1" }, options: $1) }
        #expect(await code { try await deleteCall(deployment.gateway, try bearer(admin)) } == .permissionDenied)
        #expect(await code { try await deleteCall(operatorMedia, CallOptions()) } == .permissionDenied)
        #expect(await code { try await deleteCall(transcript, CallOptions()) } == .permissionDenied)
        // The recording is still there after all that.
        #expect(await code { try await calls[0].1(deployment.gateway, try bearer(admin)) } == .ok)
        await deployment.stop()
    }
}
