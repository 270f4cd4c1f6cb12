import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Testing
@testable import WebGateway

/// An API client of `/api/v1`: a person's API token and firm on every request (never a cookie),
/// and every answer checked against services/web/openapi.yaml as it arrives.
struct APIClient: Sendable {
    let http: WebClient
    let token: String?
    let firm: String?
    let contract: OpenAPIContract

    /// `method` on `path` (under /api/v1), documented as `template`; the answer, checked against the document.
    func call(_ method: String, _ path: String, _ template: String? = nil, json: String? = nil,
              headers extra: [String: String] = [:]) async throws -> WebClient.Page {
        var headers = extra
        if let token { headers["Authorization"] = headers["Authorization"] ?? "Bearer \(token)" }
        if let firm { headers["CallTrace-Firm"] = firm }
        if json != nil { headers["Content-Type"] = "application/json" }
        let page = try await http.send(method, APIv1.base + path, headers: headers, body: json.map { Data($0.utf8) })
        let problems = contract.problems(method, template ?? path.split(separator: "?")[0].description, status: page.status,
                                         headers: page.headers, body: page.body)
        #expect(problems.isEmpty, "\(problems)")
        #expect(page.header("Cache-Control") == "no-store", "\(method) \(path)")
        if let token { #expect(!page.text.contains(token), "an answer never holds the token") }
        return page
    }

    func json(_ page: WebClient.Page) throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: page.body) }

    /// The problem's `type` of a problem+json answer.
    func problem(_ page: WebClient.Page) -> String? {
        guard page.header("Content-Type") == "application/problem+json" else { return nil }
        return (try? json(page))?["type"]?.text.map { String($0.dropFirst("urn:calltrace:problem:".count)) }
    }
}

extension WebDeployment {
    /// A new API token of the person whose session is `session`, made as the Account page makes it.
    func apiToken(_ session: String, org: String, _ permissions: [Calltrace_Identity_V1_Permission],
                  seconds: UInt32 = 0) async throws -> (secret: String, id: String) {
        let made = try await Calltrace_Identity_V1_IdentityServiceClient(try services.identity.client()).createApiToken(.with {
            $0.orgID = org; $0.name = "CRM sync"; $0.permissions = permissions; $0.durationSeconds = seconds
        }, options: try bearer(session))
        return (made.token, made.apiToken.tokenID)
    }

    func api(_ token: String?, firm: String?, contract: OpenAPIContract) -> APIClient {
        APIClient(http: browser(), token: token, firm: firm, contract: contract)
    }
}

@Suite(.serialized) struct WebAPITests {
    static let memberScopes: [Calltrace_Identity_V1_Permission] = [.reportsRead, .transcriptsRead, .recordingsPlay, .linksShare, .callsMark]

    @Test func everyOperationWorksWithAnAPITokenAndMatchesTheDocument() async throws {
        let contract = try OpenAPIContract()
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let file = wavFile(samples: 16_000)
        let recording = try await d.recordedCall("call-api", org: org, admin: admin, file: file)
        let member = try await d.services.user(.member, in: org, admin: admin)
        let token = try await d.apiToken(member, org: org, Self.memberScopes)
        let api = d.api(token.secret, firm: org, contract: contract)
        defer { api.http.close() }

        let me = try api.json(try await api.call("GET", "/me"))
        #expect(me["role"]?.text == "member" && me["firmId"]?.text == org)
        #expect(Set(me["permissions"]?.list.compactMap(\.text) ?? []) == ["reports.read", "transcripts.read", "recordings.play", "links.share", "calls.mark"])

        // Calls: the list (with its filters), one call, its transcript, its outcome.
        let today = String(ISO8601DateFormatter().string(from: Date()).prefix(10))
        let list = try api.json(try await api.call("GET", "/calls?from=2020-01-01&to=\(today)&pageSize=10", "/calls"))
        #expect(list["calls"]?.list.contains { $0["callId"]?.text == "call-api" } == true)
        let none = try api.json(try await api.call("GET", "/calls?source=Nowhere", "/calls"))
        #expect(none["calls"]?.list.isEmpty == true)
        #expect(try await api.call("GET", "/calls?from=yesterday", "/calls").status == 400)
        let call = try api.json(try await api.call("GET", "/calls/call-api", "/calls/{callId}"))
        #expect(call["recordingId"]?.text == recording.recordingID && call["outcome"]?.text == "answered" && call["enquiry"]?.text == "unmarked")
        let transcript = try await api.call("GET", "/calls/call-api/transcript", "/calls/{callId}/transcript")
        #expect(transcript.status == 200)
        let marked = try await api.call("PUT", "/calls/call-api/outcome", "/calls/{callId}/outcome",
                                        json: #"{"enquiry":"new","matterOpened":true,"matterReference":"SMI-0042","practiceArea":"family"}"#)
        let markedCall = try api.json(marked)
        #expect(marked.status == 200 && markedCall["enquiry"]?.text == "new" && markedCall["matterReference"]?.text == "SMI-0042")
        #expect(markedCall["practiceArea"]?.text == "family")
        let malformed = try await api.call("PUT", "/calls/call-api/outcome", "/calls/{callId}/outcome", json: #"{"enquiry":"maybe"}"#)
        #expect(malformed.status == 400 && api.problem(malformed) == "invalid-request")

        // The audio: whole, one range, past the end; each an audited play.
        let audio = "/recordings/\(recording.recordingID)/audio", audioTemplate = "/recordings/{recordingId}/audio"
        let whole = try await api.call("GET", audio, audioTemplate)
        #expect(whole.status == 200 && whole.body == file && whole.header("Accept-Ranges") == "bytes")
        let ranged = try await api.call("GET", audio, audioTemplate, headers: ["Range": "bytes=100-199"])
        #expect(ranged.status == 206 && ranged.body == file.subdata(in: 100..<200))
        #expect(ranged.header("Content-Range") == "bytes 100-199/\(file.count)")
        let past = try await api.call("GET", audio, audioTemplate, headers: ["Range": "bytes=\(file.count + 10)-"])
        #expect(past.status == 416)

        // Share links: made (its URL shown once), listed, revoked.
        let links = "/recordings/\(recording.recordingID)/share-links", linksTemplate = "/recordings/{recordingId}/share-links"
        let made = try await api.call("POST", links, linksTemplate, json: #"{"days":2,"note":"counsel's review"}"#)
        let link = try api.json(made)
        #expect(made.status == 201 && link["url"]?.text?.hasPrefix("http://localhost:8080/s/") == true && link["link"]?["state"]?.text == "active")
        let linkID = try #require(link["link"]?["linkId"]?.text)
        #expect(try api.json(try await api.call("GET", links, linksTemplate))["links"]?.list.first?["linkId"]?.text == linkID)
        #expect(try await api.call("POST", "/share-links/\(linkID)/revoke", "/share-links/{linkId}/revoke").status == 204)
        #expect(try api.json(try await api.call("GET", links, linksTemplate))["links"]?.list.first?["state"]?.text == "revoked")

        // API tokens: listed without a secret; making one needs a signed-in session (identity's rule).
        let tokens = try api.json(try await api.call("GET", "/api-tokens"))
        #expect(tokens["tokens"]?.list.map { $0["tokenId"]?.text } == [token.id])
        let refused = try await api.call("POST", "/api-tokens", json: #"{"name":"another","permissions":["reports.read"]}"#)
        #expect(refused.status == 403 && api.problem(refused) == "forbidden")

        // Users, with an admin's token (users.manage).
        let adminToken = try await d.apiToken(admin, org: org, [.usersManage, .reportsRead, .settingsManage])
        let adminAPI = d.api(adminToken.secret, firm: org, contract: contract)
        defer { adminAPI.http.close() }
        let invited = try await adminAPI.call("POST", "/users", json: #"{"email":"new.starter@firm.example","displayName":"New Starter","role":"analyst"}"#)
        #expect(invited.status == 201)
        let users = try adminAPI.json(try await adminAPI.call("GET", "/users"))
        #expect(users["users"]?.list.contains { $0["email"]?.text == "new.starter@firm.example" && $0["status"]?.text == "invited" } == true)
        let everyones = try adminAPI.json(try await adminAPI.call("GET", "/api-tokens?allUsers=true", "/api-tokens"))
        #expect(Set(everyones["tokens"]?.list.compactMap { $0["tokenId"]?.text } ?? []) == [token.id, adminToken.id])

        // Webhooks (settings.manage): listed; a private address refused by default (SSRF); another's id not found.
        #expect(try adminAPI.json(try await adminAPI.call("GET", "/webhooks"))["webhooks"]?.list.isEmpty == true)
        let privateHook = try await adminAPI.call("POST", "/webhooks", json: #"{"url":"https://127.0.0.1:8443/hook","events":["call.completed"]}"#)
        #expect(privateHook.status == 400 && adminAPI.problem(privateHook) == "invalid-request", "\(privateHook.text)")
        #expect(try await adminAPI.call("DELETE", "/webhooks/whk_none", "/webhooks/{webhookId}").status == 404)

        // Revoking a token ends it at once.
        #expect(try await adminAPI.call("DELETE", "/api-tokens/\(token.id)", "/api-tokens/{tokenId}").status == 204)
        let revoked = try await api.call("GET", "/me")
        #expect(revoked.status == 401 && api.problem(revoked) == "unauthenticated")

        #expect(contract.checkedOperations == contract.operations, "every documented operation was checked")
        await d.stop()
    }

    @Test func onlyALiveAPITokenOfTheFirmOpensTheAPI() async throws {
        let contract = try OpenAPIContract()
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let (otherOrg, _) = try await d.firm("Jones Legal LLP")
        let member = try await d.services.user(.member, in: org, admin: admin)

        for (token, firm) in [(nil, org), ("ctk_" + String(repeating: "A", count: 43), org), (member, org)] as [(String?, String?)] {
            let api = d.api(token, firm: firm, contract: contract)
            let answer = try await api.call("GET", "/me")
            #expect(answer.status == 401 && api.problem(answer) == "unauthenticated")
            #expect(answer.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
            #expect(!answer.text.contains(member), "a session token is never echoed")
            api.http.close()
        }
        let token = try await d.apiToken(member, org: org, [.reportsRead], seconds: 3600)
        // Without the firm: no credential; with another firm: identity's refusal (the token is not that firm's).
        for (firm, status) in [(nil, 401), (otherOrg, 403)] as [(String?, Int)] {
            let api = d.api(token.secret, firm: firm, contract: contract)
            let answer = try await api.call("GET", "/me")
            #expect(answer.status == status, "\(firm ?? "no firm"): \(answer.text)")
            api.http.close()
        }
        // A signed-in browser's session cookie opens pages, never the API (so no form elsewhere can use it).
        let browser = try await d.signedIn(.admin, org: org, admin: admin)
        defer { browser.close() }
        #expect(try await browser.get("/calls").status == 200)
        let cookieOnly = try await browser.get("/api/v1/me", headers: ["CallTrace-Firm": org])
        #expect(cookieOnly.status == 401 && cookieOnly.header("Content-Type") == "application/problem+json")

        // Expired (identity's clock past the token's hour): refused.
        let api = d.api(token.secret, firm: org, contract: contract)
        defer { api.http.close() }
        #expect(try await api.call("GET", "/me").status == 200)
        let unknown = try await api.http.send("GET", "/api/v1/nowhere", headers: ["Authorization": "Bearer \(token.secret)", "CallTrace-Firm": org], body: nil)
        #expect(unknown.status == 404 && unknown.header("Content-Type") == "application/problem+json")
        d.services.identity.clock.advance(by: .seconds(3601))
        let expired = try await api.call("GET", "/me")
        #expect(expired.status == 401 && expired.header("WWW-Authenticate")?.contains("invalid_token") == true)
        await d.stop()
    }

    @Test func scopesRolesAndFirmsBoundWhatATokenReaches() async throws {
        let contract = try OpenAPIContract()
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm("Smith & Co Solicitors")
        let (otherOrg, otherAdmin) = try await d.firm("Jones Legal LLP")
        let recording = try await d.recordedCall("call-bound", org: org, admin: admin, file: wavFile(samples: 8000))
        let member = try await d.services.user(.member, in: org, admin: admin)
        let analyst = try await d.services.user(.analyst, in: org, admin: admin)
        let narrow = d.api(try await d.apiToken(member, org: org, [.reportsRead]).secret, firm: org, contract: contract)
        let analystAPI = d.api(try await d.apiToken(analyst, org: org, [.reportsRead]).secret, firm: org, contract: contract)
        let outsiderSession = try await d.services.user(.admin, in: otherOrg, admin: otherAdmin)
        let outsider = d.api(try await d.apiToken(outsiderSession, org: otherOrg, Self.memberScopes + [.usersManage]).secret, firm: otherOrg,
                             contract: contract)
        defer { narrow.http.close(); analystAPI.http.close(); outsider.http.close() }
        let audio = "/recordings/\(recording.recordingID)/audio", audioTemplate = "/recordings/{recordingId}/audio"

        // A token without the scope: refused, though the member's role has it.
        #expect(try await narrow.call("GET", "/calls/call-bound", "/calls/{callId}").status == 200)
        for (method, path, template, json) in [
            ("GET", "/calls/call-bound/transcript", "/calls/{callId}/transcript", nil),
            ("PUT", "/calls/call-bound/outcome", "/calls/{callId}/outcome", #"{"enquiry":"new"}"#),
            ("GET", audio, audioTemplate, nil),
            ("POST", "/recordings/\(recording.recordingID)/share-links", "/recordings/{recordingId}/share-links", #"{"days":1}"#),
        ] as [(String, String, String, String?)] {
            let answer = try await narrow.call(method, path, template, json: json)
            #expect(answer.status == 403 && narrow.problem(answer) == "forbidden", "\(method) \(path)")
        }
        // A role without the permission: an analyst has no users.manage (nor could its token).
        let users = try await analystAPI.call("GET", "/users")
        #expect(users.status == 403 && analystAPI.problem(users) == "forbidden")

        // Another firm's ids: not found, exactly as made-up ones.
        for (method, path, template, json) in [
            ("GET", "/calls/call-bound", "/calls/{callId}", nil), ("GET", "/calls/made-up", "/calls/{callId}", nil),
            ("GET", "/calls/call-bound/transcript", "/calls/{callId}/transcript", nil),
            ("PUT", "/calls/call-bound/outcome", "/calls/{callId}/outcome", #"{"enquiry":"new"}"#),
            ("GET", "/recordings/\(recording.recordingID)/share-links", "/recordings/{recordingId}/share-links", nil),
        ] as [(String, String, String, String?)] {
            let answer = try await outsider.call(method, path, template, json: json)
            #expect(answer.status == 404 && outsider.problem(answer) == "not-found", "\(method) \(path)")
            #expect(!answer.text.contains("+44"), "no phone number in an error")
        }
        let theirAudio = try await outsider.call("GET", audio, audioTemplate)
        #expect(theirAudio.status == 404 || theirAudio.status == 403, "as the pages' player: media's answer")
        let theirs = try outsider.json(try await outsider.call("GET", "/calls"))
        #expect(theirs["calls"]?.list.contains { $0["callId"]?.text == "call-bound" } == false)

        // The firm's IP allow-list applies to the client's address: the connection's own (127.0.0.1),
        // since no proxy is trusted here, whatever X-Forwarded-For claims (identity itself answers /me: no cached allow).
        _ = try await Calltrace_Identity_V1_IdentityServiceClient(try d.services.identity.client()).setSecurityPolicy(.with {
            $0.orgID = otherOrg
            $0.allowedClientRanges = ["10.0.0.0/8"]
        }, options: try bearer(otherAdmin))
        for claimed in [nil, "10.1.2.3"] as [String?] {
            let answer = try await outsider.call("GET", "/me", headers: claimed.map { ["X-Forwarded-For": $0] } ?? [:])
            #expect(answer.status == 403 && outsider.problem(answer) == "forbidden", "\(claimed ?? "no header")")
        }
        await d.stop()
    }
}
