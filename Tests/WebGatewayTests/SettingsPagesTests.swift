import CallTraceDeploymentSupport
import CallTraceProto
import CallTraceTestSupport
import Foundation
import Testing
@testable import WebGateway

/// Settings pages: each for the permission its service requires, a member refused, changes
/// saved through the service, forms without their token refused.
@Suite(.serialized) struct SettingsPagesTests {
    static let pages = ["/settings/security", "/settings/retention", "/settings/transcription", "/settings/agreement", "/settings/sub-processors",
                        "/settings/notices", "/settings/support", "/settings/offboarding"]

    @Test func anAdminSeesAndChangesTheSettingsAMemberDoesNot() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let dpo = try await d.signedIn(.admin, org: org, admin: admin)
        let member = try await d.signedIn(.member, org: org, admin: admin)
        defer { dpo.close(); member.close() }

        let calls = try await dpo.get("/calls")
        #expect(calls.text.contains("href=\"/settings/users\">Settings"))
        for path in Self.pages + ["/settings/users"] {
            let page = try await dpo.get(path)
            #expect(page.status == 200, "\(path)")
            #expect(page.text.contains("aria-label=\"Settings\"") && page.text.contains("href=\"\(path)\" aria-current=\"page\""), "\(path): the sub-navigation")
        }
        #expect(!(try await member.get("/calls")).text.contains(">Settings<"), "no settings in a member's navigation")
        for path in Self.pages.filter({ $0 != "/settings/sub-processors" }) + ["/settings/users", "/settings"] {
            #expect(try await member.get(path).status == 403, "\(path)")
        }
        let memberPage = try await member.get("/calls")
        #expect(try await member.post("/settings/retention", form: [("csrf", try #require(memberPage.csrf)), ("recordings", "1"),
                                                                    ("transcripts", "1"), ("callRecords", "1")]).status == 403)

        // Retention: saved, shown, a run's receipt.
        let retention = try await dpo.get("/settings/retention")
        #expect(try await dpo.post("/settings/retention", form: [("recordings", "6"), ("transcripts", "6"), ("callRecords", "12")]).status == 403)
        #expect(try await dpo.post("/settings/retention", form: [("csrf", try #require(retention.csrf)), ("recordings", "6"),
                                                                 ("transcripts", "6"), ("callRecords", "300")]).status == 400)
        #expect(try await dpo.post("/settings/retention", form: [("csrf", try #require(retention.csrf)), ("recordings", "6"),
                                                                 ("transcripts", "6"), ("callRecords", "12")]).status == 303)
        let saved = try await dpo.get("/settings/retention?done=saved")
        #expect(saved.text.contains("id=\"callRecords\" name=\"callRecords\" type=\"number\" min=\"0\" max=\"240\" value=\"12\""))
        #expect(try await dpo.post("/settings/retention/run", form: [("csrf", try #require(retention.csrf))]).status == 303)
        #expect(try await eventually { try await dpo.get("/settings/retention").text.contains("Asked for by") })

        // Security: only the field edited changes.
        let security = try await dpo.get("/settings/security")
        let max = try #require(security.text.firstMatch(of: /name="max" type="number" min="1" max="8760" value="([0-9]+)"/).map { String($0.1) })
        #expect(try await dpo.post("/settings/security", form: [("csrf", try #require(security.csrf)), ("ranges", ""), ("idle", "45"),
                                                                ("max", max)]).status == 303)
        let changed = try await dpo.get("/settings/security")
        #expect(changed.text.contains("value=\"45\"") && changed.text.contains("value=\"\(max)\""))

        // Transcription off, then on.
        let transcription = try await dpo.get("/settings/transcription")
        #expect(try await dpo.post("/settings/transcription", form: [("csrf", try #require(transcription.csrf)), ("transcription", "off")]).status == 303)
        #expect((try await dpo.get("/settings/transcription")).text.contains("Transcription is <strong>off</strong>"))

        // The agreement: read, downloaded as text; the firm accepted it when it was set up.
        let agreement = try await dpo.get("/settings/agreement")
        #expect(agreement.text.contains("Accepted") && agreement.text.contains("dpa-2026-12"))
        let text = try await dpo.get("/settings/agreement/download")
        #expect(text.status == 200 && text.header("Content-Disposition")?.hasPrefix("attachment;") == true)
        #expect(text.header("Content-Type")?.hasPrefix("text/plain") == true && text.body.count > 1000)
        let register = try await dpo.get("/settings/sub-processors")
        #expect(register.text.contains("Deepgram") && register.text.contains("Anthropic"))

        // Support access: given, listed, revoked.
        let support = try await dpo.get("/settings/support")
        #expect(support.text.contains("CallTrace's operators cannot see your calls"))
        #expect(try await dpo.post("/settings/support", form: [("csrf", try #require(support.csrf)), ("days", "30"), ("reason", "ticket 1"),
                                                               ("allow-audit", "yes")]).status == 400)
        #expect(try await dpo.post("/settings/support", form: [("csrf", try #require(support.csrf)), ("days", "2"), ("reason", "ticket 4821"),
                                                               ("allow-audit", "yes")]).status == 303)
        let granted = try await dpo.get("/settings/support")
        #expect(granted.text.contains("ticket 4821") && granted.text.contains("Read the audit trail") && granted.text.contains("Active"))
        let revoke = try #require(granted.text.firstMatch(of: /action="(\/settings\/support\/[^"\/]+\/revoke)"/).map { String($0.1) })
        #expect(try await dpo.post(revoke, form: [("csrf", try #require(granted.csrf))]).status == 303)
        #expect((try await dpo.get("/settings/support")).text.contains("Revoked"))
        await d.stop()
    }

    @Test func noticesInTheFirmsWordsAndLeavingConfirmedByItsName() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        _ = try await d.recordedCall("call-leaving", org: org, admin: admin, file: wavFile(samples: 8000))
        let dpo = try await d.signedIn(.admin, org: org, admin: admin)
        defer { dpo.close() }
        let notices = try await dpo.get("/settings/notices")
        #expect(notices.status == 200 && notices.text.contains("Greeting on returned calls"))
        #expect(try await dpo.post("/settings/notices", form: [("csrf", try #require(notices.csrf)), ("firmName", "Smith & Co Solicitors"),
                                                               ("firmPhone", "0118 496 0000"), ("callback", "{firm} records this call.")]).status == 303)
        let saved = try await dpo.get("/settings/notices")
        #expect(saved.text.contains("Smith &amp; Co Solicitors records this call.") && saved.text.contains("your own wording"))

        let leaving = try await dpo.get("/settings/offboarding")
        #expect(leaving.text.contains("Start leaving"))
        #expect(try await dpo.post("/settings/offboarding/start", form: [("csrf", try #require(leaving.csrf)), ("confirm", "yes")]).status == 303)
        var started = try await dpo.get("/settings/offboarding")
        #expect(try await eventually {
            started = try await dpo.get("/settings/offboarding")
            return started.text.contains("To confirm, type")
        })
        #expect(started.text.contains("To confirm, type <strong>Smith &amp; Co Solicitors</strong>"))
        let bundle = try #require(started.text.firstMatch(of: /href="(\/bundles\/[^"]+)"/).map { String($0.1) })
        try await SubjectRequestPagesTests.downloadMatches(dpo, bundle)
        let id = try #require(started.text.firstMatch(of: /name="offboarding" value="([^"]+)"/).map { String($0.1) })
        let wrong = try await dpo.post("/settings/offboarding/confirm", form: [("csrf", try #require(started.csrf)), ("offboarding", id), ("typed", "Smith")])
        #expect(wrong.status == 400)
        #expect(try await dpo.get("/calls/call-leaving").status == 200, "nothing deleted")
        let confirmed = try await dpo.post("/settings/offboarding/confirm", form: [("csrf", try #require(started.csrf)), ("offboarding", id),
                                                                                  ("typed", "Smith & Co Solicitors")])
        #expect(confirmed.status == 200 && confirmed.text.contains("being deleted"))
        #expect(try await dpo.get("/calls/call-leaving").status != 200, "the firm is gone")
        await d.stop()
    }
}
