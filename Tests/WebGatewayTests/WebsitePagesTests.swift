import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceProto
import CallTraceTestSupport
import Foundation
import Testing
@testable import WebGateway

/// Website attribution in the web app (issue 32), over real HTTP with the four services behind:
/// an admin adds a website and its pool through the forms and gets the tag to paste; a call to a
/// pool number shows the visit that brought it; the reports group by website campaign and say
/// how many calls were joined; the AI's suggestion shows, preselected, until a person confirms
/// it; the conversions file downloads in Google's format, once. An analyst reads, changes nothing.
@Suite(.serialized) struct WebsitePagesTests {
    @Test func websitesPoolsVisitsSuggestionsAndConversions() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let transcript = d.services.calls.transcript
        let numbers = Calltrace_Transcript_V1_TrackingNumberServiceClient(try transcript.client())
        for number in ["+441184960701", "+441184960702"] {
            _ = try await numbers.assignTrackingNumber(.with { $0.orgID = org; $0.number = number; $0.source = "Website"; $0.channel = .organic },
                                                       options: try bearer(admin))
        }
        let owner = try await d.signedIn(.admin, org: org, admin: admin)
        let analyst = try await d.signedIn(.analyst, org: org, admin: admin)
        defer { owner.close(); analyst.close() }

        let empty = try await owner.get("/numbers/websites")
        #expect(empty.status == 200 && empty.text.contains("No websites yet") && empty.text.contains("Add a website"))
        let csrf = try #require(empty.csrf)
        let refused = try await owner.post("/numbers/websites", form: [("csrf", csrf), ("name", "Main site"), ("origins", "http://www.smith-law.co.uk"),
                                                                     ("targets", "020 7946 0000"), ("source", "Website")])
        #expect(refused.status == 400 && refused.text.contains("value=\"Main site\"") && refused.text.contains("href=\"#origins\""),
                "transcript's refusal on the form, with what was typed")
        let created = try await owner.post("/numbers/websites", form: [("csrf", csrf), ("name", "Main site"),
                                                                     ("origins", "https://www.smith-law.co.uk\r\nhttps://smith-law.co.uk"),
                                                                     ("targets", "020 7946 0000"), ("source", "Website")])
        #expect(created.status == 303 && created.header("Location") == "/numbers/websites?done=created")
        let websites = Calltrace_Transcript_V1_WebsiteServiceClient(try transcript.client())
        let site = try #require(try await websites.listWebsites(.with { $0.orgID = org }, options: try bearer(admin)).websites.first)
        #expect(site.origins == ["https://smith-law.co.uk", "https://www.smith-law.co.uk"])
        let listed = try await owner.get("/numbers/websites?done=created")
        #expect(listed.text.contains("/dni.js&quot; data-site-key=&quot;\(site.siteKey)&quot;"), "the tag to paste, with the website's key")
        let pooled = try await owner.post("/numbers/websites/\(site.websiteID)/pool", form: [("csrf", csrf), ("number-+441184960701", "on"),
                                                                                           ("number-+441184960702", "on")])
        #expect(pooled.status == 303)
        #expect(try await websites.listWebsites(.with { $0.orgID = org }, options: try bearer(admin)).websites.first?.poolNumbers
            == ["+441184960701", "+441184960702"])
        // A second website of the same source: the first one's numbers show in its pool form, but cannot be ticked.
        _ = try await owner.post("/numbers/websites", form: [("csrf", csrf), ("name", "Family site"), ("origins", "https://family.smith-law.co.uk"),
                                                             ("targets", "020 7946 0001"), ("source", "Website")])
        let both = try await owner.get("/numbers/websites").text
        #expect(both.components(separatedBy: "name=\"number-+441184960701\" value=\"on\" checked>").count == 2
                && both.components(separatedBy: "value=\"on\" disabled> 0118 496 0701 <span class=\"muted\">(in the pool of Main site)</span>").count == 2,
                "ticked in its own website's form, not to be ticked in the other's")

        // A visitor who consented, from a Google ad; their call joins the visit.
        let visitors = Calltrace_Transcript_V1_VisitorServiceClient(try transcript.client())
        let reserved = try await visitors.reserveNumber(.with {
            $0.siteKey = site.siteKey; $0.origin = "https://www.smith-law.co.uk"; $0.landingPath = "/road-accidents"; $0.utmCampaign = "spring-pi"
            $0.utmTerm = "accident solicitor"; $0.clickIds = ["gclid": "Cj0KCQ-web-test"]
        })
        let calls = Calltrace_Transcript_V1_CallServiceClient(try transcript.client(identity: TemporaryPKI.telephony))
        _ = try await calls.startCall(.with { $0.callID = "web-visit-1"; $0.trackingNumber = reserved.number; $0.callerNumber = "07700 900321"; $0.direction = .inbound })
        _ = try await calls.completeCall(.with { $0.orgID = org; $0.callID = "web-visit-1"; $0.outcome = .answered; $0.durationMs = 60_000 })
        // The gateway's own text of the call, analysed by the local engine: a suggestion to confirm.
        let texts = Calltrace_Transcript_V1_TranscriptServiceClient(try transcript.client(identity: TemporaryPKI.telephony))
        _ = try await texts.submitTranscript(.with {
            $0.orgID = org; $0.callID = "web-visit-1"
            $0.segments = [.with { $0.speaker = "caller"; $0.text = "I was injured in a road accident last week and I need a solicitor." }]
        })
        let userCalls = Calltrace_Transcript_V1_CallServiceClient(try transcript.client())
        #expect(try await eventually {
            try await userCalls.getCall(.with { $0.orgID = org; $0.callID = "web-visit-1" }, options: try bearer(admin)).call.suggestedEnquiry == .new
        })
        let page = try await owner.get("/calls/web-visit-1")
        #expect(page.text.contains("Website visit") && page.text.contains("spring-pi") && page.text.contains("accident solicitor")
                && page.text.contains("/road-accidents") && page.text.contains("gclid"))
        #expect(!page.text.contains("Cj0KCQ-web-test"), "a click id's value is never shown")
        #expect(page.text.contains("Suggested by the AI: New enquiry") && !page.text.contains("value=\"new\" checked"),
                "the suggestion shown, not preselected: saving the form must not confirm it")

        let report = try await owner.get("/reports?by=utm-campaign")
        #expect(report.text.contains("spring-pi") && report.text.contains("1 of 1 calls to website numbers were joined"))
        #expect(try await owner.post("/calls/web-visit-1/outcome", form: [("csrf", csrf), ("enquiry", "new"), ("matter", "no"), ("area", "1")]).status == 303)
        let file = try await owner.post("/reports/conversions.csv", form: [("csrf", csrf), ("from", ""), ("to", "")])
        #expect(file.status == 200 && file.header("Content-Type")?.hasPrefix("text/csv") == true)
        let lines = file.text.components(separatedBy: "\r\n")
        #expect(lines.first == "Parameters:TimeZone=Europe/London" && lines.count == 4 && lines[2].hasPrefix("Cj0KCQ-web-test,Genuine enquiry,"))
        let again = try await owner.post("/reports/conversions.csv", form: [("csrf", csrf), ("from", ""), ("to", "")])
        #expect(again.text.components(separatedBy: "\r\n").count == 3, "exported once: the next file has the header alone")

        // The analyst sees the websites and their tags, and changes nothing.
        let read = try await analyst.get("/numbers/websites")
        #expect(read.status == 200 && read.text.contains(site.siteKey) && !read.text.contains("Add a website") && !read.text.contains("Save the pool"))
        let denied = try await analyst.post("/numbers/websites/\(site.websiteID)/delete", form: [("csrf", try #require(read.csrf))])
        #expect(denied.status == 403)
        let reports = try await analyst.get("/reports")
        #expect(!reports.text.contains("conversions.csv"), "no conversions form for an analyst")
        let exported = try await analyst.post("/reports/conversions.csv", form: [("csrf", try #require(reports.csrf)), ("from", ""), ("to", ""), ("again", "yes")])
        #expect(exported.status == 403, "click ids leave only at settings.manage's hand")
        await d.stop()
    }
}
