import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Testing
@testable import TranscriptDomain

typealias Websites = Calltrace_Transcript_V1_WebsiteServiceClient
typealias Visitors = Calltrace_Transcript_V1_VisitorServiceClient

extension TranscriptDeployment {
    func websites(as who: String = TemporaryPKI.identity("gateway", "web")) throws -> Websites { Websites(try transcript.client(identity: who)) }
    func visitors(as who: String = TemporaryPKI.identity("gateway", "web")) throws -> Visitors { Visitors(try transcript.client(identity: who)) }

    /// A website of `org` on https://www.smith-law.co.uk whose pool is `pool` (each assigned to the website's source first).
    func website(org: String, admin: String, pool: [String], source: String = "Website") async throws -> Calltrace_Transcript_V1_Website {
        for number in pool { try await assign(number, org: org, admin: admin, source: source, channel: .organic, campaign: "") }
        let made = try await websites().createWebsite(.with {
            $0.orgID = org
            $0.settings = .with {
                $0.name = "Main site"; $0.origins = ["https://www.smith-law.co.uk"]; $0.targetNumbers = ["020 7946 0000"]; $0.source = source
            }
        }, options: try bearer(admin)).website
        return try await websites().setPoolNumbers(.with { $0.orgID = org; $0.websiteID = made.websiteID; $0.numbers = pool },
                                                   options: try bearer(admin)).website
    }

    /// What the tag asks after consent, as the web gateway passes it on.
    func reserve(_ site: Calltrace_Transcript_V1_Website, visitor: String = "", campaign: String = "spring", term: String = "injury solicitor",
                 clicks: [String: String] = [:]) async throws -> Calltrace_Transcript_V1_ReserveNumberResponse {
        try await visitors().reserveNumber(.with {
            $0.siteKey = site.siteKey; $0.origin = "https://www.smith-law.co.uk"; $0.visitorID = visitor
            $0.landingPath = "/personal-injury?name=Jane#top"; $0.referrerHost = "www.google.com"
            $0.utmSource = "google"; $0.utmMedium = "cpc"; $0.utmCampaign = campaign; $0.utmTerm = term; $0.clickIds = clicks
        })
    }

    func renew(_ site: Calltrace_Transcript_V1_Website, visit: String) async throws -> Calltrace_Transcript_V1_RenewReservationResponse {
        try await visitors().renewReservation(.with { $0.siteKey = site.siteKey; $0.origin = "https://www.smith-law.co.uk"; $0.visitID = visit })
    }

    func call(_ id: String, org: String, admin: String) async throws -> Calltrace_Transcript_V1_Call {
        try await calls().getCall(.with { $0.orgID = org; $0.callID = id }, options: try bearer(admin)).call
    }
}

@Suite("Website attribution: pools, visits, the join of calls to visits, and conversions (issue 32)", .serialized)
struct WebsiteAttributionTests {
    static let minute: Int64 = 60_000

    @Test("Websites: settings checked, a pool only of the firm's own tracking numbers and in one website's pool, reports.read lists, settings.manage changes, another firm sees nothing; audited")
    func websiteSettings() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation()
        let analyst = try await deployment.user(.analyst, in: org, admin: admin)
        let site = try await deployment.website(org: org, admin: admin, pool: ["0118 496 0001", "0118 496 0002"])
        #expect(site.poolNumbers == ["+441184960001", "+441184960002"] && site.siteKey.hasPrefix("ws_") && site.clickIds == [.gclid, .gbraid, .wbraid])
        #expect(site.targetNumbers == ["+442079460000"] && site.origins == ["https://www.smith-law.co.uk"])

        func create(_ settings: Calltrace_Transcript_V1_WebsiteSettings, as token: String) async -> StatusCode? {
            await code { _ = try await deployment.websites().createWebsite(.with { $0.orgID = org; $0.settings = settings }, options: try bearer(token)) }
        }
        let good = Calltrace_Transcript_V1_WebsiteSettings.with {
            $0.name = "Second site"; $0.origins = ["https://smith-law.co.uk:8443"]; $0.targetNumbers = ["020 7946 0001"]; $0.source = "Website"
        }
        for origin in ["http://www.smith-law.co.uk", "https://www.smith-law.co.uk/contact", "https://user@smith-law.co.uk", "smith-law.co.uk", ""] {
            var bad = good
            bad.origins = [origin]
            #expect(await create(bad, as: admin) == .invalidArgument, "origin \(origin)")
        }
        var noTargets = good
        noTargets.targetNumbers = []
        #expect(await create(noTargets, as: admin) == .invalidArgument)
        #expect(await create(good, as: analyst) == .permissionDenied, "reports.read does not manage websites")
        #expect(try await deployment.websites().listWebsites(.with { $0.orgID = org }, options: try bearer(analyst)).websites.map(\.websiteID) == [site.websiteID])

        func pool(_ numbers: [String], website: String = site.websiteID, org: String = org, as token: String = admin) async -> StatusCode? {
            await code {
                _ = try await deployment.websites().setPoolNumbers(.with { $0.orgID = org; $0.websiteID = website; $0.numbers = numbers }, options: try bearer(token))
            }
        }
        #expect(await pool(["0118 496 0009"]) == .invalidArgument, "a number that is not the firm's tracking number")
        let (other, otherAdmin) = try await deployment.organisation("Jones LLP")
        try await deployment.assign("0118 496 0100", org: other, admin: otherAdmin)
        #expect(await pool(["0118 496 0100"]) == .invalidArgument, "another firm's number")
        #expect(await pool(["0118 496 0001"], org: other, as: otherAdmin) == .notFound, "another firm's website")
        #expect(await code { _ = try await deployment.websites().listWebsites(.with { $0.orgID = org }, options: try bearer(otherAdmin)) } == .permissionDenied)
        let second = try await deployment.websites().createWebsite(.with { $0.orgID = org; $0.settings = good }, options: try bearer(admin)).website
        #expect(await pool(["0118 496 0001"], website: second.websiteID) == .alreadyExists, "a number serves one website's pool")

        _ = try await deployment.websites().deleteWebsite(.with { $0.orgID = org; $0.websiteID = second.websiteID }, options: try bearer(admin))
        let events = try await deployment.auditEvents(org: org, admin: admin) { $0.contains { $0.action == "website.deleted" } }
        #expect(events.filter { $0.action == "website.created" }.count == 2)
        #expect(events.contains { $0.action == "website.pool_set" && $0.resource == "website:\(site.websiteID)" && $0.detail == "numbers=2" })
    }

    @Test("The join: two visitors on one pool number at different times are told apart, a takeover when the pool is exhausted is counted, a lapsed reservation and a number never reserved fall back to the source, with the reason")
    func joinCallsToVisits() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let clock = deployment.transcript.clock
        let (org, admin) = try await deployment.organisation()
        let site = try await deployment.website(org: org, admin: admin, pool: ["0118 496 0001", "0118 496 0002"])
        try await deployment.assign("0118 496 0005", org: org, admin: admin, source: "Yell", channel: .directory, campaign: "")
        let t0 = clock.nowUnixMs

        let a = try await deployment.reserve(site, campaign: "spring", clicks: ["gclid": "Cj0KCQ-a_1", "fbclid": "ignored", "wbraid": "bad value!"])
        #expect(a.number == "+441184960001" && a.visitID.hasPrefix("vis_") && a.visitorID.hasPrefix("v1_") && a.holdSeconds == 1200 && !a.sourceNumber)
        clock.advance(by: .seconds(60))
        let b = try await deployment.reserve(site, campaign: "summer")
        #expect(b.number == "+441184960002")
        clock.advance(by: .seconds(60))
        #expect(try await deployment.renew(site, visit: a.visitID).number == a.number, "a renewal keeps the number")
        // Both numbers held, both renewed within five minutes: nobody's is taken; the source's number.
        let early = try await deployment.reserve(site, campaign: "burst")
        #expect(early.sourceNumber && early.number.isEmpty && !early.visitID.isEmpty, "no takeover of a fresh reservation: the source has no number outside the pool, so the firm's own stays")
        clock.advance(by: .seconds(5 * 60))
        #expect(try await deployment.renew(site, visit: a.visitID).number == a.number)
        // B's last activity is six minutes old: C takes it over.
        let c = try await deployment.reserve(site, campaign: "autumn")
        #expect(c.number == b.number && !c.sourceNumber)
        let status = try await deployment.websites().getPoolStatus(.with { $0.orgID = org; $0.websiteID = site.websiteID }, options: try bearer(admin))
        #expect(status.poolSize == 2 && status.held == 2 && status.visits == 4 && status.reservations == 3 && status.takenOver == 1)
        #expect(try await deployment.renew(site, visit: b.visitID).changed, "B's number was taken: B gets the source's number")

        // Calls, each started at a time of its own: the reservation history decides, not the holder now.
        try await deployment.start("call-b", tracking: "01184960002", caller: "07700 900001", at: t0 + 90_000)
        try await deployment.start("call-c", tracking: "01184960002", caller: "07700 900002", at: t0 + 7 * Self.minute)
        try await deployment.start("call-a", tracking: "01184960001", caller: "07700 900003", at: t0 + 3 * Self.minute)
        try await deployment.start("call-yell", tracking: "01184960005", caller: "07700 900004", at: t0 + 3 * Self.minute)
        let callB = try await deployment.call("call-b", org: org, admin: admin)
        #expect(callB.visitJoin == .joined && callB.visit.utmCampaign == "summer")
        let callC = try await deployment.call("call-c", org: org, admin: admin)
        #expect(callC.visitJoin == .joined && callC.visit.utmCampaign == "autumn", "the same number, the later visitor")
        let callA = try await deployment.call("call-a", org: org, admin: admin)
        #expect(callA.visitJoin == .joined && callA.visit.visitID == a.visitID && callA.visit.websiteID == site.websiteID)
        #expect(callA.visit.landingPath == "/personal-injury" && callA.visit.referrerHost == "www.google.com" && callA.visit.utmTerm == "injury solicitor",
                "the path without its query or fragment")
        #expect(callA.visit.clickIDKinds == ["gclid"], "kinds the website does not capture, and malformed ids, are dropped")
        #expect(try await deployment.call("call-yell", org: org, admin: admin).visitJoin == .staticNumber)

        // Twenty minutes after A's last renewal its number is free again: a call then is the source's.
        clock.advance(by: .seconds(30 * 60))
        #expect(await code { _ = try await deployment.renew(site, visit: "vis_unknown") } == .notFound)
        try await deployment.start("call-late", tracking: "01184960001", caller: "07700 900005")
        #expect(try await deployment.call("call-late", org: org, admin: admin).visitJoin == .lapsed)
        // A number added to the pool and never reserved.
        try await deployment.assign("0118 496 0003", org: org, admin: admin, source: "Website", channel: .organic, campaign: "")
        _ = try await deployment.websites().setPoolNumbers(.with {
            $0.orgID = org; $0.websiteID = site.websiteID; $0.numbers = site.poolNumbers + ["01184960003"]
        }, options: try bearer(admin))
        try await deployment.start("call-unreserved", tracking: "01184960003", caller: "07700 900006")
        #expect(try await deployment.call("call-unreserved", org: org, admin: admin).visitJoin == .noReservation)

        // Released, a number leaves the pool at once; another firm taking it gets no visitor of this one.
        _ = try await deployment.numbers().releaseTrackingNumber(.with { $0.orgID = org; $0.number = "01184960003" }, options: try bearer(admin))
        #expect(try await deployment.websites().listWebsites(.with { $0.orgID = org }, options: try bearer(admin)).websites.first?.poolNumbers
            == site.poolNumbers)
        let (other, otherAdmin) = try await deployment.organisation("Jones LLP")
        clock.advance(by: .seconds(60))
        try await deployment.assign("0118 496 0003", org: other, admin: otherAdmin)
        try await deployment.start("call-other", tracking: "01184960003", caller: "07700 900007")
        let otherCall = try await deployment.calls().getCall(.with { $0.orgID = other; $0.callID = "call-other" }, options: try bearer(otherAdmin)).call
        #expect(otherCall.visitJoin == .staticNumber, "the first firm's reservations do not follow the number")

        // The report: rows by campaign, the calls not joined in one row, and the share joined.
        let report = try await deployment.calls().attributionReport(.with {
            $0.orgID = org; $0.fromUnixMs = t0 - 1; $0.beforeUnixMs = clock.nowUnixMs + 1; $0.groupBy = .utmCampaign
        }, options: try bearer(admin))
        #expect(Dictionary(uniqueKeysWithValues: report.rows.filter { !$0.noVisit }.map { ($0.key, $0.calls) }) == ["spring": 1, "summer": 1, "autumn": 1])
        #expect(report.rows.filter(\.noVisit).map { "\($0.key)/\($0.calls)" } == ["/3"], "the calls joined to no visit: one row, keyed by nothing a visit could bring")
        #expect(report.poolCalls == 5 && report.joinedCalls == 3, "the Yell call is not a pool call")
        let byKeyword = try await deployment.calls().attributionReport(.with {
            $0.orgID = org; $0.fromUnixMs = t0 - 1; $0.beforeUnixMs = clock.nowUnixMs + 1; $0.groupBy = .keyword
        }, options: try bearer(admin))
        #expect(byKeyword.rows.first { $0.key == "injury solicitor" }?.calls == 3)
    }

    @Test("First and last touch: a visitor who came from one campaign and called after a visit from another credits the first to the first visit's campaign")
    func firstAndLastTouch() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let clock = deployment.transcript.clock
        let (org, admin) = try await deployment.organisation()
        let site = try await deployment.website(org: org, admin: admin, pool: ["0118 496 0001"])
        let t0 = clock.nowUnixMs
        let first = try await deployment.reserve(site, campaign: "spring")
        clock.advance(by: .seconds(3 * 86_400))
        let second = try await deployment.reserve(site, visitor: first.visitorID, campaign: "summer")
        #expect(second.visitorID == first.visitorID && second.visitID != first.visitID)
        try await deployment.start("call-1", tracking: "01184960001", caller: "07700 900001")
        _ = try await deployment.calls().markCallOutcome(.with {
            $0.orgID = org; $0.callID = "call-1"; $0.enquiry = .new; $0.matterOpened = true; $0.practiceArea = .personalInjury
        }, options: try bearer(admin))
        let call = try await deployment.call("call-1", org: org, admin: admin)
        #expect(call.visit.utmCampaign == "summer" && call.visit.firstUtmCampaign == "spring")
        let report = try await deployment.calls().attributionReport(.with {
            $0.orgID = org; $0.fromUnixMs = t0 - 1; $0.beforeUnixMs = clock.nowUnixMs + 1; $0.groupBy = .utmCampaign
        }, options: try bearer(admin))
        let rows = Dictionary(uniqueKeysWithValues: report.rows.map { ($0.key, $0) })
        #expect(rows["summer"]?.lastTouchMatters == 1 && rows["summer"]?.firstTouchMatters == 0 && rows["summer"]?.calls == 1)
        #expect(rows["spring"]?.firstTouchMatters == 1 && rows["spring"]?.calls == 0, "the first visit's campaign is credited first touch")
    }

    @Test("The tag's requests: an unknown key and a foreign origin answer alike, another website's visit is not renewed, only gateways ask, an empty pool shows the source's number, and visitor and click ids are never stored in clear")
    func tagRefusalsAndSecrecy() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation()
        try await deployment.assign("0118 496 0007", org: org, admin: admin, source: "Website", channel: .organic, campaign: "")
        let site = try await deployment.website(org: org, admin: admin, pool: ["0118 496 0001"])
        let tag = try await deployment.visitors().getWebsiteTag(.with { $0.siteKey = site.siteKey; $0.origin = "https://www.smith-law.co.uk" })
        #expect(tag.targetNumbers == ["+442079460000"] && tag.sourceNumber == "+441184960007" && tag.holdSeconds == 1200,
                "before consent: the source's own number, not a pool number")

        func tagCode(key: String, origin: String) async -> StatusCode? {
            await code { _ = try await deployment.visitors().getWebsiteTag(.with { $0.siteKey = key; $0.origin = origin }) }
        }
        #expect(await tagCode(key: "ws_00000000000000000000000000000000", origin: "https://www.smith-law.co.uk") == .notFound)
        #expect(await tagCode(key: site.siteKey, origin: "https://evil.example") == .notFound)
        #expect(await code {
            _ = try await deployment.visitors().reserveNumber(.with { $0.siteKey = site.siteKey; $0.origin = "https://evil.example" })
        } == .notFound)
        for who in [TemporaryPKI.identity("service", "media"), TemporaryPKI.identity("operator", "alice")] {
            #expect(await code { _ = try await deployment.visitors(as: who).getWebsiteTag(.with { $0.siteKey = site.siteKey }) } == .permissionDenied,
                    "\(who) is not a gateway")
        }

        let (other, otherAdmin) = try await deployment.organisation("Jones LLP")
        let otherSite = try await deployment.website(org: other, admin: otherAdmin, pool: ["0118 496 0101"])
        let theirs = try await deployment.reserve(otherSite, clicks: ["gclid": "Cj0KCQ-secret-click"])
        #expect(await code { _ = try await deployment.renew(site, visit: theirs.visitID) } == .notFound, "another firm's visit under this firm's key")

        // An empty pool: the source's number, and no visit kept.
        _ = try await deployment.websites().setPoolNumbers(.with { $0.orgID = org; $0.websiteID = site.websiteID; $0.numbers = [] }, options: try bearer(admin))
        let fallback = try await deployment.reserve(site)
        #expect(fallback.sourceNumber && fallback.visitID.isEmpty)
        #expect(fallback.number == "+441184960001", "the source's lowest number in no pool: the one just taken out of it")

        try await deployment.transcript.instance.database.checkpoint()
        let written = try deployment.everythingTranscriptWrote()
        #expect(!written.contains(theirs.visitorID) && !written.contains("Cj0KCQ-secret-click"), "visitor ids blind-indexed, click ids sealed")
    }

    @Test("Conversions: confirmed enquiries and matters on calls joined to a visit with a gclid, in Google's file format, each exported once")
    func conversionsExport() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let clock = deployment.transcript.clock
        let (org, admin) = try await deployment.organisation()
        let site = try await deployment.website(org: org, admin: admin, pool: ["0118 496 0001", "0118 496 0002", "0118 496 0003"])
        let t0 = clock.nowUnixMs
        let a = try await deployment.reserve(site, clicks: ["gclid": "Cj0KCQ-a"])
        let b = try await deployment.reserve(site, clicks: ["gclid": "Cj0KCQ-b"])
        let c = try await deployment.reserve(site, clicks: ["gbraid": "0AAAAA-c"])
        for (index, reserved) in [a, b, c].enumerated() {
            try await deployment.start("call-\(index)", tracking: reserved.number, caller: "07700 90000\(index)")
        }
        func mark(_ call: String, enquiry: Calltrace_Transcript_V1_Enquiry, matter: Bool = false) async throws {
            _ = try await deployment.calls().markCallOutcome(.with {
                $0.orgID = org; $0.callID = call; $0.enquiry = enquiry; $0.matterOpened = matter; $0.practiceArea = .family
            }, options: try bearer(admin))
        }
        try await mark("call-0", enquiry: .new, matter: true)
        try await mark("call-1", enquiry: .notNew)
        try await mark("call-2", enquiry: .new)
        func export(preview: Bool = false, again: Bool = false) async throws -> Calltrace_Transcript_V1_ExportConversionsResponse {
            try await deployment.websites().exportConversions(.with {
                $0.orgID = org; $0.fromUnixMs = t0 - 1; $0.beforeUnixMs = clock.nowUnixMs + 1; $0.preview = preview; $0.includeExported = again
                $0.matterConversionName = "Matter, opened"
            }, options: try bearer(admin))
        }
        let preview = try await export(preview: true)
        #expect(preview.rows.map(\.conversion) == ["enquiry", "matter"] && preview.rows.allSatisfy { $0.clickID == "Cj0KCQ-a" && $0.callID == "call-0" })
        #expect(preview.withoutClickID == 1, "the gbraid visit's enquiry is not in Google's click file")
        let lines = preview.googleAdsCsv.components(separatedBy: "\r\n")
        #expect(lines[0] == "Parameters:TimeZone=Europe/London")
        #expect(lines[1] == "Google Click ID,Conversion Name,Conversion Time,Conversion Value,Conversion Currency")
        let time = LondonTime.dateTimeWithOffset(unixMs: try #require(preview.rows.first).convertedAtUnixMs)
        #expect(lines[2] == "Cj0KCQ-a,Genuine enquiry,\(time),," && lines[3] == "Cj0KCQ-a,\"Matter, opened\",\(time),," && lines[4].isEmpty && lines.count == 5)

        #expect(try await export().rows.count == 2)
        let second = try await export()
        #expect(second.rows.isEmpty && second.alreadyExported == 2, "exported once")
        #expect(try await export(again: true).rows.count == 2, "unless asked again")
        let events = try await deployment.auditEvents(org: org, admin: admin) { events in
            events.filter { $0.action == "conversions.exported" }.count >= 2 && events.contains { $0.action == "call.outcome_marked" }
        }
        #expect(events.filter { $0.action == "conversions.exported" }.map(\.detail).allSatisfy { $0.hasPrefix("conversions=2;") },
                "two exports of two; the preview and the empty export recorded nothing")
        #expect(events.filter { $0.action == "conversions.exported" }.count == 2)
    }

    @Test("Retention takes every visit last seen before the cutoff, joined to a call or never, with its reservations, and the marketing (touches) that no visit or call left names; offboarding takes every website, pool, visit and reservation")
    func retentionAndOffboarding() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let clock = deployment.transcript.clock
        let (org, admin) = try await deployment.organisation()
        let site = try await deployment.website(org: org, admin: admin, pool: ["0118 496 0001", "0118 496 0002", "0118 496 0003"])
        // A visit no call ever joined, and a visitor whose call joined their first visit.
        _ = try await deployment.reserve(site, campaign: "winter", term: "never called")
        let first = try await deployment.reserve(site, campaign: "autumn", term: "called")
        try await deployment.start("call-old", tracking: first.number, caller: "07700 900001")
        clock.advance(by: .seconds(86_400))
        // The same visitor a day later calls again: that call's first touch is the first visit's.
        let again = try await deployment.reserve(site, visitor: first.visitorID, campaign: "spring", term: "called")
        try await deployment.start("call-new", tracking: again.number, caller: "07700 900001")
        func campaigns() async throws -> [String] {
            try await deployment.transcript.instance.database.read { db in
                try db.query("SELECT utm_campaign FROM attribution_touches WHERE org_id = ? ORDER BY utm_campaign", org).compactMap { $0.text("utm_campaign") }
            }
        }
        #expect(try await campaigns() == ["autumn", "spring", "winter"])

        let compliance = try deployment.calls(as: TemporaryPKI.identity("service", "compliance"))
        let purged = try await compliance.purgeCalls(.with { $0.orgID = org; $0.startedBeforeUnixMs = clock.nowUnixMs - 1000 })
        #expect(purged.purged == 1 && !purged.more)
        #expect(try await deployment.rows("website_visits", org: org) == 1, "both visits last seen before the cutoff went, the one never joined too")
        #expect(try await deployment.rows("number_reservations", org: org) == 1, "with their reservations")
        #expect(try await campaigns() == ["autumn", "spring"], "winter is named by nothing left; autumn is the first touch of the call kept")
        let kept = try await deployment.call("call-new", org: org, admin: admin)
        #expect(kept.visit.utmCampaign == "spring" && kept.visit.firstUtmCampaign == "autumn")

        _ = try await compliance.purgeOrganisation(.with { $0.orgID = org })
        for table in ["websites", "website_pool_numbers", "website_visits", "number_reservations", "attribution_touches"] {
            #expect(try await deployment.rows(table, org: org) == 0, "\(table)")
        }
    }

    @Test("A report by a visit's value keeps the calls joined to no visit apart: a campaign called \"(no visit)\", and visits without a campaign, are rows of their own")
    func noVisitRowCannotCollide() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let clock = deployment.transcript.clock
        let (org, admin) = try await deployment.organisation()
        let t0 = clock.nowUnixMs
        // Two visits, one with a campaign named like the row of no visit, one with none; and a number in no pool.
        let site = try await deployment.website(org: org, admin: admin, pool: ["0118 496 0001", "0118 496 0002"])
        try await deployment.assign("0118 496 0005", org: org, admin: admin)
        let named = try await deployment.reserve(site, campaign: "(no visit)")
        let unnamed = try await deployment.reserve(site, campaign: "")
        try await deployment.start("call-named", tracking: named.number, caller: "07700 900001")
        try await deployment.start("call-unnamed", tracking: unnamed.number, caller: "07700 900002")
        try await deployment.start("call-static", tracking: "01184960005", caller: "07700 900003")
        let report = try await deployment.calls().attributionReport(.with {
            $0.orgID = org; $0.fromUnixMs = t0 - 1; $0.beforeUnixMs = clock.nowUnixMs + 1; $0.groupBy = .utmCampaign
        }, options: try bearer(admin))
        #expect(report.rows.map { "\($0.key)|\($0.noVisit)|\($0.calls)" }.sorted() == ["(no visit)|false|1", "|false|1", "|true|1"])
        #expect(report.total.calls == 3 && report.joinedCalls == 2)
    }

    @Test("ReserveNumber with the visit id of another website of the firm, of another firm, or a malformed one answers exactly as an unknown visit id, and renews nothing")
    func reserveWithAnotherVisit() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let clock = deployment.transcript.clock
        let (org, admin) = try await deployment.organisation()
        let site = try await deployment.website(org: org, admin: admin, pool: ["0118 496 0001"])
        let second = try await deployment.website(org: org, admin: admin, pool: ["0118 496 0002"])
        let (other, otherAdmin) = try await deployment.organisation("Jones LLP")
        let otherSite = try await deployment.website(org: other, admin: otherAdmin, pool: ["0118 496 0101"])
        let ours = try await deployment.reserve(second)
        let theirs = try await deployment.reserve(otherSite)
        clock.advance(by: .seconds(60))

        func answer(_ visit: String) async -> String {
            do {
                let reserved = try await deployment.visitors().reserveNumber(.with {
                    $0.siteKey = site.siteKey; $0.origin = "https://www.smith-law.co.uk"; $0.visitID = visit
                })
                return "answered \(reserved.number)"
            } catch let error as RPCError {
                return "\(error.code) \(error.message)"
            } catch {
                return "\(error)"
            }
        }
        let unknown = await answer("vis_" + String(repeating: "0", count: 32))
        #expect(unknown.hasPrefix("\(StatusCode.notFound)"), "\(unknown)")
        for visit in [ours.visitID, theirs.visitID, "vis_", "v1_" + String(repeating: "0", count: 32), String(repeating: "x", count: 65)] {
            #expect(await answer(visit) == unknown, "\(visit)")
        }
        let lastSeen = try await deployment.transcript.instance.database.read { db in
            try db.query("SELECT id, last_seen_at_unix_ms FROM website_visits WHERE id IN (?, ?)", ours.visitID, theirs.visitID)
                .map { $0.int("last_seen_at_unix_ms") ?? 0 }
        }
        #expect(lastSeen.count == 2 && lastSeen.allSatisfy { $0 == clock.nowUnixMs - 60_000 }, "neither visit was renewed")
    }

    @Test("London time in the conversions file: GMT in winter, BST in summer, each with its offset, across both changes")
    func londonDateTime() {
        #expect(LondonTime.dateTime(unixMs: 1_767_225_600_000) == "2026-01-01 00:00:00")
        #expect(LondonTime.dateTime(unixMs: 1_782_914_645_000) == "2026-07-01 15:04:05")
        // Summer time begins at 01:00 UTC on 29 March 2026: the clocks go from 00:59:59 to 02:00:00.
        #expect(LondonTime.dateTimeWithOffset(unixMs: 1_774_745_999_000) == "2026-03-29 00:59:59+0000")
        #expect(LondonTime.dateTimeWithOffset(unixMs: 1_774_746_000_000) == "2026-03-29 02:00:00+0100")
        // It ends at 01:00 UTC on 25 October 2026: 01:30 in London comes twice, an hour apart, and the offset tells which.
        #expect(LondonTime.dateTimeWithOffset(unixMs: 1_792_888_200_000) == "2026-10-25 01:30:00+0100")
        #expect(LondonTime.dateTimeWithOffset(unixMs: 1_792_891_800_000) == "2026-10-25 01:30:00+0000")
        #expect(LondonTime.dateTimeWithOffset(unixMs: 1_782_914_645_000) == "2026-07-01 15:04:05+0100")
    }
}
