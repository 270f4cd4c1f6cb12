import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import SwiftProtobuf
import Testing
@testable import WebGateway

/// `/api/v1/rpc`: the services' methods over HTTP in the Connect protocol, for a person's API
/// token. Every answer is the service's own (its code and message), every refusal the service's
/// or the gateway's list's, and the address is the one the gateway saw.
@Suite(.serialized) struct RPCRelayTests {
    /// A unary call: its HTTP status, its JSON body and content type.
    static let contract = try! OpenAPIContract("openapi-rpc.json")

    /// A unary call; its answer, checked against services/web/openapi-rpc.json.
    static func call(_ client: WebClient, _ path: String, token: String?, json: String,
                     headers extra: [String: String] = [:]) async throws -> WebClient.Page {
        var headers = ["Content-Type": "application/json"].merging(extra) { $1 }
        if let token { headers["Authorization"] = "Bearer \(token)" }
        let page = try await client.send("POST", RPCRelay.prefix + path, headers: headers, body: Data(json.utf8))
        if RelayedMethod.table[path] != nil {
            let problems = contract.problems("POST", RPCRelay.prefix + path, status: page.status, headers: page.headers, body: page.body)
            #expect(problems.isEmpty, "\(problems)")
        }
        return page
    }

    static func code(_ page: WebClient.Page) -> String? {
        ((try? JSONSerialization.jsonObject(with: page.body)) as? [String: Any])?["code"] as? String
    }

    /// The envelopes of a streamed answer: messages, then the end-of-stream message's JSON.
    static func envelopes(_ body: Data) throws -> (messages: [Data], end: [String: Any]?) {
        var reader = ConnectWire.EnvelopeReader(limit: 1 << 24)
        reader.append(body)
        var messages: [Data] = []
        while let (flags, message) = try reader.next() {
            if flags & ConnectWire.endStreamFlag != 0 {
                return (messages, (try JSONSerialization.jsonObject(with: message)) as? [String: Any])
            }
            messages.append(message)
        }
        return (messages, nil)
    }

    /// A deployment, a firm, its admin's session, a member's session and the member's API token (the member's scopes).
    static func memberWithToken() async throws -> (WebDeployment, org: String, admin: String, member: String, token: String) {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let member = try await d.services.user(.member, in: org, admin: admin)
        return (d, org, admin, member, try await d.apiToken(member, org: org, WebAPITests.memberScopes).secret)
    }

    @Test func theDocumentDescribesExactlyTheRelayedMethods() throws {
        let contract = try OpenAPIContract("openapi-rpc.json")
        #expect(contract.operations == Set(RelayedMethod.table.keys.map { "POST \(RPCRelay.prefix)\($0)" }))
    }

    @Test func aPersonsTokenReachesTheServicesAsTheirPagesDo() async throws {
        let d = try await WebDeployment()
        let (org, admin) = try await d.firm()
        let file = wavFile(samples: 16_000)
        let recording = try await d.recordedCall("call-relay", org: org, admin: admin, file: file)
        let member = try await d.services.user(.member, in: org, admin: admin)
        let token = try await d.apiToken(member, org: org, WebAPITests.memberScopes)
        let http = d.browser()
        defer { http.close() }

        // Unary, in JSON (the proto3 mapping): the calls list and who I am.
        let listed = try await Self.call(http, "calltrace.transcript.v1.CallService/ListCalls", token: token.secret, json: #"{"orgId":"\#(org)"}"#)
        #expect(listed.status == 200 && listed.header("Content-Type") == "application/json" && listed.header("Cache-Control") == "no-store")
        let calls = try Calltrace_Transcript_V1_ListCallsResponse(jsonUTF8Data: listed.body)
        #expect(calls.calls.map(\.callID) == ["call-relay"])
        let me = try await Self.call(http, "calltrace.identity.v1.IdentityService/GetCurrentUser", token: token.secret, json: #"{"orgId":"\#(org)"}"#)
        #expect(try Calltrace_Identity_V1_GetCurrentUserResponse(jsonUTF8Data: me.body).user.role == .member)

        // Binary protobuf works as well.
        let binary = try await http.send("POST", RPCRelay.prefix + "calltrace.transcript.v1.CallService/GetCall", headers: [
            "Content-Type": "application/proto", "Authorization": "Bearer \(token.secret)",
        ], body: try Calltrace_Transcript_V1_GetCallRequest.with { $0.orgID = org; $0.callID = "call-relay" }.serializedBytes())
        #expect(binary.status == 200)
        #expect(try Calltrace_Transcript_V1_GetCallResponse(serializedBytes: binary.body).call.callID == "call-relay")

        // A server stream: the recording's bytes in envelopes, then the end of the stream; the play is audited as the member's.
        let play = try await http.send("POST", RPCRelay.prefix + "calltrace.media.v1.RecordingService/PlayRecording", headers: [
            "Content-Type": "application/connect+json", "Authorization": "Bearer \(token.secret)",
        ], body: ConnectWire.envelope(Data(#"{"orgId":"\#(org)","recordingId":"\#(recording.recordingID)","reason":"checking the relay"}"#.utf8)))
        #expect(play.status == 200 && play.header("Content-Type") == "application/connect+json")
        let (messages, end) = try Self.envelopes(play.body)
        let audio = try messages.map { try Calltrace_Media_V1_PlayRecordingResponse(jsonUTF8Data: $0) }.reduce(Data()) { $0 + $1.data }
        #expect(audio == file, "the whole recording, byte for byte")
        #expect(end != nil && end?["error"] == nil)

        // The service's refusals, with its code: a member may not change the security policy, nor read another firm.
        let policy = try await Self.call(http, "calltrace.identity.v1.IdentityService/SetSecurityPolicy", token: token.secret,
                                         json: #"{"orgId":"\#(org)","sessionIdleSeconds":600}"#)
        #expect(policy.status == 403 && Self.code(policy) == "permission_denied", "\(policy.status) \(policy.text)")
        let (other, _) = try await d.firm("Jones LLP")
        let foreign = try await Self.call(http, "calltrace.transcript.v1.CallService/ListCalls", token: token.secret, json: #"{"orgId":"\#(other)"}"#)
        #expect([403, 404].contains(foreign.status) && !foreign.text.contains("call-"), "\(foreign.status) \(foreign.text)")
        // A stream refused: an answer of its end-of-stream error, nothing before it.
        let foreignPlay = try await http.send("POST", RPCRelay.prefix + "calltrace.media.v1.RecordingService/PlayRecording", headers: [
            "Content-Type": "application/connect+json", "Authorization": "Bearer \(token.secret)",
        ], body: ConnectWire.envelope(Data(#"{"orgId":"\#(other)","recordingId":"\#(recording.recordingID)"}"#.utf8)))
        let refused = try Self.envelopes(foreignPlay.body)
        #expect(refused.messages.isEmpty && (refused.end?["error"] as? [String: Any])?["code"] != nil, "\(foreignPlay.text)")

        // A revoked token opens nothing (identity asked afresh; the other services' 5-second allow cache is theirs).
        _ = try await Calltrace_Identity_V1_IdentityServiceClient(try d.services.identity.client()).revokeApiToken(.with {
            $0.orgID = org; $0.tokenID = token.id
        }, options: try bearer(member))
        let revoked = try await Self.call(http, "calltrace.identity.v1.IdentityService/GetCurrentUser", token: token.secret, json: #"{"orgId":"\#(org)"}"#)
        #expect(revoked.status == 401 && Self.code(revoked) == "unauthenticated" && revoked.header("WWW-Authenticate") != nil)
        // An expired token opens nothing either (identity's clock past its minute).
        let brief = try await d.apiToken(member, org: org, WebAPITests.memberScopes, seconds: 60)
        #expect(try await Self.call(http, "calltrace.identity.v1.IdentityService/GetCurrentUser", token: brief.secret, json: #"{"orgId":"\#(org)"}"#).status == 200)
        d.services.identity.clock.advance(by: .seconds(61))
        let expired = try await Self.call(http, "calltrace.identity.v1.IdentityService/GetCurrentUser", token: brief.secret, json: #"{"orgId":"\#(org)"}"#)
        #expect(expired.status == 401 && Self.code(expired) == "unauthenticated", "\(expired.status) \(expired.text)")
        await d.stop()
    }

    @Test func theRelayRefusesWhatIsNotAPersonsCallAndMalformedBodies() async throws {
        let (d, org, _, member, token) = try await Self.memberWithToken()
        let http = d.browser()
        defer { http.close() }
        let list = "calltrace.transcript.v1.CallService/ListCalls"
        let body = #"{"orgId":"\#(org)"}"#

        // No token, a session token (not an API token), a made-up token.
        for presented in [nil, member, "ctk_" + String(repeating: "A", count: 43)] {
            let page = try await Self.call(http, list, token: presented, json: body)
            #expect(page.status == 401 && Self.code(page) == "unauthenticated", "\(page.status) \(page.text)")
            #expect(!page.text.contains(member), "no token in an answer")
        }
        // Methods not on the list: credential calls, a session's own, the telephony gateway's, made-up ones.
        for method in ["calltrace.identity.v1.IdentityService/Login", "calltrace.identity.v1.IdentityService/CreateApiToken",
                       "calltrace.transcript.v1.CallService/StartCall", "calltrace.media.v1.RecordingService/UploadRecording",
                       "calltrace.identity.v1.IdentityService/CreateOrganization", "nothing/Here"] {
            let page = try await Self.call(http, method, token: token, json: body)
            #expect(page.status == 501 && Self.code(page) == "unimplemented", "\(method): \(page.status) \(page.text)")
        }
        // Bodies: not JSON, an unknown field; the wrong content type, a streaming type for a unary method (415); compressed.
        for (json, type, status) in [("{not json", "application/json", 400), (#"{"orgId":"\#(org)","bogus":1}"#, "application/json", 400),
                                     (body, "text/plain", 415), (body, "application/connect+json", 415)] {
            let page = try await Self.call(http, list, token: token, json: json, headers: ["Content-Type": type])
            #expect(page.status == status && Self.code(page) == "invalid_argument", "\(type) \(json): \(page.status) \(page.text)")
        }
        let gzipped = try await Self.call(http, list, token: token, json: body, headers: ["Content-Encoding": "gzip"])
        #expect(gzipped.status == 501 && Self.code(gzipped) == "unimplemented", "\(gzipped.status) \(gzipped.text)")
        let huge = try await Self.call(http, list, token: token, json: #"{"orgId":""# + String(repeating: "x", count: 2 << 20) + #""}"#)
        #expect(huge.status == 429 && Self.code(huge) == "resource_exhausted", "\(huge.status) \(huge.text.prefix(300))")
        for timeout in ["0", "-5", "12345678901", "soon"] {
            let page = try await Self.call(http, list, token: token, json: body, headers: [ConnectWire.timeoutHeader: timeout])
            #expect(page.status == 400, "\(timeout): \(page.status)")
        }
        let version = try await Self.call(http, list, token: token, json: body, headers: [ConnectWire.versionHeader: "2"])
        #expect(version.status == 400)
        // A stream's body is exactly one envelope.
        let play = "calltrace.media.v1.RecordingService/PlayRecording"
        for streamed in [Data(body.utf8), ConnectWire.envelope(Data(body.utf8)) + ConnectWire.envelope(Data(body.utf8)),
                         ConnectWire.envelope(Data(body.utf8), flags: ConnectWire.endStreamFlag), ConnectWire.envelope(Data(body.utf8), flags: 1)] {
            let page = try await http.send("POST", RPCRelay.prefix + play, headers: [
                "Content-Type": "application/connect+json", "Authorization": "Bearer \(token)",
            ], body: streamed)
            #expect(page.status == 400 && Self.code(page) == "invalid_argument", "\(page.status) \(page.text)")
        }
        // After all that, it still serves.
        #expect(try await Self.call(http, list, token: token, json: body).status == 200)
        await d.stop()
    }

    /// Every relayed method asks for the person: a made-up token is refused by each, so the
    /// gateway's own certificate answers nothing through the relay.
    @Test func everyRelayedMethodRefusesAMadeUpToken() async throws {
        let d = try await WebDeployment(telephony: true)
        let (org, _) = try await d.firm()
        let http = d.browser()
        defer { http.close() }
        let madeUp = "ctk_" + String(repeating: "B", count: 43)
        var answered: [String] = []
        for (path, method) in RelayedMethod.table.sorted(by: { $0.key < $1.key }) {
            let body = Data(#"{"orgId":"\#(org)"}"#.utf8)
            if method.isStreaming {
                let page = try await http.send("POST", RPCRelay.prefix + path, headers: [
                    "Content-Type": "application/connect+json", "Authorization": "Bearer \(madeUp)"], body: ConnectWire.envelope(body))
                let end = try Self.envelopes(page.body).end
                if (end?["error"] as? [String: Any])?["code"] as? String != "unauthenticated" { answered.append("\(path): \(page.status) \(page.text)") }
            } else {
                let page = try await Self.call(http, path, token: madeUp, json: String(decoding: body, as: UTF8.self))
                if page.status != 401 || Self.code(page) != "unauthenticated" { answered.append("\(path): \(page.status) \(page.text)") }
            }
        }
        #expect(answered.isEmpty, "\(answered)")
        await d.stop()
    }

    @Test func aServiceThatIsDownIsSaidPlainlyWithAReferenceNeverItsAddress() async throws {
        let (d, org, _, _, token) = try await Self.memberWithToken()
        let http = d.browser()
        defer { http.close() }
        await d.services.media.stop()
        let page = try await Self.call(http, "calltrace.media.v1.RecordingService/ListRecordings", token: token, json: #"{"orgId":"\#(org)"}"#,
                                       headers: [ConnectWire.timeoutHeader: "3000"])
        #expect([503, 504].contains(page.status), "\(page.status) \(page.text)")
        #expect(page.text.contains("reference ") && !page.text.contains("127.0.0.1") && !page.text.contains(":\(d.services.media.instance.port)"),
                "\(page.text)")
        await d.stop()
    }

    @Test func streamsAreBudgetedPerTokenAndInAll() throws {
        let budget = StreamBudget(perToken: 2, total: 3)
        let a1 = try budget.take(for: "a"), a2 = try budget.take(for: "a")
        #expect(throws: RPCError.self) { try budget.take(for: "a") }
        let b1 = try budget.take(for: "b")
        #expect(throws: RPCError.self) { try budget.take(for: "c") }
        a1.release()
        a1.release()  // once only
        let c1 = try budget.take(for: "c")
        #expect(throws: RPCError.self) { try budget.take(for: "a") }
        for ticket in [a2, b1, c1] { ticket.release() }
        _ = try (0..<2).map { _ in try budget.take(for: "a") }
    }

    @Test func theAddressIsTheOneTheGatewaySawNeverTheCallersClaim() async throws {
        let (d, org, admin, _, token) = try await Self.memberWithToken()
        _ = try await Calltrace_Identity_V1_IdentityServiceClient(try d.services.identity.client()).setSecurityPolicy(.with {
            $0.orgID = org
            $0.allowedClientRanges = ["203.0.113.0/24"]
        }, options: try bearer(admin))
        let http = d.browser()
        defer { http.close() }
        // The connection is 127.0.0.1, outside the firm's list; no header makes it the office.
        for claim in [[:], ["X-Forwarded-For": "203.0.113.9"], ["X-Client-Address": "203.0.113.9"]] {
            let page = try await Self.call(http, "calltrace.transcript.v1.CallService/ListCalls", token: token,
                                           json: #"{"orgId":"\#(org)"}"#, headers: claim)
            #expect(page.status == 403 && Self.code(page) == "permission_denied", "\(claim): \(page.status) \(page.text)")
        }
        // The address the gateway saw is the one identity checks: with this machine on the list, the same call is answered.
        _ = try await Calltrace_Identity_V1_IdentityServiceClient(try d.services.identity.client()).setSecurityPolicy(.with {
            $0.orgID = org
            $0.allowedClientRanges = ["203.0.113.0/24", "127.0.0.1/32"]
        }, options: try {
            var options = try bearer(admin)
            try options.metadata.add(ServerContext.clientAddressKey, "203.0.113.9")  // from the office, as the pages would say
            return options
        }())
        let allowed = try await Self.call(http, "calltrace.transcript.v1.CallService/ListCalls", token: token, json: #"{"orgId":"\#(org)"}"#)
        #expect(allowed.status == 200, "\(allowed.status) \(allowed.text)")
        await d.stop()
    }
}
