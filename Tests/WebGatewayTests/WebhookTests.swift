import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceSync
import CallTraceTestSupport
import Foundation
import Testing
@testable import WebGateway

/// The firms' outgoing webhooks (issue 30), end to end: the four services and the web gateway in
/// process, a receiver over real HTTPS with a CA of its own (`webhook_ca_file`), time moved on
/// the gateway's test clock and the queue driven with `runDue()`.
final class WebhookRig: @unchecked Sendable {
    let d: WebDeployment
    let receiver: FakeHTTPSServer
    let receiverPKI: TemporaryPKI
    let org: String
    let admin: String
    let browser: WebClient

    init() async throws {
        let receiverPKI = try TemporaryPKI()
        self.receiverPKI = receiverPKI
        receiver = try FakeHTTPSServer(credentials: try receiverPKI.credentials(for: TemporaryPKI.identity("service", "crm"))) { _ in
            .json(#"{"ok":true}"#)
        }
        d = try await WebDeployment {
            try? $0.set("webhook_allow_private_addresses", "true")  // the receiver is on loopback
            try? $0.set("webhook_ca_file", receiverPKI.caPath)
        }
        let firm = try await d.firm()
        org = firm.org
        admin = firm.admin
        browser = try await d.signedIn(.admin, org: org, admin: admin)
    }

    func stop() async {
        browser.close()
        receiver.stop()
        await d.stop()
    }

    var jobs: JobQueue { d.web.instance.jobs }

    /// Adds a webhook on the page; its id and the secret the page shows once.
    func addWebhook(events: [String] = ["call.completed", "transcript.ready"], fields: [String] = ["source", "outcome", "duration_seconds"],
                    path: String = "/hooks/calltrace?key=crm-key-123", as browser: WebClient? = nil) async throws -> (id: String, secret: String, page: WebClient.Page) {
        let browser = browser ?? self.browser
        let form = try await browser.get("/settings/webhooks")
        var values = [("csrf", try #require(form.csrf)), ("url", receiver.url + path)]
        values += events.map { ("event-\($0)", "yes") } + fields.map { ("field-\($0)", "yes") }
        let page = try await browser.post("/settings/webhooks", form: values)
        let secret = page.text.firstMatch(of: /<code class="secret">(whsec_[A-Za-z0-9_-]+)<\/code>/).map { String($0.1) } ?? ""
        let id = page.text.firstMatch(of: /href="\/settings\/webhooks\/(whk_[0-9a-f]+)"/).map { String($0.1) } ?? ""
        return (id, secret, page)
    }

    /// A call of the firm, started and completed by the telephony gateway.
    func completedCall(_ id: String) async throws {
        try await d.services.calls.start(id, in: org)
        _ = try await Calltrace_Transcript_V1_CallServiceClient(try d.services.calls.transcript.client(identity: TemporaryPKI.telephony)).completeCall(.with {
            $0.orgID = org; $0.callID = id; $0.outcome = .answered; $0.durationMs = 95_000
        })
    }

    /// The poll's next turn (the schedule every 15 s on the gateway's clock, moved on once), then
    /// the jobs due, until `condition` holds. A retry's backoff is not reached meanwhile.
    func pollUntil(_ condition: () async throws -> Bool) async rethrows -> Bool {
        d.web.clock.advance(by: .seconds(16))
        return try await eventually {
            await jobs.runDue()
            return try await condition()
        }
    }

    /// A poll every round until `condition` holds (for what real time decides, such as another
    /// service's short cache of a token it allowed).
    func pollRepeatedly(until condition: () async throws -> Bool) async rethrows -> Bool {
        try await eventually {
            d.web.clock.advance(by: .seconds(16))
            await jobs.runDue()
            return try await condition()
        }
    }

    /// The gateway's stored deliveries, newest first.
    func deliveries(_ webhook: String) async throws -> [WebhookDelivery] {
        try await SQLiteWebhookRepository(database: d.web.instance.database).read { tx in try tx.deliveries(subscription: webhook, limit: 100) }
    }
}

/// A signature header's parts, checked as a receiver would: HMAC-SHA256 of "<t>.<body>" under the secret.
func verifies(_ request: FakeHTTPSServer.Request, secret: String) -> Bool {
    guard let header = request.headers["calltrace-signature"] else { return false }
    let parts = Dictionary(uniqueKeysWithValues: header.split(separator: ",").compactMap { part -> (String, String)? in
        let pair = part.split(separator: "=", maxSplits: 1)
        return pair.count == 2 ? (String(pair[0]), String(pair[1])) : nil
    })
    guard let t = parts["t"], let v1 = parts["v1"], Int64(t) != nil else { return false }
    let expected = MessageSignature.hex(MessageSignature.hmacSHA256(key: Data(secret.utf8), message: Data("\(t).".utf8) + request.body))
    return v1 == expected
}

/// Counts a receiver's answers.
final class Answers: Sendable {
    private let count = Locked(0)
    func next() -> Int { count.withLock { $0 += 1; return $0 } }
}

func body(_ request: FakeHTTPSServer.Request) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: request.body) as? [String: Any])
}

@Suite("Webhooks", .serialized)
struct WebhookTests {
    @Test("A completed call makes exactly one signed delivery with only the fields chosen; its transcript another; a receiver answering 500 gets it again, then it is delivered once")
    func deliveries() async throws {
        let rig = try await WebhookRig()
        let (id, secret, created) = try await rig.addWebhook()
        #expect(created.status == 200 && secret.hasPrefix("whsec_") && id.hasPrefix("whk_"), "\(created.text.prefix(400))")
        // The secret is shown this once: not on the list, nor on the webhook's page.
        #expect(!(try await rig.browser.get("/settings/webhooks")).text.contains(secret))
        #expect(!(try await rig.browser.get("/settings/webhooks/\(id)")).text.contains(secret))
        // A webhook sends what happens from its making on: a call completed before it is not sent.
        try await rig.completedCall("call-w1")
        #expect(try await rig.pollUntil { rig.receiver.requests.count == 1 })
        let first = try #require(rig.receiver.requests.first)
        #expect(first.method == "POST" && first.path == "/hooks/calltrace" && first.query["key"] == "crm-key-123")
        #expect(verifies(first, secret: secret), "the signature verifies with the secret shown")
        #expect(!verifies(first, secret: secret + "x"))
        let event = try body(first)
        #expect(event["type"] as? String == "call.completed" && event["id"] as? String == first.headers["calltrace-event-id"])
        let data = try #require(event["data"] as? [String: Any])
        #expect(Set(data.keys) == ["call_id", "source", "outcome", "duration_seconds"], "only the fields chosen: \(data.keys)")
        #expect(data["call_id"] as? String == "call-w1" && data["outcome"] as? String == "answered" && data["duration_seconds"] as? Int == 95)
        #expect(!String(decoding: first.body, as: UTF8.self).contains("7700"), "no phone number unless ticked")
        // Nothing more to send: more polls send nothing again.
        #expect(try await rig.pollUntil { true })
        await rig.jobs.runDue()
        #expect(rig.receiver.requests.count == 1)

        // The transcript ready: another delivery, signed likewise, still only the chosen fields (never the words).
        _ = try await Calltrace_Transcript_V1_TranscriptServiceClient(try rig.d.services.calls.transcript.client(identity: TemporaryPKI.telephony)).submitTranscript(.with {
            $0.orgID = rig.org; $0.callID = "call-w1"; $0.segments = [.with { $0.speaker = "caller"; $0.text = "My landlord kept the deposit." }]
        })
        #expect(try await rig.pollUntil { rig.receiver.requests.count == 2 })
        let second = rig.receiver.requests[1]
        let secondType = try body(second)["type"] as? String
        #expect(verifies(second, secret: secret) && secondType == "transcript.ready")
        #expect(!String(decoding: second.body, as: UTF8.self).contains("landlord"), "the transcript's words are never sent")

        // A receiver answering 500: the delivery is tried again after the queue's backoff, then delivered, once.
        let answers = Answers()
        rig.receiver.respond { _ in answers.next() == 1 ? .json(#"{"error":"down"}"#, status: 500) : .json(#"{"ok":true}"#) }
        try await rig.completedCall("call-w2")
        #expect(try await rig.pollUntil { rig.receiver.requests.count == 3 })
        #expect(try await eventually { try await rig.deliveries(id).first?.lastStatus == 500 })
        let failed = try #require(try await rig.deliveries(id).first)
        #expect(failed.state == .pending && failed.attempts == 1 && failed.callID == "call-w2")
        #expect(try await eventually {
            rig.d.web.clock.advance(by: .seconds(2))  // past the first backoff (1 s ± 20%)
            await rig.jobs.runDue()
            return rig.receiver.requests.count == 4
        })
        let retried = rig.receiver.requests[3]
        #expect(retried.headers["calltrace-event-id"] == rig.receiver.requests[2].headers["calltrace-event-id"], "the same event, again")
        let retriedCall = (try body(retried)["data"] as? [String: Any])?["call_id"] as? String
        #expect(verifies(retried, secret: secret) && retriedCall == "call-w2")
        #expect(try await eventually { try await rig.deliveries(id).first?.state == .delivered })
        let delivered = try #require(try await rig.deliveries(id).first)
        #expect(delivered.attempts == 2 && delivered.lastStatus == 200 && delivered.deliveredAt != nil)
        rig.d.web.clock.advance(by: .seconds(3600))
        await rig.jobs.runDue()
        #expect(rig.receiver.requests.count == 4, "delivered once: nothing is sent again")
        // The page lists the deliveries with their state and answer.
        let page = try await rig.browser.get("/settings/webhooks/\(id)")
        #expect(page.status == 200 && page.text.contains("Delivered") && page.text.contains("HTTP 200"))
        // Nothing of a call's content is in the gateway's database (ids and states only).
        let stored = try await rig.d.web.instance.database.read { db in
            try db.query("SELECT call_id, event, state FROM webhook_deliveries").map { "\($0.text("call_id") ?? "") \($0.text("event") ?? "")" }
        }
        #expect(stored.count == 3 && !stored.joined().contains("landlord"))
        // A test event: signed, no call, no data.
        let detail = try await rig.browser.get("/settings/webhooks/\(id)")
        #expect(try await rig.browser.post("/settings/webhooks/\(id)/test", form: [("csrf", try #require(detail.csrf))]).status == 303)
        #expect(try await eventually { await rig.jobs.runDue(); return rig.receiver.requests.count == 5 })
        let test = try body(rig.receiver.requests[4])
        #expect(test["type"] as? String == "webhook.test" && (test["data"] as? [String: Any])?.isEmpty == true && verifies(rig.receiver.requests[4], secret: secret))
        // The gateway's log never holds the URL's query, the secret or a token.
        let log = rig.d.web.log.text
        #expect(!log.contains("crm-key-123") && !log.contains(secret) && !log.contains("ctk_"))
        await rig.stop()
    }

    @Test("A firm that limits the addresses CallTrace is used from still gets its deliveries: the webhook's token is the gateway's to present, for nobody at an address")
    func addressAllowList() async throws {
        let rig = try await WebhookRig()
        var office = try bearer(rig.admin)
        try office.metadata.add("x-client-address", "127.0.0.1")  // where the test's browser signs in from
        let identity = Calltrace_Identity_V1_IdentityServiceClient(try rig.d.services.identity.client())
        _ = try await identity.setSecurityPolicy(.with { $0.orgID = rig.org; $0.allowedClientRanges = ["127.0.0.0/8"] }, options: office)
        let (id, secret, created) = try await rig.addWebhook()
        #expect(created.status == 200 && !id.isEmpty, "\(created.text.prefix(400))")
        let token = try #require(try await identity.listApiTokens(.with { $0.orgID = rig.org; $0.allUsers = true }, options: office)
            .apiTokens.first { $0.name.hasPrefix("webhook: ") })
        #expect(token.heldByGateway == "web", "kept by the gateway that made it")
        try await rig.completedCall("call-a1")
        #expect(try await rig.pollUntil { rig.receiver.requests.count == 1 }, "polled and delivered with no address to check")
        #expect(verifies(try #require(rig.receiver.requests.first), secret: secret))
        let subscription = try await SQLiteWebhookRepository(database: rig.d.web.instance.database).read { tx in try tx.subscription(id, org: rig.org) }
        #expect(subscription?.pausedReason == nil)
        await rig.stop()
    }

    @Test("A revoked API token pauses the webhook, with the reason on its page; delete revokes its token")
    func revokedToken() async throws {
        let rig = try await WebhookRig()
        let (id, _, _) = try await rig.addWebhook()
        let identity = Calltrace_Identity_V1_IdentityServiceClient(try rig.d.services.identity.client())
        let users = try await identity.listApiTokens(.with { $0.orgID = rig.org; $0.allUsers = true }, options: try bearer(rig.admin)).apiTokens
        let token = try #require(users.first { $0.name.hasPrefix("webhook: ") })
        #expect(token.name == "webhook: localhost" && Set(token.permissions) == [.reportsRead], "the least the chosen fields need")
        _ = try await identity.revokeApiToken(.with { $0.orgID = rig.org; $0.tokenID = token.tokenID }, options: try bearer(rig.admin))
        // Polled until transcript asks identity again (it keeps an allow for a few seconds), which refuses: paused.
        #expect(try await rig.pollRepeatedly {
            try await SQLiteWebhookRepository(database: rig.d.web.instance.database).read { tx in try tx.subscription(id, org: rig.org) }?.pausedReason != nil
        })
        // A call completed now is not sent.
        try await rig.completedCall("call-r1")
        #expect(try await rig.pollUntil { true })
        let page = try await rig.browser.get("/settings/webhooks/\(id)")
        #expect(page.text.contains("data-test=\"paused-reason\"") && page.text.contains("API token") && page.text.contains("Paused"))
        #expect(rig.receiver.requests.isEmpty, "nothing was sent with a refused token")
        // Deleting it: gone from the list (and its already revoked token is no error).
        #expect(try await rig.browser.post("/settings/webhooks/\(id)/delete", form: [("csrf", try #require(page.csrf))]).status == 303)
        #expect(try await rig.browser.get("/settings/webhooks/\(id)").status == 404)

        // A second one, with the caller's number ticked: its token gets transcripts.read too; deleting it revokes it.
        let (second, _, _) = try await rig.addWebhook(fields: ["caller_number"])
        let tokens = try await identity.listApiTokens(.with { $0.orgID = rig.org; $0.allUsers = true }, options: try bearer(rig.admin)).apiTokens
        let live = try #require(tokens.first { $0.name.hasPrefix("webhook: ") && $0.revokedAtUnixMs == 0 })
        #expect(Set(live.permissions) == [.reportsRead, .transcriptsRead])
        try await rig.completedCall("call-r2")
        #expect(try await rig.pollUntil { rig.receiver.requests.count == 1 })
        #expect(((try body(rig.receiver.requests[0]))["data"] as? [String: Any])?["caller_number"] as? String == "+447700900123")
        let detail = try await rig.browser.get("/settings/webhooks/\(second)")
        _ = try await rig.browser.post("/settings/webhooks/\(second)/delete", form: [("csrf", try #require(detail.csrf))])
        let after = try await identity.listApiTokens(.with { $0.orgID = rig.org; $0.allUsers = true }, options: try bearer(rig.admin)).apiTokens
        #expect(after.first { $0.tokenID == live.tokenID }?.revokedAtUnixMs ?? 0 > 0, "its token revoked with it")
        await rig.stop()
    }

    @Test("Pausing holds deliveries and resuming sends them; a member is refused the page and the API; another firm's webhook is not found; the API lists, makes (no wider than the caller's token) and deletes")
    func refusals() async throws {
        let rig = try await WebhookRig()
        let (id, _, _) = try await rig.addWebhook()
        // Paused: a call completes, nothing goes; resumed: it goes.
        var detail = try await rig.browser.get("/settings/webhooks/\(id)")
        #expect(try await rig.browser.post("/settings/webhooks/\(id)/pause", form: [("csrf", try #require(detail.csrf))]).status == 303)
        try await rig.completedCall("call-p1")
        _ = await rig.pollUntil { true }
        await rig.jobs.runDue()
        #expect(rig.receiver.requests.isEmpty)
        detail = try await rig.browser.get("/settings/webhooks/\(id)")
        #expect(detail.text.contains("Resume"))
        #expect(try await rig.browser.post("/settings/webhooks/\(id)/resume", form: [("csrf", try #require(detail.csrf))]).status == 303)
        #expect(try await rig.pollUntil { rig.receiver.requests.count == 1 })

        // A member: no page, no API.
        let member = try await rig.d.signedIn(.member, org: rig.org, admin: rig.admin)
        defer { member.close() }
        #expect(try await member.get("/settings/webhooks").status == 403)
        #expect(try await member.get("/settings/webhooks/\(id)").status == 403)
        let memberSession = try await rig.d.services.user(.member, in: rig.org, admin: rig.admin)
        let memberToken = try await rig.d.apiToken(memberSession, org: rig.org, [.reportsRead])
        let contract = try OpenAPIContract()
        let memberAPI = rig.d.api(memberToken.secret, firm: rig.org, contract: contract)
        defer { memberAPI.http.close() }
        #expect(try await memberAPI.call("GET", "/webhooks").status == 403)
        #expect(try await memberAPI.call("DELETE", "/webhooks/\(id)", "/webhooks/{webhookId}").status == 403)

        // Another firm's admin: the id is not found, on the page and in the API.
        let (other, otherAdmin) = try await rig.d.firm("Jones LLP")
        let otherBrowser = try await rig.d.signedIn(.admin, org: other, admin: otherAdmin)
        defer { otherBrowser.close() }
        #expect(try await otherBrowser.get("/settings/webhooks/\(id)").status == 404)
        let otherForm = try await otherBrowser.get("/settings/webhooks")
        #expect(try await otherBrowser.post("/settings/webhooks/\(id)/delete", form: [("csrf", try #require(otherForm.csrf))]).status == 404)
        #expect(!otherForm.text.contains(id))
        let otherToken = try await rig.d.apiToken(otherAdmin, org: other, [.settingsManage])
        let otherAPI = rig.d.api(otherToken.secret, firm: other, contract: contract)
        defer { otherAPI.http.close() }
        #expect(try await otherAPI.call("DELETE", "/webhooks/\(id)", "/webhooks/{webhookId}").status == 404)

        // The firm's admin through the API: listed; made only under a token that could read what it sends; deleted.
        let adminToken = try await rig.d.apiToken(rig.admin, org: rig.org, [.settingsManage])
        let api = rig.d.api(adminToken.secret, firm: rig.org, contract: contract)
        defer { api.http.close() }
        let listed = try api.json(try await api.call("GET", "/webhooks"))
        #expect(listed["webhooks"]?.list.map { $0["id"]?.text } == [id])
        #expect(listed["webhooks"]?.list.first?["url"]?.text?.hasSuffix("/hooks/calltrace?key=crm-key-123") == true)
        let refused = try await api.call("POST", "/webhooks", json: #"{"url":"\#(rig.receiver.url)/x","events":["call.completed"]}"#)
        #expect(refused.status == 403 && api.problem(refused) == "forbidden" && refused.text.contains("reports.read"),
                "the caller's token cannot read what the webhook would send: \(refused.text)")
        let crmToken = try await rig.d.apiToken(rig.admin, org: rig.org, [.settingsManage, .reportsRead])
        let crm = rig.d.api(crmToken.secret, firm: rig.org, contract: contract)
        defer { crm.http.close() }
        let made = try await crm.call("POST", "/webhooks", json: #"{"url":"\#(rig.receiver.url)/from-api","events":["call.completed"]}"#)
        #expect(made.status == 201, "\(made.text)")
        let madeID = try #require(try crm.json(made)["webhook"]?["id"]?.text)
        #expect(try await crm.call("DELETE", "/webhooks/\(madeID)", "/webhooks/{webhookId}").status == 204)
        // Deleting revokes the webhook's token, another admin's here: identity allows that with users.manage only,
        // and without it nothing is deleted (no live token is left behind).
        let kept = try await api.call("DELETE", "/webhooks/\(id)", "/webhooks/{webhookId}")
        #expect(kept.status == 403 && api.problem(kept) == "forbidden")
        #expect(try api.json(try await api.call("GET", "/webhooks"))["webhooks"]?.list.count == 1)
        let usersToken = try await rig.d.apiToken(rig.admin, org: rig.org, [.settingsManage, .usersManage])
        let usersAPI = rig.d.api(usersToken.secret, firm: rig.org, contract: contract)
        defer { usersAPI.http.close() }
        #expect(try await usersAPI.call("DELETE", "/webhooks/\(id)", "/webhooks/{webhookId}").status == 204)
        #expect(try api.json(try await api.call("GET", "/webhooks"))["webhooks"]?.list.isEmpty == true)
        // Making one on the page: at most 10 a firm.
        for _ in 0..<WebhookRules.perFirm { _ = try await rig.addWebhook() }
        let eleventh = try await rig.addWebhook()
        #expect(eleventh.page.status == 400 && eleventh.page.text.contains("at most 10"))
        await rig.stop()
    }

    @Test("A receiver that never answers 2xx: tried again with the queue's backoff (1 s doubling to 10 min) for 150 attempts, about a day, then the delivery shows failed and its job is dead-lettered; a call deleted before the poll is never sent")
    func failures() async throws {
        let rig = try await WebhookRig()
        rig.receiver.respond { _ in .json(#"{"error":"down"}"#, status: 500) }
        let (id, _, _) = try await rig.addWebhook()
        try await rig.completedCall("call-f1")
        #expect(try await rig.pollUntil { rig.receiver.requests.count == 1 })
        #expect(try await eventually(timeout: .seconds(300)) {
            rig.d.web.clock.advance(by: .seconds(721))  // past the longest backoff (10 min + 20%): one attempt a turn
            await rig.jobs.runDue()
            return try await rig.deliveries(id).first?.state == .failed
        })
        let failed = try #require(try await rig.deliveries(id).first)
        #expect(failed.attempts == WebhookRules.deliveryAttempts && failed.lastStatus == 500)
        #expect(rig.receiver.requests.count == WebhookRules.deliveryAttempts)
        #expect(try await rig.jobs.list(state: "dead").contains { $0.kind == DeliverWebhook.kind })
        let page = try await rig.browser.get("/settings/webhooks/\(id)")
        #expect(page.text.contains("Failed") && page.text.contains("HTTP 500"))
        // Nothing more is sent for it.
        rig.d.web.clock.advance(by: .seconds(3600))
        await rig.jobs.runDue()
        #expect(rig.receiver.requests.count == WebhookRules.deliveryAttempts)

        // A call deleted (compliance's step in transcript) before the poll: its event went with it, nothing is sent.
        // The queue's own workers, woken by the clock's jump, may still be running the poll the
        // hour made due (one claimed it before `runDue`): the call completes after that poll, or
        // that poll would send it.
        #expect(try await eventually { try await rig.jobs.list(state: "running").isEmpty })
        rig.receiver.respond { _ in .json(#"{"ok":true}"#) }
        try await rig.completedCall("call-f2")
        _ = try await Calltrace_Transcript_V1_CallServiceClient(try rig.d.services.calls.transcript.client(identity: TemporaryPKI.identity("service", "compliance")))
            .deleteCall(.with { $0.orgID = rig.org; $0.callID = "call-f2" })
        #expect(try await rig.pollUntil { true })
        await rig.jobs.runDue()
        #expect(rig.receiver.requests.count == WebhookRules.deliveryAttempts)
        #expect(try await rig.deliveries(id).count == 1)
        await rig.stop()
    }

    @Test("Webhook addresses: https only, no user name or fragment; private, loopback and link-local hosts refused unless allowed")
    func addresses() throws {
        for bad in ["http://crm.example/hook", "https://user:pw@crm.example/", "https://crm.example/#x", "ftp://crm.example", "not a url", ""] {
            #expect(throws: RPCError.self, "\(bad)") { _ = try WebhookAddress(bad) }
        }
        #expect(try WebhookAddress("https://crm.example.co.uk/hooks?key=1").host == "crm.example.co.uk")
        for local in ["https://127.0.0.1/", "https://localhost:8443/x", "https://10.1.2.3/", "https://192.168.0.10/", "https://172.20.0.1/",
                      "https://169.254.169.254/latest/meta-data", "https://[::1]/", "https://[fe80::1]/", "https://[fd00::1]/", "https://0.0.0.0/",
                      "https://100.64.0.1/", "https://[::ffff:127.0.0.1]/"] {
            let address = try WebhookAddress(local)
            let refused = #expect(throws: RPCError.self, "\(local)") { try address.checkReachable(allowPrivate: false) }
            #expect(refused?.code == .invalidArgument && refused?.message.contains("private") == true, "\(local): \(String(describing: refused))")
            #expect(throws: Never.self, "\(local) allowed") { try address.checkReachable(allowPrivate: true) }
        }
        #expect(WebhookAddress.isPublic(v4: [8, 8, 8, 8]) && WebhookAddress.isPublic(v4: [81, 2, 69, 160]))
        #expect(WebhookAddress.isPublic(v6: [0x2a, 0x00, 0x14, 0x50] + Array(repeating: 0, count: 11) + [1]))
    }

    @Test("Signatures: HMAC-SHA256 through OpenSSL (RFC 4231 case 2), written t=<seconds>,v1=<hex of t.body>")
    func signature() {
        let digest = MessageSignature.hmacSHA256(key: Data("Jefe".utf8), message: Data("what do ya want for nothing?".utf8))
        #expect(MessageSignature.hex(digest) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        let header = WebhookRules.signature(secret: "whsec_test", body: Data(#"{"id":"e1"}"#.utf8), unixSeconds: 1_700_000_000)
        let expected = MessageSignature.hex(MessageSignature.hmacSHA256(key: Data("whsec_test".utf8), message: Data(#"1700000000.{"id":"e1"}"#.utf8)))
        #expect(header == "t=1700000000,v1=\(expected)")
    }
}
