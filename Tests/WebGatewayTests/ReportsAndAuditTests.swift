import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Testing
@testable import WebGateway

/// Reports, tracking numbers and the audit trail over real HTTP, with the four services behind:
/// each page for the roles that may use it, refused for the others, never another firm's data;
/// the CSV downloads well-formed and safe to open in a spreadsheet; the chain's verification
/// shown plainly; the export streamed.
@Suite(.serialized) struct ReportsAndAuditTests {
    /// Assigns `number` to `source` in `org` and starts `calls` calls on it, as the telephony gateway does.
    func calls(_ count: Int, on number: String, source: String, campaign: String = "", org: String, admin: String,
               in d: WebDeployment, prefix: String) async throws {
        _ = try await Calltrace_Transcript_V1_TrackingNumberServiceClient(try d.services.calls.transcript.client()).assignTrackingNumber(.with {
            $0.orgID = org; $0.number = number; $0.source = source; $0.channel = .directory; $0.campaign = campaign
        }, options: try bearer(admin))
        let telephony = Calltrace_Transcript_V1_CallServiceClient(try d.services.calls.transcript.client(identity: TemporaryPKI.telephony))
        for index in 0..<count {
            _ = try await telephony.startCall(.with {
                $0.callID = "\(prefix)-\(index)"; $0.trackingNumber = number; $0.callerNumber = "07700 900\(100 + index)"; $0.direction = .inbound
            })
            _ = try await telephony.completeCall(.with { $0.orgID = org; $0.callID = "\(prefix)-\(index)"; $0.outcome = index % 3 == 2 ? .missed : .answered })
        }
    }

    /// Appends events to compliance's trail as `service` would forward them from its outbox.
    func audit(_ events: [(actor: String, action: String, resource: String)], org: String, in d: WebDeployment, service: String = "transcript") async throws {
        let now = d.services.calls.compliance.clock.nowUnixMs
        let answer = try await Calltrace_Compliance_V1_AuditServiceClient(try d.services.calls.compliance.client(identity: TemporaryPKI.identity("service", service)))
            .appendAuditEvents(.with {
                $0.events = events.enumerated().map { index, event in
                    .with {
                        $0.idempotencyKey = "\(service):\(UUID().uuidString)"; $0.orgID = org; $0.actor = event.actor; $0.action = event.action
                        $0.resource = event.resource; $0.outcome = "success"; $0.occurredAtUnixMs = now + Int64(index); $0.sourceService = service
                    }
                }
            })
        #expect(answer.rejected.isEmpty, "\(answer.rejected.map(\.reason))")
    }

    @Test func theReportShowsTheFirmsAttributionAsATableAChartAndACSV() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm("Smith & Co Solicitors")
        let (otherOrg, otherAdmin) = try await d.firm("Jones Legal LLP")
        try await calls(4, on: "0118 496 0801", source: "Yell directory", campaign: "Winter", org: org, admin: admin, in: d, prefix: "yell")
        try await calls(2, on: "0118 496 0802", source: "=HYPERLINK(\"http://evil.example\",\"x\")", org: org, admin: admin, in: d, prefix: "evil")
        try await calls(3, on: "0118 496 0901", source: "Jones secret source", org: otherOrg, admin: otherAdmin, in: d, prefix: "jones")
        let analyst = try await d.signedIn(.analyst, org: org, admin: admin)
        let member = try await d.signedIn(.member, org: org, admin: admin)
        defer { analyst.close(); member.close() }

        for browser in [analyst, member] {
            let page = try await browser.get("/reports")
            #expect(page.status == 200)
            #expect(page.text.contains("href=\"/reports\" aria-current=\"page\""), "the navigation leads here")
            #expect(page.text.contains("Yell directory") && !page.text.contains("Jones secret source"))
            // The chart: one image with a title and a label, every bar labelled with its number.
            #expect(page.text.contains("<svg") && page.text.contains("role=\"img\"") && page.text.contains("<title>"))
            #expect(page.text.contains(">4 calls</text>") && page.text.contains(">2 calls</text>"))
            // What someone typed as a source is text on the page and in the chart, never markup.
            #expect(!page.text.contains("=HYPERLINK(\"http") && page.text.contains("=HYPERLINK(&quot;"))
        }
        let byChannel = try await analyst.get("/reports?by=channel")
        #expect(byChannel.status == 200 && byChannel.text.contains("Directory"))
        let tooLong = try await analyst.get("/reports?from=2020-01-01")
        #expect(tooLong.status == 400 && tooLong.text.contains("at most 400 days"))
        let byCampaign = try await analyst.get("/reports?by=campaign")
        #expect(byCampaign.text.contains("Winter") && byCampaign.text.contains("(no campaign)"))
        #expect(try await analyst.get("/reports?from=yesterday").status == 400)
        #expect(try await analyst.get("/reports?by=colour").status == 400)
        let empty = try await analyst.get("/reports?from=2020-01-01&to=2020-01-31")
        #expect(empty.status == 200 && empty.text.contains("No calls in this period") && !empty.text.contains("<svg"))

        let csv = try await analyst.get("/reports.csv?by=source")
        #expect(csv.status == 200)
        #expect(csv.header("Content-Type")?.hasPrefix("text/csv") == true)
        #expect(csv.header("Content-Disposition")?.hasPrefix("attachment; filename=\"attribution-by-source-") == true)
        #expect(csv.header("Cache-Control") == "no-store")
        let lines = csv.text.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(lines.count == 4)  // the header, two sources (Google Ads had no calls), the total
        #expect(lines.first?.hasPrefix("\"Source\",\"Calls\",\"Unique callers\"") == true)
        #expect(lines.contains("\"Yell directory\",\"4\",\"4\",\"3\",\"1\",\"0\",\"0\",\"0\",\"0.0%\",\"0\",\"0\""))
        #expect(lines.contains { $0.hasPrefix("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",\"2\"") }, "a formula is text")
        #expect(lines.last?.hasPrefix("\"All calls\",\"6\"") == true)
        #expect(!csv.text.contains("Jones"))
        await d.stop()
    }

    @Test func csvFieldsAreQuotedAndFormulasDefused() {
        #expect(CSV.line(["plain", "with \"quotes\"", "a,b", "=1+2", "+44", "-3", "@SUM(A1)", "\tx", "line\nbreak"])
                == "\"plain\",\"with \"\"quotes\"\"\",\"a,b\",\"'=1+2\",\"'+44\",\"'-3\",\"'@SUM(A1)\",\"'\tx\",\"line\nbreak\"\r\n")
        let chart = BarChart(title: "T <b>", series: [.init(one: "call", name: "calls", fill: "#000")],
                             groups: [.init(label: "<script>", values: [3]), .init(label: "b", values: [1])]).svg
        #expect(chart.contains("&lt;script&gt;") && !chart.contains("<script>") && chart.contains(">3 calls</text>") && chart.contains(">1 call</text>"))
        #expect(chart.contains("aria-label=\"T &lt;b&gt;: &lt;script&gt; 3 calls; b 1 call\"") && chart.contains("<title>T &lt;b&gt;</title>"))
    }

    @Test func numbersAreListedForReadersAndChangedOnlyByAdmins() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm("Smith & Co Solicitors")
        let (otherOrg, otherAdmin) = try await d.firm("Jones Legal LLP")
        try await calls(0, on: "0118 496 0911", source: "Jones secret source", org: otherOrg, admin: otherAdmin, in: d, prefix: "x")
        let analyst = try await d.signedIn(.analyst, org: org, admin: admin)
        let owner = try await d.signedIn(.admin, org: org, admin: admin)
        defer { analyst.close(); owner.close() }

        let readOnly = try await analyst.get("/numbers")
        #expect(readOnly.status == 200 && readOnly.text.contains("Google Ads") && !readOnly.text.contains("Jones secret source"))
        #expect(!readOnly.text.contains("action=\"/numbers/assign\"") && !readOnly.text.contains("action=\"/numbers/release\""))
        let csrf = try #require(readOnly.csrf)
        let refused = try await analyst.post("/numbers/assign", form: [("csrf", csrf), ("number", "0118 496 0777"), ("source", "Radio"), ("channel", "other")])
        #expect(refused.status == 403)

        let page = try await owner.get("/numbers")
        #expect(page.text.contains("action=\"/numbers/assign\""))
        let ownerCSRF = try #require(page.csrf)
        let assigned = try await owner.post("/numbers/assign", form: [("csrf", ownerCSRF), ("number", "0118 496 0777"), ("source", "Radio advert"),
                                                                     ("channel", "other"), ("campaign", "Spring")])
        #expect(assigned.status == 303 && assigned.header("Location") == "/numbers?done=assigned")
        let listed = try await owner.get("/numbers?done=assigned")
        #expect(listed.text.contains("0118 496 0777") && listed.text.contains("Radio advert") && listed.text.contains("Spring") && listed.text.contains("Saved."))
        // Another firm's number: refused by transcript, shown as a plain page.
        let taken = try await owner.post("/numbers/assign", form: [("csrf", ownerCSRF), ("number", "0118 496 0911"), ("source", "Mine"), ("channel", "other")])
        #expect(taken.status == 400 && !taken.text.contains("Jones"))
        #expect(try await owner.post("/numbers/assign", form: [("csrf", ownerCSRF), ("number", "0118 496 0778"), ("source", "x"), ("channel", "carrier pigeon")]).status == 400)
        #expect(try await owner.post("/numbers/assign", form: [("number", "0118 496 0778"), ("source", "x"), ("channel", "other")]).status == 403)

        #expect(try await analyst.post("/numbers/release", form: [("csrf", csrf), ("number", "+441184960777")]).status == 403)
        let released = try await owner.post("/numbers/release", form: [("csrf", ownerCSRF), ("number", "+441184960777")])
        #expect(released.status == 303)
        #expect(!(try await owner.get("/numbers").text.contains("Radio advert")))
        let history = try await owner.get("/numbers?history=1")
        #expect(history.text.contains("Radio advert") && history.text.contains("Ended"))
        await d.stop()
    }

    @Test func theAuditTrailIsForAdminsFilteredPagedAndMarksOperators() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm("Smith & Co Solicitors")
        let (otherOrg, _) = try await d.firm("Jones Legal LLP")
        try await audit([("user:usr_somebody", "call.viewed", "call:ours-1"), ("operator:ops-alice", "call.viewed", "call:ours-2")]
                        + (1...60).map { ("user:usr_somebody", "recording.played", "recording:rec_\($0)") }, org: org, in: d)
        try await audit([("user:usr_them", "recording.played", "recording:theirs-1")], org: otherOrg, in: d)
        let owner = try await d.signedIn(.admin, org: org, admin: admin)
        let member = try await d.signedIn(.member, org: org, admin: admin)
        let analyst = try await d.signedIn(.analyst, org: org, admin: admin)
        defer { owner.close(); member.close(); analyst.close() }

        for browser in [member, analyst] {
            let calls = try await browser.get("/calls")
            #expect(!calls.text.contains("href=\"/audit\""), "no Audit in the navigation")
            #expect(try await browser.get("/audit").status == 403)
            #expect(try await browser.get("/audit/export").status == 403)
            #expect(try await browser.post("/audit/verify", form: [("csrf", try #require(calls.csrf))]).status == 403)
        }

        let whole = try await owner.get("/audit")
        #expect(whole.status == 200 && whole.text.contains("href=\"/audit\" aria-current=\"page\"") && !whole.text.contains("theirs-1"))
        // Somebody's 61 events, 50 a page, newest first; the next page keeps the filter.
        let page = try await owner.get("/audit?actor=user%3Ausr_somebody")
        #expect(page.text.contains("recording:rec_60") && !page.text.contains("call:ours-1") && !page.text.contains("theirs-1"))
        let next = try #require(page.text.firstMatch(of: /href="(\/audit\?[^"]*page=[^"]+)" rel="next"/).map { String($0.1) })
        let older = try await owner.get(next.replacingOccurrences(of: "&amp;", with: "&"))
        #expect(older.status == 200 && older.text.contains("call:ours-1") && older.text.contains("Newest events"))

        let operators = try await owner.get("/audit?operators=1")
        #expect(operators.text.contains("CallTrace operator") && operators.text.contains("operator:ops-alice") && !operators.text.contains("rec_60"))
        let filtered = try await owner.get("/audit?action=call.viewed&resource=call%3Aours-1")
        #expect(filtered.text.contains("call:ours-1") && !filtered.text.contains("call:ours-2"))
        #expect(try await owner.get("/audit?from=2020-01-01&to=2020-01-02").text.contains("No events match"))
        #expect(try await owner.get("/audit?to=not-a-day").status == 400)
        await d.stop()
    }

    @Test func theChainIsVerifiedAndItsBreakShownPlainly() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        try await audit((1...5).map { ("user:usr_somebody", "recording.played", "recording:rec_\($0)") }, org: org, in: d)
        let owner = try await d.signedIn(.admin, org: org, admin: admin)
        defer { owner.close() }
        let csrf = try #require(try await owner.get("/audit").csrf)
        #expect(try await owner.post("/audit/verify", form: [("csrf", "forged")]).status == 403)
        let intact = try await owner.post("/audit/verify", form: [("csrf", csrf)])
        #expect(intact.status == 200)
        #expect(intact.text.contains("<strong>Intact.</strong>") && intact.text.contains("unchanged and in order"))

        // An event taken out of compliance's table: the next verification says where.
        _ = try d.services.calls.compliance.instance.database.sync { db in
            try db.execute("DELETE FROM audit_chain WHERE org_id = ? AND chain_index = 2", org)
        }
        let broken = try await owner.post("/audit/verify", form: [("csrf", csrf)])
        #expect(broken.status == 200)
        #expect(broken.text.contains("<strong>Not intact.</strong>") && broken.text.contains("broken at event"))
        await d.stop()
    }

    @Test func theExportStreamsTheWholeTrailAsJSONLinesOrCSV() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let (otherOrg, _) = try await d.firm("Jones Legal LLP")
        // More than one of compliance's pieces (500 events each).
        for batch in 0..<3 {
            try await audit((1...400).map { ("user:usr_somebody", "recording.played", "recording:rec_\(batch)_\($0)") }, org: org, in: d)
        }
        try await audit([("operator:ops-alice", "call.viewed", "=cmd|' /C calc'!A0")], org: org, in: d)
        try await audit([("user:usr_them", "recording.played", "recording:theirs-1")], org: otherOrg, in: d)
        let owner = try await d.signedIn(.admin, org: org, admin: admin)
        defer { owner.close() }

        let lines = try await owner.get("/audit/export?format=jsonl")
        #expect(lines.status == 200)
        #expect(lines.header("Content-Disposition")?.hasPrefix("attachment; filename=\"audit-trail-") == true)
        #expect(lines.header("Cache-Control") == "no-store" && lines.header("Content-Length") == nil, "streamed, not sized up front")
        let events = lines.text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(events.count == lines.text.split(separator: "\n").count && events.count >= 1201)
        #expect(!lines.text.contains("theirs-1"))
        let indexes = events.compactMap { ($0["chain_index"] as? String).flatMap(Int.init) }
        #expect(indexes == Array(1...indexes.count), "oldest first, every link there")

        let csv = try await owner.get("/audit/export?format=csv")
        #expect(csv.status == 200 && csv.header("Content-Type")?.hasPrefix("text/csv") == true)
        let rows = csv.text.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(rows.first == CSV.line(AuditCSV.columns).trimmingCharacters(in: .newlines))
        #expect(rows.count >= events.count + 1)
        #expect(rows.contains { $0.contains("\"operator:ops-alice\",\"yes\",\"call.viewed\",\"'=cmd|' /C calc'!A0\"") })
        #expect(!csv.text.contains("theirs-1"))
        await d.stop()
    }
}
