import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import Foundation
import Testing
@testable import WebGateway

/// The web gateway over real HTTP, with the four services behind it: signing in and out, the
/// security headers and cookies, form tokens, the player's byte ranges, share links, and the
/// boundaries of roles and firms as a browser meets them.
@Suite(.serialized) struct WebPagesTests {
    @Test func signingInAndOutGoesThroughIdentity() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let email = "reception@firm.example"
        let token = try await d.invite(email, .member, org: org, admin: admin)
        let browser = d.browser()
        defer { browser.close() }

        // The e-mailed link opens the page; a password twice makes the account.
        let invitation = try await browser.get("/accept-invitation?token=\(token)")
        #expect(invitation.status == 200)
        let mismatch = try await browser.post("/accept-invitation", form: [("csrf", try #require(invitation.csrf)), ("token", token),
                                                                          ("password", WebDeployment.password), ("confirm", "something else entirely")])
        #expect(mismatch.status == 400)
        let accepted = try await browser.post("/accept-invitation", form: [("csrf", try #require(invitation.csrf)), ("token", token),
                                                                          ("password", WebDeployment.password), ("confirm", WebDeployment.password)])
        #expect(accepted.status == 303)
        #expect(accepted.header("Location") == "/sign-in?reason=ready&firm=\(org)")
        // Used once: the same link again is refused, plainly.
        let again = try await browser.post("/accept-invitation", form: [("csrf", try #require(invitation.csrf)), ("token", token),
                                                                       ("password", WebDeployment.password), ("confirm", WebDeployment.password)])
        #expect(again.status == 410)

        let wrong = try await d.signIn(browser, org: org, email: email, password: "not the password at all")
        #expect(wrong.status == 401)
        #expect(wrong.text.contains("is not right"))
        #expect(browser.cookies[Cookies.session] == nil)

        let signedIn = try await d.signIn(browser, org: org, email: email)
        #expect(signedIn.status == 303)
        #expect(signedIn.header("Location") == "/calls")
        let sessionCookie = try #require(browser.setCookies.withLock { $0.last { $0.hasPrefix(Cookies.session + "=") } })
        for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] { #expect(sessionCookie.contains(attribute), "\(attribute)") }
        #expect(!sessionCookie.contains("Domain"))
        let value = try #require(browser.cookies[Cookies.session])
        #expect(!value.contains(token) && value.count > 100)  // sealed: the identity token is not readable in it

        let calls = try await browser.get("/calls")
        #expect(calls.status == 200)
        #expect(calls.text.contains("Test member"))

        // Signing out ends the session in identity: the copied cookie opens nothing afterwards.
        let out = try await browser.post("/sign-out", form: [("csrf", try #require(calls.csrf))])
        #expect(out.status == 303)
        #expect(browser.cookies[Cookies.session] == nil)
        browser.setCookie(Cookies.session, value)
        let replayed = try await browser.get("/calls")
        #expect(replayed.status == 302)
        #expect(replayed.header("Location")?.hasPrefix("/sign-in") == true)
        await d.stop()
    }

    @Test func aBrowserWithASessionCanStillAcceptAnInvitationAndSignInAsSomeoneElse() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let browser = try await d.signedIn(.member, org: org, admin: admin)
        defer { browser.close() }
        let firstSession = try #require(browser.cookies[Cookies.session])
        let email = "second@firm.example"
        let token = try await d.invite(email, .analyst, org: org, admin: admin)
        let form = try await browser.get("/accept-invitation?token=\(token)")
        let accepted = try await browser.post("/accept-invitation", form: [("csrf", try #require(form.csrf)), ("token", token),
                                                                          ("password", WebDeployment.password), ("confirm", WebDeployment.password)])
        #expect(accepted.status == 303)
        #expect(try await d.signIn(browser, org: org, email: email).status == 303)
        #expect(try await browser.get("/account").text.contains("Analyst"))
        // The first account's session ended when the second signed in over it.
        let stale = d.browser()
        defer { stale.close() }
        stale.setCookie(Cookies.session, firstSession)
        #expect(try await stale.get("/calls").status == 302)
        await d.stop()
    }

    @Test func everyAnswerCarriesTheSecurityHeaders() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let browser = try await d.signedIn(.member, org: org, admin: admin)
        defer { browser.close() }
        for path in ["/sign-in", "/calls", "/account", "/calls/no-such-call", "/nowhere", "/s/not-a-link"] {
            let page = try await browser.get(path)
            let policy = try #require(page.header("Content-Security-Policy"), "\(path)")
            #expect(policy.contains("frame-ancestors 'none'") && policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"), "\(path)")
            #expect(page.header("X-Content-Type-Options") == "nosniff", "\(path)")
            #expect(page.header("Referrer-Policy") == "no-referrer", "\(path)")
            #expect(page.header("Cache-Control") == "no-store", "\(path)")
            #expect(!page.text.contains("<script>") && !page.text.contains("style="), "\(path): nothing inline")
        }
        let style = try await browser.get("/static/app.css")
        #expect(style.status == 200 && style.header("Cache-Control")?.contains("max-age") == true)
        #expect(try await browser.get("/nowhere").status == 404)
        await d.stop()
    }

    @Test func aFormWithoutItsTokenChangesNothing() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        _ = try await d.recordedCall("call-csrf", org: org, admin: admin, file: wavFile(samples: 8000))
        let member = try await d.signedIn(.member, org: org, admin: admin)
        let other = try await d.signedIn(.member, org: org, admin: admin)
        defer { member.close(); other.close() }
        let othersToken = try #require(try await other.get("/calls").csrf)
        for form in [[("enquiry", "new")], [("csrf", ""), ("enquiry", "new")], [("csrf", othersToken), ("enquiry", "new")]] {
            let refused = try await member.post("/calls/call-csrf/outcome", form: form)
            #expect(refused.status == 403)
        }
        let page = try await member.get("/calls/call-csrf")
        #expect(page.text.contains("Not marked"))
        // A sign-in form without the pre-session cookie's token is refused too.
        let fresh = d.browser()
        defer { fresh.close() }
        #expect(try await fresh.post("/sign-in", form: [("csrf", "made-up"), ("firm", org), ("email", "x@firm.example"), ("password", "x")]).status == 403)
        await d.stop()
    }

    @Test(.overTLS) func thePlayerStreamsByteRangesThroughMedia() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let file = wavFile(samples: 40_000)
        let recording = try await d.recordedCall("call-play", org: org, admin: admin, file: file)
        let member = try await d.signedIn(.member, org: org, admin: admin)
        defer { member.close() }
        let size = file.count
        let page = try await member.get("/calls/call-play")
        #expect(page.text.contains("/recordings/\(recording.recordingID)/audio"))
        let path = "/recordings/\(recording.recordingID)/audio"

        let whole = try await member.get(path)
        #expect(whole.status == 200 && whole.body == file)
        #expect(whole.header("Accept-Ranges") == "bytes" && whole.header("Cache-Control") == "no-store")
        let cases: [(String, Int, Range<Int>?)] = [
            ("bytes=0-99", 206, 0..<100), ("bytes=1000-", 206, 1000..<size), ("bytes=-500", 206, (size - 500)..<size),
            ("bytes=\(size - 10)-\(size + 5000)", 206, (size - 10)..<size), ("bytes=0-0", 206, 0..<1),
            ("bytes=-\(size * 10)", 206, 0..<size),
            ("bytes=\(size)-", 416, nil), ("bytes=99999999999999999999999-", 416, nil),
            ("bytes=50-10", 200, 0..<size), ("bytes=0-1,5-9", 200, 0..<size), ("pages=1-2", 200, 0..<size), ("bytes=abc", 200, 0..<size),
        ]
        for (range, status, expected) in cases {
            let answer = try await member.get(path, headers: ["Range": range])
            #expect(answer.status == status, "\(range)")
            if let expected {
                #expect(answer.body == file.subdata(in: expected), "\(range)")
                if status == 206 { #expect(answer.header("Content-Range") == "bytes \(expected.lowerBound)-\(expected.upperBound - 1)/\(size)", "\(range)") }
            } else {
                #expect(answer.header("Content-Range") == "bytes */\(size)", "\(range)")
            }
        }
        // Every ranged read was a play that media audited, under the member.
        let plays = try d.services.auditEvents().filter { $0.action.contains("play") && $0.resource.contains(recording.recordingID) }
        #expect(plays.count >= 7)
        await d.stop()
    }

    @Test func rolesAndFirmsBoundWhatAPageShows() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm("Smith & Co Solicitors")
        let (otherOrg, otherAdmin) = try await d.firm("Jones Legal LLP")
        let recording = try await d.recordedCall("call-bound", org: org, admin: admin, file: wavFile(samples: 8000))
        _ = try await d.recordedCall("call-theirs", org: otherOrg, admin: otherAdmin, file: wavFile(samples: 8000))
        let analyst = try await d.signedIn(.analyst, org: org, admin: admin)
        let outsider = try await d.signedIn(.admin, org: otherOrg, admin: otherAdmin)
        defer { analyst.close(); outsider.close() }

        // The analyst sees the call, but no player, no transcript and no audio.
        let page = try await analyst.get("/calls/call-bound")
        #expect(page.status == 200)
        #expect(!page.text.contains("<audio") && !page.text.contains("Transcript"))
        #expect(try await analyst.get("/recordings/\(recording.recordingID)/audio").status == 403)
        #expect(try await analyst.post("/calls/call-bound/share", form: [("csrf", try #require(page.csrf)), ("days", "7")]).status == 403)

        // Another firm's ids in the URL: not found, exactly as a made-up one.
        let theirs = try await outsider.get("/calls/call-bound")
        #expect(theirs.status == 404)
        #expect(try await outsider.get("/calls/made-up-call").status == 404)
        #expect([403, 404].contains(try await outsider.get("/recordings/\(recording.recordingID)/audio").status))
        let list = try await outsider.get("/calls")
        #expect(list.text.contains("call-theirs") && !list.text.contains("call-bound"))

        // Signed out: every page sends the browser to sign in, coming back afterwards.
        let stranger = d.browser()
        defer { stranger.close() }
        let redirected = try await stranger.get("/calls/call-bound")
        #expect(redirected.status == 302 && redirected.header("Location") == "/sign-in?next=/calls/call-bound")
        #expect(try await stranger.get("/recordings/\(recording.recordingID)/audio").status == 302)
        await d.stop()
    }

    @Test func aShareLinkPlaysUntilRevokedAndEveryFailureLooksTheSame() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let file = wavFile(samples: 16_000)
        _ = try await d.recordedCall("call-share", org: org, admin: admin, file: file)
        let member = try await d.signedIn(.member, org: org, admin: admin)
        defer { member.close() }
        let callPage = try await member.get("/calls/call-share")
        let made = try await member.post("/calls/call-share/share", form: [("csrf", try #require(callPage.csrf)), ("days", "3"),
                                                                          ("note", "counsel's review")])
        #expect(made.status == 200)
        let link = try #require(made.text.firstMatch(of: /value="(http:\/\/localhost:8080\/s\/[A-Za-z0-9_-]+)"/).map { String($0.1) })
        let path = String(link.dropFirst("http://localhost:8080".count))

        let holder = d.browser()  // never signed in
        defer { holder.close() }
        let shared = try await holder.get(path)
        #expect(shared.status == 200 && shared.text.contains("<audio"))
        #expect(shared.header("Referrer-Policy") == "no-referrer" && shared.header("Cache-Control") == "no-store")
        let ranged = try await holder.get(path + "/audio", headers: ["Range": "bytes=100-199"])
        #expect(ranged.status == 206 && ranged.body == file.subdata(in: 100..<200))
        // The page and the audio's look at the size are not opens: the one range read is.
        let counted = try await Calltrace_Media_V1_ShareLinkServiceClient(try d.services.media.client())
            .listShareLinks(.with { $0.orgID = org }, options: try bearer(admin)).links
        #expect(counted.map(\.opens) == [1])

        // Revoked: gone, with the same page as a link altered by one character, or made up.
        let linkID = try #require(try await member.get("/calls/call-share").text.firstMatch(of: /share\/(lnk[^\/"]*|[^\/"]+)\/revoke/).map { String($0.1) })
        let revoked = try await member.post("/calls/call-share/share/\(linkID)/revoke", form: [("csrf", try #require(callPage.csrf))])
        #expect(revoked.status == 303)
        let altered = String(path.dropLast()) + (path.hasSuffix("A") ? "B" : "A")
        var pages: [String] = []
        for attempt in [path, altered, "/s/made-up"] {
            let answer = try await holder.get(attempt)
            #expect(answer.status == 404, "\(attempt)")
            pages.append(answer.text)
            #expect(try await holder.get(attempt + "/audio").status == 404)
        }
        #expect(Set(pages).count == 1)
        await d.stop()
    }

    @Test func twoFactorIsSetUpFromTheAccountPage() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let email = "partner@firm.example"
        let token = try await d.invite(email, .member, org: org, admin: admin)
        let browser = d.browser()
        defer { browser.close() }
        let form = try await browser.get("/accept-invitation?token=\(token)")
        _ = try await browser.post("/accept-invitation", form: [("csrf", try #require(form.csrf)), ("token", token),
                                                               ("password", WebDeployment.password), ("confirm", WebDeployment.password)])
        try await d.signIn(browser, org: org, email: email)
        let account = try await browser.get("/account")
        let enrol = try await browser.post("/account/two-factor", form: [("csrf", try #require(account.csrf)), ("password", WebDeployment.password)])
        #expect(enrol.status == 200)
        #expect(enrol.text.contains("<svg") && enrol.text.contains("aria-label=\"QR code"))
        let secret = try #require(enrol.text.firstMatch(of: /id="secret" class="secret">([A-Z2-7]+)</).map { String($0.1) })
        let now = d.services.identity.clock.nowUnixMs / 1000
        let confirmed = try await browser.post("/account/two-factor/confirm", form: [("csrf", try #require(account.csrf)),
                                                                                     ("code", TOTP.code(secret: try #require(base32(secret)), unixTime: now))])
        #expect(confirmed.text.contains("Two-factor authentication is on"))

        let next = d.browser()
        defer { next.close() }
        #expect(try await d.signIn(next, org: org, email: email).status == 401)  // the code is needed now
        d.services.identity.clock.advance(by: .seconds(30))
        let code = TOTP.code(secret: try #require(base32(secret)), unixTime: d.services.identity.clock.nowUnixMs / 1000)
        #expect(try await d.signIn(next, org: org, email: email, code: code).status == 303)
        await d.stop()
    }

    @Test("A person chooses their e-mail alerts on the account page; an analyst is offered only what their role may see")
    func alertsAreChosenOnTheAccountPage() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let member = try await d.signedIn(.member, org: org, admin: admin)
        defer { member.close() }
        let account = try await member.get("/account/alerts")
        #expect(account.text.contains("E-mail alerts") && account.text.contains("name=\"alert-1\"") && account.text.contains("name=\"alert-2\""))
        #expect(!account.text.contains("name=\"alert-3\""), "subject requests are not a member's")
        let saved = try await member.post("/account/alerts", form: [("csrf", try #require(account.csrf)), ("alert-1", "yes"), ("alert-4", "yes")])
        #expect(saved.status == 200 && saved.text.contains("Your e-mail alerts are saved."))
        #expect(saved.text.contains("name=\"alert-1\" value=\"yes\" checked") && saved.text.contains("name=\"alert-4\" value=\"yes\" checked"))
        #expect(!saved.text.contains("name=\"alert-2\" value=\"yes\" checked"))
        // Without the form's token, nothing changes.
        #expect(try await member.post("/account/alerts", form: [("alert-2", "yes")]).status == 403)

        let analyst = try await d.signedIn(.analyst, org: org, admin: admin)
        defer { analyst.close() }
        let theirs = try await analyst.get("/account")
        #expect(theirs.text.contains("name=\"alert-1\"") && theirs.text.contains("name=\"alert-4\"") && !theirs.text.contains("name=\"alert-2\""))
        // A box the page never offered is refused by identity, whatever the form says.
        let forged = try await analyst.post("/account/alerts", form: [("csrf", try #require(theirs.csrf)), ("alert-2", "yes")])
        #expect(forged.status == 403)
        await d.stop()
    }

    @Test func hostileInputGetsAPlainAnswer() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let member = try await d.signedIn(.member, org: org, admin: admin)
        defer { member.close() }
        let csrf = try #require(try await member.get("/calls").csrf)
        // Not a form, too large, a broken escape, a huge field: refused, and the gateway serves on.
        #expect(try await member.post("/calls/x/outcome", body: Data("%ZZ=%".utf8)).status == 400)
        #expect(try await member.post("/calls/x/outcome", body: Data(repeating: 0x41, count: 200_000)).status >= 400)
        #expect(try await member.post("/calls/x/outcome", form: [("csrf", csrf), ("reference", String(repeating: "r", count: 5000))]).status == 400)
        for (path, status) in [("/calls?from=yesterday", 400), ("/calls/%00", 400), ("/calls/\(String(repeating: "a", count: 3000))", 400),
                               ("/calls?page=%FF%FE", 200), ("/calls?page=not-a-token", 400)] {
            let answer = try await member.get(path)
            #expect(answer.status == status, "\(path)")
            #expect(!answer.text.contains("Swift") && !answer.text.contains("RPCError"), "\(path)")
        }
        // After sign-in, only a path of this site: never another host.
        let browser = d.browser()
        defer { browser.close() }
        let form = try await browser.get("/sign-in?next=//evil.example/x")
        #expect(form.text.contains("name=\"next\" value=\"/calls\""))
        #expect(try await member.get("/calls").status == 200)
        await d.stop()
    }
}

/// RFC 4648 base32 (no padding) to bytes.
func base32(_ text: String) -> Data? {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    var bits = 0, buffer = 0
    var out = Data()
    for character in text {
        guard let index = alphabet.firstIndex(of: character) else { return nil }
        buffer = (buffer << 5) | index
        bits += 5
        if bits >= 8 {
            bits -= 8
            out.append(UInt8((buffer >> bits) & 0xff))
        }
    }
    return out
}

/// What ends or narrows a person's access shows on the next page, because every page asks
/// identity: an idle session, a suspension, a role taken away; and the gateway will not start as
/// anything but a gateway.
@Suite(.serialized) struct WebSessionEndTests {
    @Test(arguments: [true, false])
    func theFirmsAddressListSeesTheBrowserThroughNginxOnly(nginxTrusted: Bool) async throws {
        let d = try await WebDeployment { if nginxTrusted { try? $0.set("trusted_proxies", "127.0.0.1") } }
        let (org, admin) = try await d.firm()
        let email = "office@firm.example"
        let token = try await d.invite(email, .member, org: org, admin: admin)
        _ = try await Calltrace_Identity_V1_IdentityServiceClient(try d.services.identity.client()).setSecurityPolicy(.with {
            $0.orgID = org
            $0.allowedClientRanges = ["203.0.113.0/24"]
        }, options: try bearer(admin))
        let office = ["X-Forwarded-For": "198.51.100.250, 203.0.113.9"]  // the client's own claim, then nginx's
        let browser = d.browser()
        defer { browser.close() }
        let form = try await browser.get("/accept-invitation?token=\(token)")
        _ = try await browser.post("/accept-invitation", form: [("csrf", try #require(form.csrf)), ("token", token),
                                                               ("password", WebDeployment.password), ("confirm", WebDeployment.password)])
        let fromOffice = try await d.signIn(browser, org: org, email: email, headers: office)
        if nginxTrusted {
            // nginx's word is believed: the office address signs in, and pages open from it.
            #expect(fromOffice.status == 303)
            #expect(try await browser.get("/calls", headers: office).status == 200)
            #expect(try await browser.get("/calls", headers: ["X-Forwarded-For": "198.51.100.7"]).status == 403)
        } else {
            // Without trusted proxies the header is nobody's word: the connection (127.0.0.1) is outside the list.
            #expect(fromOffice.status != 303)
        }
        await d.stop()
    }

    @Test func aCallWhoseRecordingWasDeletedStillHasItsPage() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let recording = try await d.recordedCall("call-gone", org: org, admin: admin, file: wavFile(samples: 8000))
        let member = try await d.signedIn(.member, org: org, admin: admin)
        defer { member.close() }
        _ = try await d.services.gateway.deleteRecording(.with { $0.orgID = org; $0.recordingID = recording.recordingID }, options: try bearer(admin))
        let page = try await member.get("/calls/call-gone")
        #expect(page.status == 200)
        #expect(page.text.contains("The recording was deleted") && !page.text.contains("<audio"))
        await d.stop()
    }

    @Test func anIdleSessionEndsAtTheFirmsTimeoutAndTheNextPageSaysSo() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let member = try await d.signedIn(.member, org: org, admin: admin)
        defer { member.close() }
        #expect(try await member.get("/calls").status == 200)
        // Past the default idle time (identity's clock: the session is identity's).
        d.services.identity.clock.advance(by: .seconds(8 * 3600 + 1))
        let ended = try await member.get("/calls")
        #expect(ended.status == 302)
        #expect(ended.header("Location") == "/sign-in?next=/calls&reason=ended")
        #expect(member.cookies[Cookies.session] == nil)  // the dead cookie is cleared
        let page = try await member.get("/sign-in?reason=ended")
        #expect(page.text.contains("Your session ended"))
        await d.stop()
    }

    @Test func aSuspendedUserOrANarrowedRoleIsRefusedOnTheNextPage() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        _ = try await d.recordedCall("call-narrow", org: org, admin: admin, file: wavFile(samples: 8000))
        let member = try await d.signedIn(.member, org: org, admin: admin)
        let other = try await d.signedIn(.member, org: org, admin: admin)
        defer { member.close(); other.close() }
        let identity = Calltrace_Identity_V1_IdentityServiceClient(try d.services.identity.client())
        let users = try await identity.listUsers(.with { $0.orgID = org }, options: try bearer(admin)).users
        let memberID = try #require(users.first { $0.email == member.email }?.userID)
        let otherID = try #require(users.first { $0.email == other.email }?.userID)
        // A role taken down to analyst: the player goes at once.
        let recordingPath = try #require(try await member.get("/calls/call-narrow").text.firstMatch(of: /\/recordings\/[^"]+\/audio/).map { String($0.0) })
        _ = try await identity.changeUserRole(.with { $0.orgID = org; $0.userID = memberID; $0.role = .analyst }, options: try bearer(admin))
        let narrowed = try await member.get("/calls/call-narrow")
        #expect(narrowed.status == 200 && !narrowed.text.contains("<audio"))
        #expect(try await member.get(recordingPath).status == 403)
        // Suspended: every session of theirs ends; the next page sends them to sign in.
        _ = try await identity.suspendUser(.with { $0.orgID = org; $0.userID = otherID }, options: try bearer(admin))
        let suspended = try await other.get("/calls")
        #expect(suspended.status == 302 && suspended.header("Location")?.hasPrefix("/sign-in") == true)
        await d.stop()
    }

    @Test func theGatewayStartsOnlyUnderAGatewayCertificateWithItsSettingsWhole() async throws {
        let pki = try TemporaryPKI()
        let service = try pki.credentials(for: TemporaryPKI.identity("service", "web"))
        let wrongCertificate = await #expect(throws: ConfigurationError.self) {
            _ = try await InProcessService.start(WebService.self, pki: pki) {
                $0.certificate = service.certificateChainPath
                $0.privateKey = service.privateKeyPath
            }
        }
        #expect(wrongCertificate?.description.contains("not spiffe://<trust-domain>/gateway/web") == true)
        // Each setting is checked as it is read, naming itself.
        var configuration = ServiceConfiguration.defaults(service: "web", port: 7105, settings: WebSettings.self)
        for (key, value) in [("http_listen", "8080"), ("public_url", "http://calltrace.firm.example"), ("trusted_proxies", "nginx")] {
            let error = #expect(throws: ConfigurationError.self) { try configuration.set(key, value) }
            #expect(error?.description.contains(key) == true, "\(key)=\(value)")
        }
        // A port in use, and https behind nginx without its address: refused at the start.
        let blocker = try TCPBlocker()
        let inUse = await #expect(throws: ConfigurationError.self) {
            _ = try await InProcessService.start(WebService.self) { try? $0.set("http_listen", "127.0.0.1:\(blocker.port)") }
        }
        #expect(inUse?.description.contains("cannot be bound") == true)
        let unproxied = await #expect(throws: ConfigurationError.self) {
            _ = try await InProcessService.start(WebService.self) { try? $0.set("public_url", "https://calltrace.firm.example") }
        }
        #expect(unproxied?.description.contains("trusted_proxies") == true)
        withExtendedLifetime(blocker) {}
        // Templates not where it looks: refused at the start, not at the first page.
        await #expect(throws: WebSetupError.self) {
            _ = try await InProcessService.start(WebService.self) { $0[WebSettings.self].assets = "/nonexistent" }
        }
    }
}

/// A port held by a plain listening socket, for as long as the value lives.
final class TCPBlocker: @unchecked Sendable {
    let port: Int
    private let fd: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw ConfigurationError("no port to block") }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}
