import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import Foundation
import Testing

/// Tracking numbers, call records, outcomes, attribution, subject search and suppression, with
/// identity, media and transcript in process over real mutual TLS.
@Suite("Transcript: tracking numbers, calls, attribution, subject search, suppression", .serialized)
struct CallRecordTests {
    @Test("A tracking number resolves the organisation and source; moving it keeps old calls' source; another org cannot take it")
    func trackingNumbers() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation()
        let (other, otherAdmin) = try await deployment.organisation("Jones LLP")
        let clock = deployment.transcript.clock

        let assigned = try await deployment.assign("0118 496 0000", org: org, admin: admin)
        #expect(assigned.number == "+441184960000")
        // The firm's inbound greeting is off until it switches it on: the gateway plays nothing,
        // not even a number's own notice.
        let first = try await deployment.start("call-a", tracking: "+44 118 496 0000", caller: "07700 900123")
        #expect(first.orgID == org && first.record && first.notice.isEmpty && first.reason.isEmpty, "\(first)")
        _ = try await deployment.numbers().assignTrackingNumber(.with {
            $0.orgID = org; $0.number = "01184960009"; $0.source = "Radio"; $0.channel = .other; $0.notice = "Calls on this line are recorded."
        }, options: try bearer(admin))
        #expect(try await deployment.start("call-n", tracking: "01184960009", caller: "07700 900126").notice.isEmpty)
        let notices = Calltrace_Compliance_V1_NoticeServiceClient(try deployment.compliance.client())
        _ = try await notices.setNoticeSettings(.with {
            $0.orgID = org
            $0.settings = .with { $0.firmName = "Smith & Co"; $0.inboundGreeting = true
                $0.overrides = [.with { $0.kind = .callbackGreeting; $0.text = "Hello, it's {firm} calling you back; we record our calls." }] }
        }, options: try bearer(admin))
        let greeted = try await deployment.start("call-g", tracking: "+44 118 496 0000", caller: "07700 900125")
        #expect(greeted.notice == "Thank you for calling Smith & Co. Calls are recorded to help us deal with your enquiry.",
                "transcription is off: the notice does not claim it (\(greeted.notice))")
        _ = try await deployment.transcripts().setTranscriptionSettings(.with {
            $0.orgID = org; $0.settings = .with { $0.enabled = true; $0.engine = "manual"; $0.analysisEngine = "local" }
        }, options: try bearer(admin))
        let transcribed = try await deployment.start("call-t", tracking: "+44 118 496 0000", caller: "07700 900124")
        #expect(transcribed.notice.contains("recorded and transcribed"), "\(transcribed.notice)")
        // A returned call: the firm's own wording for that kind.
        let returned = try await deployment.calls(as: TemporaryPKI.telephony).startCall(.with {
            $0.callID = "call-r"; $0.trackingNumber = "+44 118 496 0000"; $0.callerNumber = "07700 900125"; $0.direction = .outbound; $0.callbackOf = "call-g"
        })
        #expect(returned.record && returned.notice == "Hello, it's Smith & Co calling you back; we record our calls.", "\(returned.notice)")

        clock.advance(by: .seconds(60))
        try await deployment.assign("01184960000", org: org, admin: admin, source: "Yell directory", channel: .directory, campaign: "")
        clock.advance(by: .seconds(60))
        try await deployment.start("call-b", tracking: "01184960000", caller: "07700 900123")
        let a = try await deployment.calls().getCall(.with { $0.orgID = org; $0.callID = "call-a" }, options: try bearer(admin)).call
        let b = try await deployment.calls().getCall(.with { $0.orgID = org; $0.callID = "call-b" }, options: try bearer(admin)).call
        #expect(a.source == "Google Ads – personal injury" && a.channel == .googleAds)
        #expect(b.source == "Yell directory" && b.channel == .directory)
        #expect(a.callerNumber == "+447700900123", "an admin holds transcripts.read: the number in full")

        // History is kept; another organisation cannot take a number in use.
        let history = try await deployment.numbers().listTrackingNumbers(.with { $0.orgID = org; $0.includeHistory = true },
                                                                         options: try bearer(admin)).trackingNumbers
        let moved = history.filter { $0.number == "+441184960000" }
        #expect(moved.count == 2 && moved.filter { $0.effectiveUntilUnixMs == 0 }.count == 1)
        let taken = await code {
            try await deployment.assign("01184960000", org: other, admin: otherAdmin)
        }
        #expect(taken == .alreadyExists)
        // Released, it may move; the old calls stay the first organisation's.
        _ = try await deployment.numbers().releaseTrackingNumber(.with { $0.orgID = org; $0.number = "01184960000" }, options: try bearer(admin))
        clock.advance(by: .seconds(60))
        try await deployment.assign("01184960000", org: other, admin: otherAdmin)
        clock.advance(by: .seconds(60))
        #expect(try await deployment.start("call-c", tracking: "01184960000", caller: "07700 900999").orgID == other)
        #expect(await code { _ = try await deployment.calls().getCall(.with { $0.orgID = other; $0.callID = "call-a" }, options: try bearer(otherAdmin)) }
            == .notFound, "another organisation's call is not found")
        // A number nobody holds: NOT_FOUND, and the gateway does not record.
        #expect(await code { try await deployment.start("call-x", tracking: "0118 496 0999", caller: "07700 900123") } == .notFound)
    }

    @Test("A back-dated assignment cannot route another firm's calls: effective_from in the past, or inside another firm's tenure, is refused")
    func backDatedAssignments() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (firmA, adminA) = try await deployment.organisation()
        let (firmB, adminB) = try await deployment.organisation("Jones LLP")
        let clock = deployment.transcript.clock
        func assign(_ org: String, _ admin: String, from: Int64) async -> StatusCode? {
            await code {
                _ = try await deployment.numbers().assignTrackingNumber(.with {
                    $0.orgID = org; $0.number = "01184960000"; $0.source = "Website"; $0.channel = .organic; $0.effectiveFromUnixMs = from
                }, options: try bearer(admin))
            }
        }
        // Firm B held the number for an hour and released it; a call it received then arrives late.
        let tenureStart = clock.nowUnixMs
        try await deployment.assign("01184960000", org: firmB, admin: adminB)
        clock.advance(by: .seconds(3600))
        _ = try await deployment.numbers().releaseTrackingNumber(.with { $0.orgID = firmB; $0.number = "01184960000" }, options: try bearer(adminB))
        clock.advance(by: .seconds(60))
        #expect(await assign(firmA, adminA, from: tenureStart + 60_000) == .invalidArgument, "back into firm B's tenure")
        #expect(await assign(firmA, adminA, from: clock.nowUnixMs - 1) == .invalidArgument, "a millisecond in the past")
        #expect(await assign(firmA, adminA, from: 0) == .ok, "from now")
        let late = try await deployment.start("call-late", tracking: "01184960000", caller: "07700 900123", at: tenureStart + 120_000)
        #expect(late.orgID == firmB, "the late call is still routed to the firm that held the number then")

        // A tenure that ends in the future (firm B took a number from tomorrow, then released it
        // before it began): firm A's assignment may begin only after it.
        let tomorrow = clock.nowUnixMs + 86_400_000
        #expect(await assign(firmB, adminB, from: tomorrow) == .alreadyExists, "firm A holds it now")
        _ = try await deployment.numbers().releaseTrackingNumber(.with { $0.orgID = firmA; $0.number = "01184960000" }, options: try bearer(adminA))
        #expect(await assign(firmB, adminB, from: tomorrow) == .ok)
        _ = try await deployment.numbers().releaseTrackingNumber(.with { $0.orgID = firmB; $0.number = "01184960000" }, options: try bearer(adminB))
        #expect(await assign(firmA, adminA, from: 0) == .failedPrecondition, "inside firm B's tenure, which ends tomorrow")
        #expect(await assign(firmA, adminA, from: tomorrow + 1) == .ok)
    }

    @Test("Calls complete, outcomes are marked, an analyst sees the caller masked, and StartCall is idempotent")
    func callLifecycle() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation()
        let analyst = try await deployment.user(.analyst, in: org, admin: admin)
        let member = try await deployment.user(.member, in: org, admin: admin)
        try await deployment.assign("0118 496 0000", org: org, admin: admin)
        let started = deployment.transcript.clock.nowUnixMs
        try await deployment.start("call-1", tracking: "01184960000", caller: "+44 (0)7700 900123", at: started)
        #expect(try await deployment.start("call-1", tracking: "01184960000", caller: "07700900123", at: started).record, "a retried start answers the same")
        #expect(await code { try await deployment.start("call-1", tracking: "01184960000", caller: "07700900999") } == .alreadyExists)

        _ = try await deployment.calls(as: TemporaryPKI.telephony).completeCall(.with {
            $0.orgID = org; $0.callID = "call-1"; $0.answeredAtUnixMs = started + 3000; $0.endedAtUnixMs = started + 95000
            $0.durationMs = 92000; $0.outcome = .answered; $0.recordingID = "rec_123"
        })
        let marked = try await deployment.calls().markCallOutcome(.with {
            $0.orgID = org; $0.callID = "call-1"; $0.enquiry = .new; $0.matterOpened = true; $0.matterReference = "PI-2026-0042"
            $0.practiceArea = .personalInjury
        }, options: try bearer(member)).call
        #expect(marked.outcome == .answered && marked.matterOpened && marked.matterReference == "PI-2026-0042" && marked.recordingID == "rec_123")

        let seenByAnalyst = try await deployment.calls().getCall(.with { $0.orgID = org; $0.callID = "call-1" }, options: try bearer(analyst)).call
        #expect(seenByAnalyst.callerNumber.isEmpty && seenByAnalyst.matterReference.isEmpty)
        #expect(seenByAnalyst.callerNumberMasked == "+44 7700 ••••23")
        #expect(await code {
            _ = try await deployment.calls().markCallOutcome(.with { $0.orgID = org; $0.callID = "call-1"; $0.enquiry = .notNew }, options: try bearer(analyst))
        } == .permissionDenied, "analysts read; they do not mark")
        let listed = try await deployment.calls().listCalls(.with { $0.orgID = org }, options: try bearer(analyst)).calls
        #expect(listed.map(\.callID) == ["call-1"])

        // The caller's number and the matter reference are never in the database or the log in clear.
        let written = try deployment.everythingTranscriptWrote()
        #expect(!written.contains("7700900123") && !written.contains("7700 900123") && !written.contains("PI-2026-0042"))
    }

    @Test("Listing narrows by direction, outcome and unmarked enquiries in the database, so each page is full")
    func listingFilters() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation()
        try await deployment.assign("0118 496 0001", org: org, admin: admin, source: "Google Ads", channel: .googleAds, campaign: "")
        let t0 = deployment.transcript.clock.nowUnixMs
        let plan: [(String, Calltrace_Transcript_V1_Outcome)] = [("m1", .missed), ("a1", .answered), ("v1", .voicemail), ("m2", .missed),
                                                                  ("a2", .answered), ("x1", .abandoned), ("a3", .answered)]
        for (index, (id, outcome)) in plan.enumerated() {
            try await deployment.start(id, tracking: "01184960001", caller: "0770090000\(index)", at: t0 + Int64(index) * 1000)
            _ = try await deployment.calls(as: TemporaryPKI.telephony).completeCall(.with { $0.orgID = org; $0.callID = id; $0.outcome = outcome })
        }
        try await deployment.start("live", tracking: "01184960001", caller: "07700900099", at: t0 + 9000)  // still going
        _ = try await deployment.calls().markCallOutcome(.with { $0.orgID = org; $0.callID = "a1"; $0.enquiry = .new }, options: try bearer(admin))
        func ids(_ adjust: (inout Calltrace_Transcript_V1_ListCallsRequest) -> Void) async throws -> [String] {
            var ids: [String] = []
            var token = ""
            repeat {  // pages of two: a filter in the database fills each page
                var request = Calltrace_Transcript_V1_ListCallsRequest.with { $0.orgID = org; $0.pageSize = 2; $0.pageToken = token }
                adjust(&request)
                let page = try await deployment.calls().listCalls(request, options: try bearer(admin))
                #expect(page.calls.count == 2 || page.nextPageToken.isEmpty)
                ids += page.calls.map(\.callID)
                token = page.nextPageToken
            } while !token.isEmpty
            return ids
        }
        #expect(try await ids { $0.outcomes = [.missed, .voicemail, .abandoned] } == ["x1", "m2", "v1", "m1"])
        #expect(try await ids { $0.unmarkedOnly = true } == ["a3", "x1", "a2", "m2", "v1", "m1"])
        #expect(try await ids { $0.direction = .outbound }.isEmpty)
        #expect(try await ids { $0.direction = .inbound }.count == 8)
        #expect(await code {
            _ = try await deployment.calls().listCalls(.with { $0.orgID = org; $0.outcomes = [.init(rawValue: 42)!] }, options: try bearer(admin))
        } == .invalidArgument)
    }

    @Test("The attribution report counts per source and credits matters by first and last touch")
    func attribution() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation()
        try await deployment.assign("0118 496 0001", org: org, admin: admin, source: "Google Ads", channel: .googleAds, campaign: "PI")
        try await deployment.assign("0118 496 0002", org: org, admin: admin, source: "Yell", channel: .directory, campaign: "")
        let t0 = deployment.transcript.clock.nowUnixMs
        // Caller A: Google first, then Yell, where the matter opens. Caller B: Google, missed. Caller C: Yell twice, no matter.
        let plan: [(String, String, String, Int64, Calltrace_Transcript_V1_Outcome)] = [
            ("a1", "01184960001", "07700900001", t0 + 1000, .answered), ("a2", "01184960002", "07700900001", t0 + 2000, .answered),
            ("b1", "01184960001", "07700900002", t0 + 3000, .missed), ("c1", "01184960002", "07700900003", t0 + 4000, .answered),
            ("c2", "01184960002", "07700900003", t0 + 5000, .voicemail),
        ]
        for (id, tracking, caller, time, outcome) in plan {
            try await deployment.start(id, tracking: tracking, caller: caller, at: time)
            _ = try await deployment.calls(as: TemporaryPKI.telephony).completeCall(.with { $0.orgID = org; $0.callID = id; $0.outcome = outcome })
        }
        for id in ["a1", "c1"] {
            _ = try await deployment.calls().markCallOutcome(.with { $0.orgID = org; $0.callID = id; $0.enquiry = .new }, options: try bearer(admin))
        }
        _ = try await deployment.calls().markCallOutcome(.with { $0.orgID = org; $0.callID = "a2"; $0.enquiry = .notNew; $0.matterOpened = true },
                                                         options: try bearer(admin))
        let analyst = try await deployment.user(.analyst, in: org, admin: admin)
        let report = try await deployment.calls().attributionReport(.with { $0.orgID = org; $0.fromUnixMs = t0; $0.beforeUnixMs = t0 + 10000 },
                                                                    options: try bearer(analyst))
        let google = try #require(report.rows.first { $0.key == "Google Ads" })
        let yell = try #require(report.rows.first { $0.key == "Yell" })
        #expect((google.calls, google.uniqueCallers, google.answered, google.missed, google.newEnquiries, google.mattersOpened) == (2, 2, 1, 1, 1, 0))
        #expect((yell.calls, yell.uniqueCallers, yell.answered, yell.missed, yell.newEnquiries, yell.mattersOpened) == (3, 2, 2, 0, 1, 1))
        #expect(google.firstTouchMatters == 1 && google.lastTouchMatters == 0)
        #expect(yell.firstTouchMatters == 0 && yell.lastTouchMatters == 1)
        #expect(yell.conversionRate == 0.5)
        #expect(report.total.calls == 5 && report.total.uniqueCallers == 3 && report.total.mattersOpened == 1)
        let byChannel = try await deployment.calls().attributionReport(.with {
            $0.orgID = org; $0.fromUnixMs = t0; $0.beforeUnixMs = t0 + 10000; $0.groupBy = .channel
        }, options: try bearer(analyst))
        #expect(Set(byChannel.rows.map(\.key)) == ["google-ads", "directory"])
        #expect(byChannel.total.key == "total" && report.total.key == "total", "the total row is the total, not a channel called unspecified")
        // Analysts get reports and metadata, never transcripts.
        #expect(await code {
            _ = try await deployment.transcripts().getTranscript(.with { $0.orgID = org; $0.callID = "a1" }, options: try bearer(analyst))
        } == .permissionDenied)
    }

    @Test("Compliance finds a caller's calls in any UK format; a suppressed caller is not recorded; deletion and purge")
    func subjectSearchAndSuppression() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation()
        try await deployment.assign("0118 496 0000", org: org, admin: admin)
        try await deployment.start("call-1", tracking: "01184960000", caller: "07700 900123")
        try await deployment.start("call-2", tracking: "01184960000", caller: "+447700900123")
        try await deployment.start("call-3", tracking: "01184960000", caller: "07700 900456")
        let compliance = try deployment.calls(as: TemporaryPKI.identity("service", "compliance"))
        for format in ["07700 900123", "+44 7700 900123", "0044 7700 900 123", "(07700) 900-123"] {
            let found = try await compliance.findCallsByCaller(.with { $0.orgID = org; $0.phoneNumber = format }).calls
            #expect(Set(found.map(\.callID)) == ["call-1", "call-2"], "\(format)")
        }
        #expect(await code { _ = try await compliance.findCallsByCaller(.with { $0.orgID = org; $0.phoneNumber = "not a number" }) } == .invalidArgument)
        #expect(await code { _ = try await deployment.calls().findCallsByCaller(.with { $0.orgID = org; $0.phoneNumber = "07700900123" }) }
            == .permissionDenied, "gateways do not search callers")

        // An objection: the caller is no longer recorded.
        _ = try await deployment.suppressions().addSuppression(.with { $0.orgID = org; $0.phoneNumber = "07700 900123"; $0.reason = "objection" },
                                                                options: try bearer(admin))
        let suppressed = try await deployment.start("call-4", tracking: "01184960000", caller: "07700900123")
        #expect(!suppressed.record && suppressed.notice.isEmpty)
        #expect(try await deployment.start("call-5", tracking: "01184960000", caller: "07700900456").record)
        let listed = try await deployment.suppressions().listSuppressions(.with { $0.orgID = org }, options: try bearer(admin)).suppressions
        #expect(listed.map(\.numberMasked) == ["+44 7700 ••••23"] && listed.first?.reason == "objection")

        // Deletion (compliance's step of deleting a call everywhere): at once, and gone for compliance too.
        _ = try await compliance.deleteCall(.with { $0.orgID = org; $0.callID = "call-1" })
        let after = try await compliance.findCallsByCaller(.with { $0.orgID = org; $0.phoneNumber = "07700900123" }).calls
        #expect(Set(after.map(\.callID)) == ["call-2", "call-4"])
        let purge = try await compliance.purgeCalls(.with { $0.orgID = org; $0.startedBeforeUnixMs = deployment.transcript.clock.nowUnixMs + 1; $0.maxCount = 2 })
        #expect(purge.purged == 2 && purge.more)
        let rest = try await compliance.purgeOrganisation(.with { $0.orgID = org })
        #expect(rest.callsPurged == 2 && rest.trackingNumbersPurged == 1 && rest.suppressionsPurged == 1)
        #expect(await code { try await deployment.start("call-6", tracking: "01184960000", caller: "07700900456") } == .notFound)
    }
}
