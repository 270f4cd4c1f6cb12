import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceProto
import CallTraceServiceHost
import CallTraceTestSupport
import Foundation
import Testing
@testable import WebGateway

extension WebDeployment {
    /// A website of `org` on `origin` replacing "020 7946 0000": its source "Website" shows
    /// `sourceNumber` before consent, and its pool is `pool` (each the firm's tracking number first).
    func website(org: String, admin: String, origin: String = WebsiteTagTests.origin, sourceNumber: String,
                 pool: [String]) async throws -> Calltrace_Transcript_V1_Website {
        let numbers = Calltrace_Transcript_V1_TrackingNumberServiceClient(try services.calls.transcript.client())
        for number in [sourceNumber] + pool {
            _ = try await numbers.assignTrackingNumber(.with { $0.orgID = org; $0.number = number; $0.source = "Website"; $0.channel = .organic },
                                                       options: try bearer(admin))
        }
        let websites = Calltrace_Transcript_V1_WebsiteServiceClient(try services.calls.transcript.client())
        let made = try await websites.createWebsite(.with {
            $0.orgID = org
            $0.settings = .with { $0.name = "Main site"; $0.origins = [origin]; $0.targetNumbers = ["020 7946 0000"]; $0.source = "Website" }
        }, options: try bearer(admin)).website
        return try await websites.setPoolNumbers(.with { $0.orgID = org; $0.websiteID = made.websiteID; $0.numbers = pool },
                                                 options: try bearer(admin)).website
    }
}

extension WebClient {
    /// A request as the tag makes it from a page on `origin` (none: a request no browser sent).
    func tag(_ method: String, _ path: String, origin: String?, json: String? = nil, headers: [String: String] = [:]) async throws -> Page {
        var headers = headers
        if let origin { headers["Origin"] = origin }
        if json != nil { headers["Content-Type"] = headers["Content-Type"] ?? "text/plain;charset=UTF-8" }
        return try await send(method, path, headers: headers, body: json.map { Data($0.utf8) })
    }
}

extension WebClient.Page {
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    /// CORS that lets `origin` read the answer, and nothing more (no credentials).
    func readable(by origin: String) -> Bool {
        header("Access-Control-Allow-Origin") == origin && header("Vary") == "Origin" && header("Access-Control-Allow-Credentials") == nil
    }
    var unreadable: Bool { header("Access-Control-Allow-Origin") == nil }
}

@Suite("Issue 32: the website tag in the web gateway: /dni.js and its public endpoints")
struct WebsiteTagTests {
    static let origin = "https://www.smith-law.co.uk"
    static let foreign = "https://www.evil.example"

    @Test("/dni.js is cacheable and loadable by any site; the app's pages keep their strict headers")
    func script() async throws {
        let d = try await WebDeployment()
        let browser = d.browser()
        let script = try await browser.get("/dni.js")
        #expect(script.status == 200 && script.header("Content-Type") == "text/javascript; charset=utf-8")
        #expect(script.text.contains("data-site-key") && script.body.count < 12_000, "\(script.body.count) bytes")
        #expect(!script.text.contains("document.cookie"), "the tag never touches cookies")
        let eTag = try #require(script.header("ETag"))
        #expect(script.header("Cache-Control") == "public, max-age=300" && script.header("Cross-Origin-Resource-Policy") == "cross-origin")
        #expect(script.header("Access-Control-Allow-Origin") == "*" && script.header("X-Content-Type-Options") == "nosniff")
        #expect(script.header("X-Frame-Options") == nil && script.header("Set-Cookie") == nil)
        let again = try await browser.get("/dni.js", headers: ["If-None-Match": eTag])
        #expect(again.status == 304 && again.body.isEmpty && again.header("ETag") == eTag)

        let page = try await browser.get("/sign-in")
        #expect(page.header("Content-Security-Policy")?.contains("frame-ancestors 'none'") == true && page.header("X-Frame-Options") == "DENY")
        #expect(page.header("Cross-Origin-Resource-Policy") == nil && page.header("Access-Control-Allow-Origin") == nil)
        let endpoint = try await browser.tag("GET", "/dni/v1/tag?key=ws_00", origin: Self.origin)
        #expect(endpoint.header("Cache-Control") == "no-store" && endpoint.header("Content-Security-Policy")?.hasPrefix("default-src 'none'") == true)
        #expect(endpoint.header("Set-Cookie") == nil)
        await d.stop()
    }

    @Test("The endpoints: readable only by the website's own origin; a foreign origin, an unknown key and another firm's visit are 404s that say nothing; preflight; strict bodies with clear 400s; after consent a pool number whose call joins the visit and its campaign; no visit id, visitor id or number in the log")
    func endpoints() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let site = try await d.website(org: org, admin: admin, sourceNumber: "0118 496 1000", pool: ["0118 496 1001", "0118 496 1002"])
        let (other, otherAdmin) = try await d.firm("Jones LLP")
        let theirs = try await d.website(org: other, admin: otherAdmin, origin: "https://www.jones.example", sourceNumber: "0118 496 2000",
                                         pool: ["0118 496 2001"])
        let browser = d.browser()
        let key = site.siteKey

        // Before consent: what to replace and with what; nothing about the visitor.
        let tag = try await browser.tag("GET", "/dni/v1/tag?key=\(key)", origin: Self.origin)
        #expect(tag.status == 200 && tag.readable(by: Self.origin))
        #expect(tag.json["targets"] as? [String] == ["+442079460000"] && tag.json["sourceNumber"] as? String == "+441184961000")
        #expect(tag.json["clickIds"] as? [String] == ["gclid", "gbraid", "wbraid"] && tag.json["holdSeconds"] as? Int == 1200)

        let foreign = try await browser.tag("GET", "/dni/v1/tag?key=\(key)", origin: Self.foreign)
        let unknown = try await browser.tag("GET", "/dni/v1/tag?key=ws_\(String(repeating: "0", count: 32))", origin: Self.origin)
        let malformed = try await browser.tag("GET", "/dni/v1/tag?key=nonsense", origin: Self.origin)
        let theirOrigin = try await browser.tag("GET", "/dni/v1/tag?key=\(key)", origin: "https://www.jones.example")
        for refused in [foreign, unknown, malformed, theirOrigin] {
            #expect(refused.status == 404 && refused.unreadable && refused.text == foreign.text, "\(refused.status) \(refused.text)")
        }
        #expect(!foreign.text.contains("origin ") && !foreign.text.contains("unknown"), "it says neither which: \(foreign.text)")
        let noOrigin = try await browser.tag("GET", "/dni/v1/tag?key=\(key)", origin: nil)
        #expect(noOrigin.status == 400 && noOrigin.json["error"] as? String == "invalid_request" && noOrigin.unreadable)
        #expect((try await browser.tag("GET", "/dni/v1/tag", origin: Self.origin)).status == 400, "no key")

        // Preflight: for the key's own origins only.
        let preflight = try await browser.tag("OPTIONS", "/dni/v1/reserve?key=\(key)", origin: Self.origin,
                                              headers: ["Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"])
        #expect(preflight.status == 204 && preflight.readable(by: Self.origin))
        #expect(preflight.header("Access-Control-Allow-Methods") == "GET, POST" && preflight.header("Access-Control-Allow-Headers") == "Content-Type")
        let foreignPreflight = try await browser.tag("OPTIONS", "/dni/v1/reserve?key=\(key)", origin: Self.foreign,
                                                     headers: ["Access-Control-Request-Method": "POST"])
        #expect(foreignPreflight.status == 404 && foreignPreflight.unreadable)

        // Bodies: JSON objects of known string fields, at most 4 KiB.
        for (body, says) in [("{", "not a JSON object"), ("[]", "not a JSON object"), (#"{"visitorId": 7}"#, "visitorId is a string"),
                             (#"{"email": "jane@example.com"}"#, "\"email\" is not a field"),
                             (#"{"clickIds": ["x"]}"#, "clickIds is an object")] {
            let bad = try await browser.tag("POST", "/dni/v1/reserve?key=\(key)", origin: Self.origin, json: body)
            #expect(bad.status == 400 && (bad.json["message"] as? String)?.contains(says) == true, "\(body): \(bad.text)")
        }
        let huge = try await browser.tag("POST", "/dni/v1/reserve?key=\(key)", origin: Self.origin,
                                         json: #"{"landingPath": "/\#(String(repeating: "a", count: 5000))"}"#)
        #expect(huge.status == 413)
        let form = try await browser.tag("POST", "/dni/v1/reserve?key=\(key)", origin: Self.origin, json: "{}",
                                         headers: ["Content-Type": "application/x-www-form-urlencoded"])
        #expect(form.status == 415)
        #expect((try await browser.tag("POST", "/dni/v1/renew?key=\(key)", origin: Self.origin, json: "{}")).status == 400, "no visitId")
        let badPath = try await browser.tag("POST", "/dni/v1/reserve?key=\(key)", origin: Self.origin, json: #"{"landingPath": "contact"}"#)
        #expect(badPath.status == 400 && (badPath.json["message"] as? String)?.contains("landing_path") == true, "transcript's own check: \(badPath.text)")

        // After consent: a visit and a pool number, kept while the visitor stays.
        let reserve = #"{"visitorId": "", "landingPath": "/personal-injury", "referrerHost": "www.google.com", "utmSource": "google", "utmMedium": "cpc", "utmCampaign": "spring", "clickIds": {"gclid": "Cj0KCQ-test_1"}}"#
        let reserved = try await browser.tag("POST", "/dni/v1/reserve?key=\(key)", origin: Self.origin, json: reserve,
                                             headers: ["Content-Type": "application/json"])
        #expect(reserved.status == 200 && reserved.readable(by: Self.origin), "\(reserved.text)")
        let number = try #require(reserved.json["number"] as? String)
        let visit = try #require(reserved.json["visitId"] as? String)
        let visitor = try #require(reserved.json["visitorId"] as? String)
        #expect(["+441184961001", "+441184961002"].contains(number) && visit.hasPrefix("vis_") && visitor.hasPrefix("v1_"))
        #expect(reserved.json["sourceNumber"] as? Bool == false)
        let renewed = try await browser.tag("POST", "/dni/v1/renew?key=\(key)", origin: Self.origin, json: #"{"visitId": "\#(visit)"}"#)
        #expect(renewed.status == 200 && renewed.readable(by: Self.origin) && renewed.json["number"] as? String == number)
        #expect(renewed.json["changed"] as? Bool == false)
        #expect((try await browser.tag("POST", "/dni/v1/renew?key=\(key)", origin: Self.foreign, json: #"{"visitId": "\#(visit)"}"#)).status == 404)

        // Another firm's visit: not this website's (readable, so the tag reserves afresh); under
        // that firm's key from this origin, the same unreadable 404 as any foreign origin.
        let theirVisit = try await browser.tag("POST", "/dni/v1/reserve?key=\(theirs.siteKey)", origin: "https://www.jones.example", json: "{}")
        let theirVisitID = try #require(theirVisit.json["visitId"] as? String)
        let crossed = try await browser.tag("POST", "/dni/v1/renew?key=\(key)", origin: Self.origin, json: #"{"visitId": "\#(theirVisitID)"}"#)
        #expect(crossed.status == 404 && crossed.json["error"] as? String == "visit_not_found" && crossed.readable(by: Self.origin))
        let crossedKey = try await browser.tag("POST", "/dni/v1/renew?key=\(theirs.siteKey)", origin: Self.origin, json: #"{"visitId": "\#(visit)"}"#)
        #expect(crossedKey.status == 404 && crossedKey.unreadable && crossedKey.text == foreign.text)

        // A call to the number then joins the visit, with its campaign.
        let calls = Calltrace_Transcript_V1_CallServiceClient(try d.services.calls.transcript.client(identity: CallLedger.telephony))
        _ = try await calls.startCall(.with { $0.callID = "dni-call-1"; $0.trackingNumber = number; $0.callerNumber = "07700900123"; $0.direction = .inbound })
        let call = try await Calltrace_Transcript_V1_CallServiceClient(try d.services.calls.transcript.client())
            .getCall(.with { $0.orgID = org; $0.callID = "dni-call-1" }, options: try bearer(admin)).call
        #expect(call.visitJoin == .joined && call.visit.visitID == visit && call.visit.utmCampaign == "spring" && call.visit.clickIDKinds == ["gclid"])

        let log = d.web.log.text
        for secret in [visit, visitor, theirVisitID, number, "1184961001", "Cj0KCQ-test_1", "personal-injury"] {
            #expect(!log.contains(secret), "the web gateway's log holds \(secret)")
        }
        await d.stop()
    }

    @Test("Rate limits: a flood from one address is refused (429, Retry-After) while another address is served, new visits per address are fewer, and the window passes")
    func limits() async throws {
        let d = try await WebDeployment { try? $0.set("trusted_proxies", "127.0.0.1") }
        let (org, admin) = try await d.firm()
        let site = try await d.website(org: org, admin: admin, sourceNumber: "0118 496 1000", pool: ["0118 496 1001"])
        let browser = d.browser()
        func ask(from address: String) async throws -> WebClient.Page {
            try await browser.tag("GET", "/dni/v1/tag?key=\(site.siteKey)", origin: Self.origin, headers: ["X-Forwarded-For": address])
        }
        for _ in 0..<TagRateLimits.perAddress.count {
            #expect(try await ask(from: "203.0.113.7").status == 200)
        }
        let flooded = try await ask(from: "203.0.113.7")
        #expect(flooded.status == 429 && flooded.json["error"] as? String == "too_many_requests" && flooded.unreadable)
        let wait = try #require(flooded.header("Retry-After").flatMap { Int($0) })
        #expect((1...60).contains(wait))
        #expect(try await ask(from: "203.0.113.8").status == 200, "another address is served")

        func newVisit(from address: String) async throws -> Int {
            try await browser.tag("POST", "/dni/v1/reserve?key=\(site.siteKey)", origin: Self.origin, json: "{}",
                                  headers: ["X-Forwarded-For": address]).status
        }
        for _ in 0..<TagRateLimits.newVisitsPerAddress.count {
            #expect(try await newVisit(from: "203.0.113.9") == 200)
        }
        #expect(try await newVisit(from: "203.0.113.9") == 429, "new visits (each holding a pool number) are fewer")

        d.web.clock.advance(by: .seconds(Int64(wait)))
        #expect(try await ask(from: "203.0.113.7").status == 200, "the window passed")
        await d.stop()
    }

    @Test("A full table of rate-limit windows: a new subject is refused while every window is open, one already counted is counted on, and each window is dropped when its own length has passed")
    func fullTable() {
        let clock = TestClock()
        let limits = TagRateLimits(clock: clock)
        for n in 0..<TagRateLimits.maxSubjects - 1 {
            #expect(limits.admit([(key: "address:\(n)", limit: TagRateLimits.perAddress)]) == nil)
        }
        #expect(limits.admit([(key: "visits:x", limit: TagRateLimits.newVisitsPerAddress)]) == nil, "the last place")
        #expect(limits.admit([(key: "address:new", limit: TagRateLimits.perAddress)]) == 60, "full: a new subject waits")
        #expect(limits.admit([(key: "address:7", limit: TagRateLimits.perAddress)]) == nil, "a subject already counted is counted on")
        let new = [(key: "address:new", limit: TagRateLimits.perAddress)]
        clock.advance(by: .milliseconds(59_500))
        #expect(limits.admit(new) == 60, "swept, and no window has closed")
        clock.advance(by: .milliseconds(600))
        #expect(limits.admit(new) == 60, "the minute-long windows have closed, but the table was swept less than a second ago")
        clock.advance(by: .milliseconds(500))
        // Swept again: the minute-long windows are dropped; the ten-minute one is not.
        #expect(limits.admit(new) == nil)
        #expect(limits.counted == 2)
    }
}
