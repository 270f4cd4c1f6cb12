import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import Foundation
import Testing

@Suite("Transcript refusals", .serialized)
struct TranscriptRefusalTests {
    @Test("Every user-facing transcript RPC (routing and the block list too) refuses no token, an expired token, another org's token, too weak a role, an operator without a grant and the wrong certificate", .overTLS)
    func refusalTable() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, expiring) = try await deployment.organisation()
        // An expired token: issued, never used here (so no allow is cached), then outlived.
        deployment.identity.clock.advance(by: .seconds(12 * 3600 - 60))
        let (_, otherAdmin) = try await deployment.organisation("Jones LLP")
        let fresh = try await deployment.login(adminOf: org)
        let analyst = try await deployment.user(.analyst, in: org, admin: fresh)
        deployment.identity.clock.advance(by: .seconds(120))
        try await deployment.assign("0118 496 0000", org: org, admin: fresh)
        try await deployment.start("call-1", tracking: "01184960000", caller: "07700900123")

        typealias Attempt = @Sendable (String, CallOptions) async throws -> Void  // (certificate identity, options)
        let d = deployment
        let calls: [(String, Calltrace_Identity_V1_Role?, Attempt)] = [
            ("AssignTrackingNumber", .admin, { _ = try await d.numbers(as: $0).assignTrackingNumber(.with { $0.orgID = org; $0.number = "01184960001"; $0.source = "x"; $0.channel = .other }, options: $1) }),
            ("ReleaseTrackingNumber", .admin, { _ = try await d.numbers(as: $0).releaseTrackingNumber(.with { $0.orgID = org; $0.number = "01184960000" }, options: $1) }),
            ("ListTrackingNumbers", nil, { _ = try await d.numbers(as: $0).listTrackingNumbers(.with { $0.orgID = org }, options: $1) }),
            ("GetCall", nil, { _ = try await d.calls(as: $0).getCall(.with { $0.orgID = org; $0.callID = "call-1" }, options: $1) }),
            ("ListCalls", nil, { _ = try await d.calls(as: $0).listCalls(.with { $0.orgID = org }, options: $1) }),
            ("ListCallEvents", nil, { _ = try await d.calls(as: $0).listCallEvents(.with { $0.orgID = org }, options: $1) }),
            ("MarkCallOutcome", .member, { _ = try await d.calls(as: $0).markCallOutcome(.with { $0.orgID = org; $0.callID = "call-1"; $0.enquiry = .new }, options: $1) }),
            ("AttributionReport", nil, { _ = try await d.calls(as: $0).attributionReport(.with { $0.orgID = org; $0.fromUnixMs = 1; $0.beforeUnixMs = 2 }, options: $1) }),
            ("GetTranscript", .member, { _ = try await d.transcripts(as: $0).getTranscript(.with { $0.orgID = org; $0.callID = "call-1" }, options: $1) }),
            ("DeleteTranscript", .member, { _ = try await d.transcripts(as: $0).deleteTranscript(.with { $0.orgID = org; $0.callID = "call-1" }, options: $1) }),
            ("SetTranscriptionSettings", .admin, { _ = try await d.transcripts(as: $0).setTranscriptionSettings(.with { $0.orgID = org }, options: $1) }),
            ("GetTranscriptionSettings", .admin, { _ = try await d.transcripts(as: $0).getTranscriptionSettings(.with { $0.orgID = org }, options: $1) }),
            ("AddSuppression", .admin, { _ = try await d.suppressions(as: $0).addSuppression(.with { $0.orgID = org; $0.phoneNumber = "07700900999" }, options: $1) }),
            ("RemoveSuppression", .admin, { _ = try await d.suppressions(as: $0).removeSuppression(.with { $0.orgID = org; $0.phoneNumber = "07700900999" }, options: $1) }),
            ("ListSuppressions", .admin, { _ = try await d.suppressions(as: $0).listSuppressions(.with { $0.orgID = org }, options: $1) }),
            ("SetRouting", .admin, { _ = try await d.numbers(as: $0).setRouting(.with { $0.orgID = org; $0.number = "01184960000"; $0.routing.ringSeconds = 30 }, options: $1) }),
            ("BlockCaller", .admin, { _ = try await d.blockList(as: $0).blockCaller(.with { $0.orgID = org; $0.phoneNumber = "07700900999" }, options: $1) }),
            ("UnblockCaller", .admin, { _ = try await d.blockList(as: $0).unblockCaller(.with { $0.orgID = org; $0.phoneNumber = "07700900999" }, options: $1) }),
            ("ListBlockedCallers", .admin, { _ = try await d.blockList(as: $0).listBlockedCallers(.with { $0.orgID = org }, options: $1) }),
            ("CreateWebsite", .admin, { _ = try await d.websites(as: $0).createWebsite(.with { $0.orgID = org; $0.settings.name = "Site" }, options: $1) }),
            ("UpdateWebsite", .admin, { _ = try await d.websites(as: $0).updateWebsite(.with { $0.orgID = org; $0.websiteID = "web_1" }, options: $1) }),
            ("ListWebsites", nil, { _ = try await d.websites(as: $0).listWebsites(.with { $0.orgID = org }, options: $1) }),
            ("DeleteWebsite", .admin, { _ = try await d.websites(as: $0).deleteWebsite(.with { $0.orgID = org; $0.websiteID = "web_1" }, options: $1) }),
            ("SetPoolNumbers", .admin, { _ = try await d.websites(as: $0).setPoolNumbers(.with { $0.orgID = org; $0.websiteID = "web_1" }, options: $1) }),
            ("GetPoolStatus", nil, { _ = try await d.websites(as: $0).getPoolStatus(.with { $0.orgID = org; $0.websiteID = "web_1" }, options: $1) }),
            ("ExportConversions", .admin, { _ = try await d.websites(as: $0).exportConversions(.with { $0.orgID = org; $0.fromUnixMs = 1; $0.beforeUnixMs = 2 }, options: $1) }),
        ]
        let web = TemporaryPKI.identity("gateway", "web")
        let ops = TemporaryPKI.identity("operator", "ops")
        let identityService = TemporaryPKI.identity("service", "identity")
        for (name, role, call) in calls {
            #expect(await code { try await call(web, CallOptions()) } == .unauthenticated, "\(name): no token")
            #expect(await code { try await call(web, try bearer(expiring)) } == .unauthenticated, "\(name): expired token")
            #expect(await code { try await call(web, try bearer(otherAdmin)) } == .permissionDenied, "\(name): another org's token")
            #expect(await code { try await call(ops, CallOptions()) } == .permissionDenied, "\(name): an operator without a grant")
            #expect(await code { try await call(identityService, try bearer(fresh)) } == .permissionDenied, "\(name): the wrong service certificate")
            if role != nil {
                #expect(await code { try await call(web, try bearer(analyst)) } == .permissionDenied, "\(name): an analyst")
            }
        }
        // Gateway-only and service-only RPCs refuse every other peer.
        let gatewayOnly: [(String, Attempt)] = [
            ("StartCall", { _ = try await d.calls(as: $0).startCall(.with { $0.callID = "c9"; $0.trackingNumber = "01184960000"; $0.callerNumber = "07700900123"; $0.direction = .inbound }, options: $1) }),
            ("CompleteCall", { _ = try await d.calls(as: $0).completeCall(.with { $0.orgID = org; $0.callID = "call-1"; $0.outcome = .answered }, options: $1) }),
        ]
        for (name, call) in gatewayOnly {
            // The web gateway acts only for users: it reports no calls, with or without a token.
            for peer in [web, ops, identityService] { #expect(await code { try await call(peer, try bearer(fresh)) } == .permissionDenied, "\(name) from \(peer)") }
            #expect(await code { try await call(web, CallOptions()) } == .permissionDenied, "\(name) from the web gateway as itself")
        }
        let complianceOnly: [(String, Attempt)] = [
            ("FindCallsByCaller", { _ = try await d.calls(as: $0).findCallsByCaller(.with { $0.orgID = org; $0.phoneNumber = "07700900123" }, options: $1) }),
            ("PurgeCalls", { _ = try await d.calls(as: $0).purgeCalls(.with { $0.orgID = org; $0.startedBeforeUnixMs = 1 }, options: $1) }),
            ("PurgeOrganisation", { _ = try await d.calls(as: $0).purgeOrganisation(.with { $0.orgID = org }, options: $1) }),
            ("PurgeTranscripts", { _ = try await d.calls(as: $0).purgeTranscripts(.with { $0.orgID = org; $0.startedBeforeUnixMs = 1 }, options: $1) }),
            ("RecordMatter", { _ = try await d.calls(as: $0).recordMatter(.with { $0.orgID = org; $0.callID = "call-1"; $0.matterReference = "M-1" }, options: $1) }),
            ("ExportCall", { _ = try await d.calls(as: $0).exportCall(.with { $0.orgID = org; $0.callID = "call-1" }, options: $1) }),
            // Users delete a call everywhere through compliance; here alone it would strand its recordings.
            ("DeleteCall", { _ = try await d.calls(as: $0).deleteCall(.with { $0.orgID = org; $0.callID = "call-1" }, options: $1) }),
            ("RecordingStored", { _ = try await d.transcripts(as: $0).recordingStored(.with { $0.orgID = org; $0.callID = "call-1"; $0.recordingID = "rec_1" }, options: $1) }),
        ]
        for (name, call) in complianceOnly {
            for peer in [web, ops, identityService] { #expect(await code { try await call(peer, try bearer(fresh)) } == .permissionDenied, "\(name) from \(peer)") }
        }
        // Media alone asks whether a call takes a recording.
        for peer in [web, TemporaryPKI.telephony, ops, identityService, TemporaryPKI.identity("service", "compliance")] {
            #expect(await code {
                _ = try await d.calls(as: peer).confirmRecordingCall(.with { $0.orgID = org; $0.callID = "call-1" }, options: try bearer(fresh))
            } == .permissionDenied, "ConfirmRecordingCall from \(peer)")
        }
        #expect(await code {
            _ = try await d.calls(as: TemporaryPKI.identity("service", "media")).confirmRecordingCall(.with { $0.orgID = org; $0.callID = "call-1" })
        } == .ok, "media is answered")
        // After all that, the call is still there, unmarked; no routing was set and nobody blocked.
        let call = try await deployment.calls().getCall(.with { $0.orgID = org; $0.callID = "call-1" }, options: try bearer(fresh)).call
        #expect(call.enquiry == .unspecified)
        #expect(try await deployment.rows("tracking_number_routing", org: org) == 0)
        #expect(try await deployment.rows("blocked_callers", org: org) == 0)
    }

    @Test("Calls are reported by the telephony gateway only; a gateway gives a call's first transcript, never replaces one; a user replaces it only with records.delete, audited; no key is made for a made-up organisation")
    func ingestLimits() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation()
        let member = try await deployment.user(.member, in: org, admin: admin)
        let analyst = try await deployment.user(.analyst, in: org, admin: admin)
        try await deployment.assign("0118 496 0000", org: org, admin: admin)
        try await deployment.start("call-1", tracking: "01184960000", caller: "07700900123")
        let segments: [Calltrace_Transcript_V1_Segment] = [.with { $0.speaker = "caller"; $0.text = "I need advice about my lease." }]
        func submit(as who: String, options: CallOptions = CallOptions(), org: String = org, call: String = "call-1",
                    segments: [Calltrace_Transcript_V1_Segment] = segments) async throws {
            _ = try await deployment.transcripts(as: who).submitTranscript(.with { $0.orgID = org; $0.callID = call; $0.segments = segments },
                                                                            options: options)
        }
        let web = TemporaryPKI.identity("gateway", "web")
        let keyedOrgs = { try deployment.transcript.instance.keyStore.sync { db in try db.query("SELECT org_id FROM org_keys").compactMap { $0.text("org_id") } } }
        let keyedBefore = try keyedOrgs()

        // The web gateway acts only for users: as itself it gives no transcript.
        #expect(await code { try await submit(as: web) } == .permissionDenied)
        // A made-up organisation, an unknown call: NOT_FOUND, and no key is made for either.
        #expect(await code { try await submit(as: TemporaryPKI.telephony, org: "org_madeup") } == .notFound)
        #expect(await code { try await submit(as: TemporaryPKI.telephony, call: "never-started") } == .notFound)
        #expect(try keyedOrgs() == keyedBefore, "no key for an organisation no call names")

        try await submit(as: TemporaryPKI.telephony)
        // The very transcript again — a gateway asking again because it lost the answer — is
        // answered and changes nothing (the trail below still holds one event of it); another
        // one from a gateway is refused.
        try await submit(as: TemporaryPKI.telephony)
        let again = await #expect(throws: RPCError.self) {
            try await submit(as: TemporaryPKI.telephony, segments: [.with { $0.speaker = "caller"; $0.text = "Something else entirely." }])
        }
        #expect(again?.code == .alreadyExists && again?.message.contains("records.delete") == true, "\(String(describing: again))")
        // A user may give the first transcript with transcripts.read; replacing needs records.delete.
        #expect(await code { try await submit(as: web, options: try bearer(analyst)) } == .permissionDenied)
        try await submit(as: web, options: try bearer(member))
        // The audit trail, as compliance holds it once transcript has forwarded both events.
        var events: [Calltrace_Compliance_V1_AuditEvent] = []
        #expect(try await eventually {
            events = try await Calltrace_Compliance_V1_AuditServiceClient(try deployment.compliance.client())
                .listAuditEvents(.with { $0.orgID = org }, options: try bearer(admin)).events.map(\.event)
                .filter { $0.resource == "call:call-1" && $0.action.hasPrefix("transcript.") }
            return events.count == 2
        })
        #expect(events.map(\.action) == ["transcript.replaced", "transcript.stored"], "newest first: \(events.map(\.action))")
        #expect(events.first?.actor.hasPrefix("user:") == true && events.first?.detail.contains("replaced engine=manual") == true)
    }

    @Test("With compliance unreachable, StartCall answers UNAVAILABLE and stores nothing: a call is never recorded unconfirmed, nor marked unrecorded for good")
    func complianceDown() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation()
        try await deployment.assign("0118 496 0000", org: org, admin: admin)
        await deployment.compliance.stop()
        let refused = await #expect(throws: RPCError.self) { try await deployment.start("during-outage", tracking: "01184960000", caller: "07700900123") }
        #expect(refused?.code == .unavailable && refused?.message.contains("retry StartCall") == true, "\(String(describing: refused))")
        #expect(refused?.message.contains("7700") == false)
        let stored = try await deployment.transcript.instance.database.read { db in try db.query("SELECT id FROM calls WHERE id = 'during-outage'").count }
        #expect(stored == 0)
    }

    @Test("Bad input gets a clear error: malformed numbers, ids, enums and periods; the service keeps serving")
    func badInput() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation()
        let numbers = try deployment.numbers(), calls = try deployment.calls(), options = try bearer(admin)
        #expect(await code { _ = try await numbers.assignTrackingNumber(.with { $0.orgID = org; $0.number = "call me"; $0.source = "x"; $0.channel = .other }, options: options) } == .invalidArgument)
        #expect(await code { _ = try await numbers.assignTrackingNumber(.with { $0.orgID = org; $0.number = "01184960000"; $0.source = ""; $0.channel = .other }, options: options) } == .invalidArgument)
        #expect(await code { _ = try await numbers.assignTrackingNumber(.with { $0.orgID = org; $0.number = "01184960000"; $0.source = "x" }, options: options) } == .invalidArgument)
        #expect(await code { _ = try await numbers.assignTrackingNumber(.with { $0.orgID = org; $0.number = "01184960000"; $0.source = "a\nb"; $0.channel = .other }, options: options) } == .invalidArgument)
        try await deployment.assign("01184960000", org: org, admin: admin)
        #expect(await code { try await deployment.start("bad id!", tracking: "01184960000", caller: "07700900123") } == .invalidArgument)
        #expect(await code { try await deployment.start("c1", tracking: "01184960000", caller: "not a number") } == .invalidArgument)
        let error = await #expect(throws: RPCError.self) { try await deployment.start("c1", tracking: "01184960000", caller: "07700 9OO123") }
        #expect(error?.message.contains("7700") == false, "the number is never repeated in an error")
        #expect(await code { _ = try await calls.attributionReport(.with { $0.orgID = org; $0.fromUnixMs = 10; $0.beforeUnixMs = 5 }, options: options) } == .invalidArgument)
        #expect(await code { _ = try await calls.listCalls(.with { $0.orgID = org; $0.pageToken = "garbage" }, options: options) } == .invalidArgument)
        #expect(await code { _ = try await deployment.calls(as: TemporaryPKI.telephony).completeCall(.with { $0.orgID = org; $0.callID = "nope"; $0.outcome = .answered }) } == .notFound)
        #expect(await code { _ = try await deployment.transcripts().setTranscriptionSettings(.with { $0.orgID = org; $0.settings = .with { $0.engine = "whisper" } }, options: options) } == .invalidArgument)
        #expect(try await deployment.start("c1", tracking: "01184960000", caller: "07700900123").record, "still serving")
    }
}
