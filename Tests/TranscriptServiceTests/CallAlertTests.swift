import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Testing
@testable import TranscriptDomain

/// E-mail alerts about calls (issue 32), end to end: transcript learns a fact (a missed call, the
/// AI's new enquiry, a week gone by), its job tells identity, identity's development mailbox
/// receives the e-mail for whoever chose it.
@Suite("Transcript: missed calls, new enquiries and Monday's summary reach those who chose them, by e-mail through identity")
struct CallAlertTests {
    typealias Alerts = Calltrace_Identity_V1_AlertService

    func choose(_ kinds: [Calltrace_Identity_V1_AlertKind], _ token: String, org: String, in deployment: TranscriptDeployment) async throws {
        _ = try await deployment.identity.client().unary(Alerts.setAlertPreferences, .with { $0.orgID = org; $0.enabled = kinds },
                                                         options: try bearer(token))
    }

    func alerts(_ deployment: TranscriptDeployment, _ kind: String) throws -> [ServiceSetup.DeliveredAlert] {
        try deployment.identity.setup.deliveredAlerts().filter { $0.alert == kind }
    }

    @Test("A missed or voicemail call is told once, with a link to it and no caller's number; an answered call and the firm's own call back are not")
    func missedCalls() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation()
        _ = try await deployment.user(.member, in: org, admin: admin)  // chooses nothing: told nothing
        try await choose([.missedCall], admin, org: org, in: deployment)
        try await deployment.assign("01184960000", org: org, admin: admin, source: "Yell listing")
        let telephony = try deployment.calls(as: TemporaryPKI.telephony)

        for (call, outcome) in [("call-missed", Calltrace_Transcript_V1_Outcome.missed), ("call-answered", .answered), ("call-voicemail", .voicemail)] {
            try await deployment.start(call, tracking: "01184960000", caller: "07700 900123")
            _ = try await telephony.completeCall(.with { $0.orgID = org; $0.callID = call; $0.outcome = outcome })
            // A gateway's retry of the completion is no second alert.
            _ = try await telephony.completeCall(.with { $0.orgID = org; $0.callID = call; $0.outcome = outcome })
        }
        try await deployment.start("call-back", tracking: "01184960000", caller: "07700 900123", direction: .outbound)
        _ = try await telephony.completeCall(.with { $0.orgID = org; $0.callID = "call-back"; $0.outcome = .missed })

        #expect(try await eventually { try self.alerts(deployment, "missed_call").count == 2 })
        #expect(try await eventually {
            try await deployment.transcript.instance.jobs.list().filter { $0.kind == CallAlert.kind }.isEmpty
        }, "every alert job done")
        let sent = try alerts(deployment, "missed_call")
        #expect(Set(sent.map { String($0.subject.prefix { $0 != ":" }) }) == ["Missed call", "Voicemail left"])
        #expect(sent.allSatisfy { $0.subject.contains("Yell listing") && $0.email.hasPrefix("admin-") })
        #expect(sent.map { $0.body.contains("/calls/call-missed") || $0.body.contains("/calls/call-voicemail") } == [true, true])
        for mail in sent {
            #expect(!mail.subject.contains("7700") && !mail.body.contains("7700") && !mail.body.contains("900123"), "no caller's number")
        }
        #expect(try deployment.identity.setup.deliveredAlerts().count == 2)
    }

    @Test("The AI's new enquiry is told with its summary to those who may read summaries; Monday's summary gives last week by source")
    func newEnquiryAndWeeklySummary() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation()
        let analyst = try await deployment.user(.analyst, in: org, admin: admin)
        try await choose([.newEnquiry, .weeklySummary], admin, org: org, in: deployment)
        try await choose([.weeklySummary], analyst, org: org, in: deployment)
        _ = try await deployment.transcripts().setTranscriptionSettings(.with {
            $0.orgID = org
            $0.settings = .with { $0.enabled = true; $0.engine = "deepgram"; $0.analysisEngine = "anthropic" }
        }, options: try bearer(admin))
        try await deployment.assign("01184960000", org: org, admin: admin, source: "Google Ads")
        try await deployment.assign("01184960001", org: org, admin: admin, source: "Website")
        try await deployment.start("call-1", tracking: "01184960000", caller: "07700 900123")
        try await deployment.start("call-2", tracking: "01184960001", caller: "07700 900456")
        _ = try await deployment.recordings(as: TemporaryPKI.telephony).upload(wavFile(seconds: 5), org: org, call: "call-1")

        #expect(try await eventually { try self.alerts(deployment, "new_enquiry").count == 1 })
        let enquiry = try #require(try alerts(deployment, "new_enquiry").first)
        #expect(enquiry.subject.hasPrefix("New enquiry (Personal injury): Google Ads, "))
        #expect(enquiry.body.contains("injured in a car crash") && enquiry.body.contains("/calls/call-1"))
        #expect(enquiry.email.hasPrefix("admin-"), "the analyst may not read summaries")

        // Next Monday at 07:00 London, last week's summary: both calls, by source.
        let now = deployment.transcript.clock.nowUnixMs
        let week = WeeklySummary.lastWeek(before: now + 7 * 86_400_000)
        #expect(week.start <= now && now < week.end)
        #expect(try await eventually {
            try await deployment.transcript.instance.database.read { db in !(try db.query("SELECT 1 FROM job_schedules WHERE name = 'weekly-summary'").isEmpty) }
        }, "the daily run is scheduled")
        deployment.transcript.clock.advance(by: .milliseconds(week.end + 7 * 3_600_000 + 60_000 - now))
        #expect(try await eventually { try self.alerts(deployment, "weekly_summary").count == 2 })
        let summaries = try alerts(deployment, "weekly_summary")
        #expect(Set(summaries.map { String($0.email.prefix(6)) }) == ["admin-", "analys"])
        for summary in summaries {
            #expect(summary.subject.hasPrefix("Your week in calls: from Mon "))
            #expect(summary.body.contains("2 calls, 0 new enquiries, 0 matters opened"), "staff have not confirmed the AI's enquiry")
            #expect(summary.body.contains("Google Ads: 1 call, 0 new enquiries, 0 matters opened") && summary.body.contains("Website: 1 call,"))
            #expect(!summary.body.contains("7700"))
        }
        // The next morning's run sends no second summary of the same week.
        deployment.transcript.clock.advance(by: .seconds(86_400))
        #expect(try await eventually {
            let next = try await deployment.transcript.instance.database.read { db in
                try db.query("SELECT next_run_at_unix_ms FROM job_schedules WHERE name = 'weekly-summary'").first?.int("next_run_at_unix_ms") ?? 0
            }
            let waiting = try await deployment.transcript.instance.jobs.list().filter { $0.kind.hasPrefix("transcript.weekly") }
            return next > deployment.transcript.clock.nowUnixMs && waiting.isEmpty
        }, "the next morning's run came and went")
        #expect(try alerts(deployment, "weekly_summary").count == 2)
    }
}
