import CallTraceProto
import CallTraceRPC
import Hummingbird

/// The signed-in person's own account: who they are, their role, two-factor enrolment with a
/// QR code (identity holds the secret; it is shown once, on the page that enrols), and the e-mail
/// alerts they choose (identity sends them; the e-mails link back to `/account/alerts`).
struct AccountPages: Sendable {
    let app: WebApp

    func register(on router: Router<WebContext>) {
        router.get("/account") { _, context in try await account(context) }
        router.get("/account/alerts") { _, context in try await account(context) }
        router.post("/account/alerts") { request, context in try await setAlerts(request, context) }
        router.post("/account/two-factor") { request, context in try await enrol(request, context) }
        router.post("/account/two-factor/confirm") { request, context in try await confirm(request, context) }
    }

    private func account(_ context: WebContext, notice: String? = nil) async throws -> Response {
        let session = try app.session(context)
        let (chrome, _) = try await app.chrome(context, current: "Account")
        let me = try await app.backend.identity.getCurrentUser(.with { $0.orgID = session.orgID }, options: context.caller.options)
        let alerts = try await app.backend.alerts.getAlertPreferences(.with { $0.orgID = session.orgID }, options: context.caller.options)
        var data: [String: Any] = [
            "alerts": alerts.preferences.filter(\.available).map { ["kind": "\($0.kind.rawValue)", "label": $0.description_p, "on": $0.enabled] },
            "name": me.user.displayName, "email": me.user.email, "role": Formats.role(me.user.role), "firm": session.orgID,
            "twoFactor": me.user.twoFactorConfirmed, "csrf": session.csrf,
            "signedIn": Formats.dateTime(unixMs: session.signedInAt),
        ]
        if let notice { data["notice"] = notice }
        return app.renderer.page("account", title: "Your account", data: data, chrome: chrome)
    }

    /// The password again (a stolen session alone cannot bind an attacker's app), then the QR code.
    private func enrol(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        let enrolment: Calltrace_Identity_V1_EnrollTotpResponse
        do {
            enrolment = try await app.backend.identity.enrollTotp(.with {
                $0.orgID = session.orgID
                $0.password = form.raw("password")
            }, options: context.caller.options)
        } catch let error as RPCError where error.code == .unauthenticated || error.code == .permissionDenied {
            // A wrong password: the session itself still holds (GetCurrentUser below would say otherwise).
            return try await account(context, notice: "That password is not right. Two-factor was not changed.")
        }
        let (chrome, _) = try await app.chrome(context, current: "Account")
        return app.renderer.page("two-factor", title: "Set up two-factor authentication", data: [
            "qr": QRCode.svg(enrolment.otpauthUri) ?? "", "secret": enrolment.secretBase32, "csrf": session.csrf,
        ], chrome: chrome)
    }

    private func confirm(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        do {
            _ = try await app.backend.identity.confirmTotp(.with {
                $0.orgID = session.orgID
                $0.code = form["code"].filter(\.isNumber)
            }, options: context.caller.options)
        } catch let error as RPCError where error.code == .invalidArgument || error.code == .unauthenticated || error.code == .failedPrecondition {
            return try await account(context, notice: "That code was not right, so two-factor is not on yet. Start again and enter the code your app shows now.")
        }
        return try await account(context, notice: "Two-factor authentication is on. You will need a code from your app each time you sign in.")
    }

    /// The boxes ticked are the alerts wanted; the rest are off.
    private func setAlerts(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        let kinds = Calltrace_Identity_V1_AlertKind.allCases.filter { $0 != .unspecified && form["alert-\($0.rawValue)"] == "yes" }
        _ = try await app.backend.alerts.setAlertPreferences(.with { $0.orgID = session.orgID; $0.enabled = kinds }, options: context.caller.options)
        return try await account(context, notice: kinds.isEmpty ? "You will get no e-mail alerts." : "Your e-mail alerts are saved.")
    }
}
