import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import Foundation
import Testing

@Suite("Transcript refusals", .serialized)
struct TranscriptRefusalTests {
    @Test("Every user-facing transcript RPC refuses no token, an expired token, another org's token, too weak a role, an operator without a grant and the wrong certificate")
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
            ("MarkCallOutcome", .member, { _ = try await d.calls(as: $0).markCallOutcome(.with { $0.orgID = org; $0.callID = "call-1"; $0.enquiry = .new }, options: $1) }),
            ("AttributionReport", nil, { _ = try await d.calls(as: $0).attributionReport(.with { $0.orgID = org; $0.fromUnixMs = 1; $0.beforeUnixMs = 2 }, options: $1) }),
            ("GetTranscript", .member, { _ = try await d.transcripts(as: $0).getTranscript(.with { $0.orgID = org; $0.callID = "call-1" }, options: $1) }),
            ("DeleteTranscript", .member, { _ = try await d.transcripts(as: $0).deleteTranscript(.with { $0.orgID = org; $0.callID = "call-1" }, options: $1) }),
            ("SetTranscriptionSettings", .admin, { _ = try await d.transcripts(as: $0).setTranscriptionSettings(.with { $0.orgID = org }, options: $1) }),
            ("GetTranscriptionSettings", .admin, { _ = try await d.transcripts(as: $0).getTranscriptionSettings(.with { $0.orgID = org }, options: $1) }),
            ("AddSuppression", .admin, { _ = try await d.suppressions(as: $0).addSuppression(.with { $0.orgID = org; $0.phoneNumber = "07700900999" }, options: $1) }),
            ("RemoveSuppression", .admin, { _ = try await d.suppressions(as: $0).removeSuppression(.with { $0.orgID = org; $0.phoneNumber = "07700900999" }, options: $1) }),
            ("ListSuppressions", .admin, { _ = try await d.suppressions(as: $0).listSuppressions(.with { $0.orgID = org }, options: $1) }),
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
            for peer in [ops, identityService] { #expect(await code { try await call(peer, try bearer(fresh)) } == .permissionDenied, "\(name) from \(peer)") }
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
        // After all that, the call is still there, unmarked.
        let call = try await deployment.calls().getCall(.with { $0.orgID = org; $0.callID = "call-1" }, options: try bearer(fresh)).call
        #expect(call.enquiry == .unspecified)
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
        #expect(await code { _ = try await calls.completeCall(.with { $0.orgID = org; $0.callID = "nope"; $0.outcome = .answered }) } == .notFound)
        #expect(await code { _ = try await deployment.transcripts().setTranscriptionSettings(.with { $0.orgID = org; $0.settings = .with { $0.engine = "whisper" } }, options: options) } == .invalidArgument)
        #expect(try await deployment.start("c1", tracking: "01184960000", caller: "07700900123").record, "still serving")
    }
}
