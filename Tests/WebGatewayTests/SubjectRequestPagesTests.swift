import CallTraceDeploymentSupport
import CallTraceKeys
import CallTraceProto
import CallTraceTestSupport
import Foundation
import Testing
@testable import WebGateway

/// Subject requests, bundles and a call's export and deletion as a browser meets them: each page
/// for the roles compliance allows, refusals as 403, another firm's ids as 404, forms without
/// their token refused, a bundle downloaded whole with the digest its page shows.
@Suite(.serialized) struct SubjectRequestPagesTests {
    /// Opens a request of `kind` for the number every recorded call comes from; its page's path.
    static func open(_ browser: WebClient, kind: String) async throws -> String {
        let form = try await browser.get("/requests/new")
        #expect(form.status == 200)
        let today = try #require(form.text.firstMatch(of: /name="received" type="date" value="([0-9-]+)"/).map { String($0.1) })
        let opened = try await browser.post("/requests", form: [("csrf", try #require(form.csrf)), ("kind", kind), ("numbers", "07700 900123"),
                                                                ("received", today), ("nation", "england-and-wales"), ("notes", "by letter")])
        #expect(opened.status == 303)
        let location = try #require(opened.header("Location"))
        #expect(location.hasPrefix("/requests/") && location.hasSuffix("?done=opened"))
        return String(location.dropLast("?done=opened".count))
    }

    /// Waits for the bundle's page to say it is ready; the page.
    static func ready(_ browser: WebClient, _ bundle: String) async throws -> WebClient.Page {
        var page = try await browser.get(bundle)
        #expect(try await eventually {
            page = try await browser.get(bundle)
            return !page.text.contains("being built")
        })
        return page
    }

    /// Downloads a ready bundle and checks it against its page: whole, with the digest and size shown.
    static func downloadMatches(_ browser: WebClient, _ bundle: String) async throws {
        let page = try await ready(browser, bundle)
        #expect(page.status == 200)
        let digest = try #require(page.text.firstMatch(of: /<code class="digest">([0-9a-f]{64})<\/code>/).map { String($0.1) })
        let size = try #require(page.text.firstMatch(of: /\(([0-9]+) bytes\)/).flatMap { Int($0.1) })
        let download = try await browser.get(bundle + "/download")
        #expect(download.status == 200)
        #expect(download.header("Content-Disposition")?.hasPrefix("attachment; filename=") == true)
        #expect(download.header("Content-Type") == "application/x-tar")
        #expect(download.header("Cache-Control") == "no-store")
        #expect(download.body.count == size)
        #expect(sha256(download.body).hexString == digest)
    }

    @Test func aSubjectAccessRequestFromOpeningToItsBundle() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let (otherOrg, otherAdmin) = try await d.firm("Jones LLP")
        _ = try await d.recordedCall("call-sar", org: org, admin: admin, file: wavFile(samples: 8000))
        let dpo = try await d.signedIn(.admin, org: org, admin: admin)
        let member = try await d.signedIn(.member, org: org, admin: admin)
        let outsider = try await d.signedIn(.admin, org: otherOrg, admin: otherAdmin)
        defer { dpo.close(); member.close(); outsider.close() }

        let empty = try await dpo.get("/requests")
        #expect(empty.status == 200 && empty.text.contains("No open requests"))
        #expect(empty.text.contains("href=\"/requests\""), "in the navigation")
        let path = try await Self.open(dpo, kind: "access")
        let list = try await dpo.get("/requests")
        #expect(list.text.contains(path) && list.text.contains("Access"))
        #expect(!list.text.contains("07700 900123") && !list.text.contains("900123"), "numbers masked")
        let page = try await dpo.get(path + "?done=opened")
        #expect(page.status == 200 && page.text.contains("The request is open") && page.text.contains("Not yet checked"))
        #expect(!page.text.contains("Build or open the access bundle"), "not before the identity check")
        let located = try await dpo.get(path + "/calls")
        #expect(located.text.contains("1 call(s) from these numbers") && located.text.contains("/calls/call-sar"))

        // A form without its token changes nothing.
        let forged = try await dpo.post(path + "/pause", form: [("reason", "forged")])
        #expect(forged.status == 403)
        #expect(!(try await dpo.get(path)).text.contains("Clock stopped"))
        let paused = try await dpo.post(path + "/pause", form: [("csrf", try #require(page.csrf)), ("reason", "awaiting proof of identity")])
        #expect(paused.status == 303)
        #expect((try await dpo.get(path)).text.contains("Clock stopped"))
        #expect(try await dpo.post(path + "/resume", form: [("csrf", try #require(page.csrf))]).status == 303)
        #expect(try await dpo.post(path + "/extend", form: [("csrf", try #require(page.csrf)), ("reason", "")]).status == 400)
        #expect(try await dpo.post(path + "/extend", form: [("csrf", try #require(page.csrf)), ("reason", "complex")]).status == 303)
        #expect((try await dpo.get(path)).text.contains("(extended: complex)"))
        #expect(try await dpo.post(path + "/identity", form: [("csrf", try #require(page.csrf)), ("result", "passed")]).status == 303)
        let checked = try await dpo.get(path)
        #expect(checked.text.contains("Passed") && checked.text.contains("Build or open the access bundle"))

        let built = try await dpo.post(path + "/bundle", form: [("csrf", try #require(page.csrf))])
        #expect(built.status == 303)
        let bundle = try #require(built.header("Location"))
        #expect(bundle.hasPrefix("/bundles/"))
        try await Self.downloadMatches(dpo, bundle)

        // A member: compliance refuses requests and their bundles.
        for forbidden in ["/requests", path, bundle, bundle + "/download"] {
            #expect(try await member.get(forbidden).status == 403, "\(forbidden)")
        }
        #expect(!(try await member.get("/calls")).text.contains("href=\"/requests\""), "not in a member's navigation")
        // Another firm's admin: not found, the same as an id that does not exist.
        for elsewhere in [path, path + "/calls", path + "/erase", bundle, bundle + "/download"] {
            #expect(try await outsider.get(elsewhere).status == 404, "\(elsewhere)")
        }
        let theirs = try await outsider.get("/requests")
        #expect(try await outsider.post(path + "/close", form: [("csrf", try #require(theirs.csrf)), ("outcome", "no")]).status == 404)

        #expect(try await dpo.post(path + "/close", form: [("csrf", try #require(page.csrf)), ("outcome", "bundle sent by e-mail")]).status == 303)
        let closed = try await dpo.get(path)
        #expect(closed.text.contains("bundle sent by e-mail") && !closed.text.contains("Close the request"))
        #expect(!(try await dpo.get("/requests")).text.contains(path), "closed requests leave the open list")
        #expect((try await dpo.get("/requests?view=all")).text.contains(path))
        await d.stop()
    }

    @Test func erasureNamesWhatGoesThenDeletesTheCalls() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        _ = try await d.recordedCall("call-erase", org: org, admin: admin, file: wavFile(samples: 8000))
        let dpo = try await d.signedIn(.admin, org: org, admin: admin)
        defer { dpo.close() }
        let path = try await Self.open(dpo, kind: "erasure")
        let page = try await dpo.get(path)
        #expect(!page.text.contains("Erase their data…"), "not before the identity check")
        #expect(try await dpo.post(path + "/identity", form: [("csrf", try #require(page.csrf)), ("result", "passed")]).status == 303)
        #expect((try await dpo.get(path)).text.contains("Erase their data…"))
        let confirm = try await dpo.get(path + "/erase")
        #expect(confirm.status == 200)
        #expect(confirm.text.contains("1 call record(s)") && confirm.text.contains("1 recording(s)") && confirm.text.contains("share link"))
        #expect(try await dpo.post(path + "/erase", form: [("csrf", try #require(confirm.csrf))]).status == 400, "not without the box ticked")
        #expect(try await dpo.get("/calls/call-erase").status == 200)
        let erased = try await dpo.post(path + "/erase", form: [("csrf", try #require(confirm.csrf)), ("confirm", "yes")])
        #expect(erased.status == 303)
        #expect(try await eventually { try await dpo.get("/calls/call-erase").status == 404 })
        #expect(try await eventually { try await dpo.get(path).text.contains("Confirmed on") })
        await d.stop()
    }

    @Test func aCallIsExportedToItsMatterFileAndDeletedAfterConfirming() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let (otherOrg, otherAdmin) = try await d.firm("Jones LLP")
        _ = try await d.recordedCall("call-matter", org: org, admin: admin, file: wavFile(samples: 8000))
        _ = try await d.recordedCall("call-gone", org: org, admin: admin, file: wavFile(samples: 8000))
        let member = try await d.signedIn(.member, org: org, admin: admin)
        let analyst = try await d.signedIn(.analyst, org: org, admin: admin)
        let outsider = try await d.signedIn(.admin, org: otherOrg, admin: otherAdmin)
        defer { member.close(); analyst.close(); outsider.close() }

        let call = try await member.get("/calls/call-matter")
        #expect(call.text.contains("Export to matter file") && call.text.contains("/calls/call-matter/delete"))
        let seen = try await analyst.get("/calls/call-matter")
        #expect(seen.status == 200 && !seen.text.contains("Export to matter file") && !seen.text.contains("/calls/call-matter/delete"))
        #expect(try await analyst.get("/calls/call-matter/delete").status == 403)
        #expect(try await analyst.post("/calls/call-matter/delete", form: [("csrf", try #require(seen.csrf)), ("confirm", "yes")]).status == 403)
        #expect(try await analyst.post("/calls/call-matter/export", form: [("csrf", try #require(seen.csrf)), ("reference", "M-1")]).status == 403)
        #expect(try await outsider.get("/calls/call-matter/delete").status == 404)

        let exported = try await member.post("/calls/call-matter/export", form: [("csrf", try #require(call.csrf)), ("reference", "2026/114")])
        #expect(exported.status == 303)
        let bundle = try #require(exported.header("Location"))
        #expect(bundle.hasPrefix("/bundles/"))
        try await Self.downloadMatches(member, bundle)
        #expect(try await analyst.get(bundle).status == 403)
        #expect(try await outsider.get(bundle).status == 404)

        let confirm = try await member.get("/calls/call-gone/delete")
        #expect(confirm.status == 200)
        for what in ["call record", "the recording", "share link", "the transcript", "AI summary"] { #expect(confirm.text.contains(what), "\(what)") }
        #expect(try await member.post("/calls/call-gone/delete", form: [("confirm", "yes")]).status == 403, "not without the form token")
        #expect(try await member.post("/calls/call-gone/delete", form: [("csrf", try #require(confirm.csrf))]).status == 400, "not without the box ticked")
        #expect(try await member.get("/calls/call-gone").status == 200)
        let deleted = try await member.post("/calls/call-gone/delete", form: [("csrf", try #require(confirm.csrf)), ("confirm", "yes"), ("reason", "asked by the caller")])
        #expect(deleted.status == 200 && deleted.text.contains("Call deleted"))
        #expect(try await eventually { try await member.get("/calls/call-gone").status == 404 })
        await d.stop()
    }
}
