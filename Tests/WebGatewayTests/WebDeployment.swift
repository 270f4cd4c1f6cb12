import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import FakeTwilio
import Foundation
import Testing
@testable import WebGateway

/// The four services in this test process (`MediaDeployment`) and the web gateway beside them,
/// its pages on a port of its own: what a browser reaches, over real HTTP, with the services
/// behind it over real mutual TLS.
final class WebDeployment: @unchecked Sendable {
    let services: MediaDeployment
    let web: InProcessService
    let base: String
    /// The telephony gateway and its fake Twilio, when asked for: the web app's call backs.
    private(set) var telephony: (stack: TelephonyStack, gateway: InProcessService, driver: CallDriver, listener: Task<Void, any Error>)?
    private let listener: Task<Void, any Error>
    static let password = "correct horse battery staple"

    /// - Parameters:
    ///   - telephony: a telephony gateway (in process, with a fake Twilio) beside the services, the web app's peer.
    ///   - adjust: the web gateway's settings beyond the test's (`trusted_proxies`, say).
    ///   - adjustIdentity: identity's (`admin_operators`, say).
    init(telephony withTelephony: Bool = false, adjust: @escaping (inout ServiceConfiguration) -> Void = { _ in },
         adjustIdentity: (inout ServiceConfiguration) -> Void = { _ in }) async throws {
        let services = try await MediaDeployment(adjustIdentity: adjustIdentity)
        self.services = services
        var peers = [
            "identity": services.identity.instance.port, "media": services.media.instance.port,
            "transcript": services.calls.transcript.instance.port, "compliance": services.calls.compliance.instance.port,
        ]
        if withTelephony {
            let stack = try TelephonyStack(pki: services.pki)
            let started = try await stack.start(on: services)
            telephony = (stack, started.gateway, started.driver, started.listener)
            peers["telephony"] = started.gateway.instance.port
        }
        web = try await InProcessService.start(WebService.self, peers: peers, pki: services.pki) {
            try? $0.set("http_listen", "127.0.0.1:0")
            adjust(&$0)
        }
        let companions = web.instance.companions
        listener = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for companion in companions { group.addTask { try await companion.run() } }
                try await group.waitForAll()
            }
        }
        let port = try #require(await (web.instance.service as! WebService).httpPort())
        base = "http://127.0.0.1:\(port)"
    }

    func stop() async {
        listener.cancel()
        _ = await listener.result
        await web.stop()
        if let telephony {
            telephony.listener.cancel()
            _ = await telephony.listener.result
            await telephony.gateway.stop()
            telephony.stack.stop()
        }
        await services.stop()
    }

    func browser(of email: String? = nil) -> WebClient { WebClient(base: base, email: email) }

    /// A firm (agreement accepted, a tracking number for "Google Ads") and its first admin's
    /// session token, for setting things up.
    func firm(_ name: String = "Smith & Co Solicitors") async throws -> (org: String, admin: String) {
        try await services.organisation(name)
    }

    /// Invites `email` in `role` as the firm's admin; the invitation token identity e-mailed.
    func invite(_ email: String, _ role: Calltrace_Identity_V1_Role, org: String, admin: String) async throws -> String {
        _ = try await Calltrace_Identity_V1_IdentityServiceClient(try services.identity.client()).inviteUser(.with {
            $0.orgID = org
            $0.email = email
            $0.displayName = "Test \(role)"
            $0.role = role
        }, options: try bearer(admin))
        return try #require(try services.identity.setup.deliveredToken(to: email))
    }

    /// A signed-in browser of a new user in `role`, who accepted the invitation on its page.
    func signedIn(_ role: Calltrace_Identity_V1_Role, org: String, admin: String) async throws -> WebClient {
        let email = "\(role)-\(UUID().uuidString.prefix(8).lowercased())@firm.example"
        let token = try await invite(email, role, org: org, admin: admin)
        let browser = self.browser(of: email)
        let form = try await browser.get("/accept-invitation?token=\(token)")
        let accepted = try await browser.post("/accept-invitation", form: [("csrf", try #require(form.csrf)), ("token", token),
                                                                           ("password", Self.password), ("confirm", Self.password)])
        #expect(accepted.status == 303)
        try await signIn(browser, org: org, email: email)
        return browser
    }

    /// Signs `browser` in (password, and `code` when given); the answer.
    @discardableResult
    func signIn(_ browser: WebClient, org: String, email: String, password: String = password, code: String = "",
                headers: [String: String] = [:]) async throws -> WebClient.Page {
        let form = try await browser.get("/sign-in", headers: headers)
        return try await browser.post("/sign-in", form: [("csrf", try #require(form.csrf)), ("firm", org), ("email", email),
                                                         ("password", password), ("code", code), ("next", "")], headers: headers)
    }

    /// A recorded, answered call of `org` from `caller` with its recording stored and known to transcript.
    func recordedCall(_ id: String, org: String, admin: String, file: Data, caller: String = "07700900123") async throws
        -> Calltrace_Media_V1_Recording {
        let recording = try await services.upload(file, org: org, call: id, caller: caller)
        _ = try await Calltrace_Transcript_V1_CallServiceClient(try services.calls.transcript.client(identity: TemporaryPKI.telephony)).completeCall(.with {
            $0.orgID = org
            $0.callID = id
            $0.outcome = .answered
        })
        // Media tells transcript which recording is the call's (a durable job of media's).
        let calls = Calltrace_Transcript_V1_CallServiceClient(try services.calls.transcript.client())
        let linked = await eventually {
            _ = await services.media.instance.jobs.runDue()
            return (try? await calls.getCall(.with { $0.orgID = org; $0.callID = id }, options: try bearer(admin)).call.recordingID) == recording.recordingID
        }
        #expect(linked)
        return recording
    }
}
