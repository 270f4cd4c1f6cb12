import CallTraceProto
import CallTraceRPC
import Foundation
import Hummingbird

/// Signing in and out, and the pages identity's e-mails open: accepting an invitation, asking
/// for and making a password reset. Identity does the checking (lockout, the firm's address
/// list, two-factor); these pages pass the person's browser address with each attempt.
struct SignInPages: Sendable {
    let app: WebApp

    func register(on router: Router<WebContext>) {
        router.get("/sign-in") { request, context in try signInForm(request, context) }
        router.post("/sign-in") { request, context in try await signIn(request, context) }
        router.post("/sign-out") { request, context in try await signOut(request, context) }
        router.get("/forgot-password") { request, context in try preSessionPage(request, "forgot-password", title: "Forgotten password",
                                                                                  data: ["firm": firm(request)]) }
        router.post("/forgot-password") { request, context in try await requestReset(request, context) }
        router.get("/reset-password") { request, context in
            try preSessionPage(request, "set-password", title: "Choose a new password",
                               data: ["action": "/reset-password", "token": request.query["token"],
                                      "heading": "Choose a new password", "button": "Change password"])
        }
        router.post("/reset-password") { request, context in try await setPassword(request, context, invitation: false) }
        router.get("/accept-invitation") { request, context in
            try preSessionPage(request, "set-password", title: "Accept your invitation",
                               data: ["action": "/accept-invitation", "token": request.query["token"],
                                      "heading": "Welcome to CallTrace", "intro": true, "button": "Create my account"])
        }
        router.post("/accept-invitation") { request, context in try await setPassword(request, context, invitation: true) }
    }

    // MARK: Sign in and out

    private func signInForm(_ request: Request, _ context: WebContext, problem: String? = nil, email: String = "",
                            status: HTTPResponse.Status = .ok) throws -> Response {
        let reason = request.query["reason"]
        let notice: String? = switch reason {
        case "ended": "Your session ended. Please sign in again."
        case "signed-out": "You have signed out."
        case "ready": "Your account is ready. Sign in with your new password."
        case "changed": "Your password has been changed. Sign in with the new one."
        default: nil
        }
        var data: [String: Any] = ["firm": firm(request), "email": email, "next": Self.returnPath(request.query["next"])]
        if let notice { data["notice"] = notice }
        if let problem { data["problem"] = problem }
        return try preSessionPage(request, "sign-in", title: "Sign in", data: data, status: status)
    }

    private func signIn(_ request: Request, _ context: WebContext) async throws -> Response {
        let form = try await Form.read(request, context: context, beforeSignIn: true)
        let firm = form["firm"], email = form["email"]
        guard !firm.isEmpty, !email.isEmpty, !form.raw("password").isEmpty else {
            return try signInForm(request, context, problem: "Enter your firm's ID, your e-mail address and your password.", email: email, status: .badRequest)
        }
        let login: Calltrace_Identity_V1_LoginResponse
        do {
            login = try await app.backend.identity.login(.with {
                $0.orgID = firm
                $0.email = email
                $0.password = form.raw("password")
                $0.totpCode = form["code"].filter(\.isNumber)
            }, options: Caller(token: nil, clientAddress: context.clientAddress).options)
        } catch let error as RPCError where error.code == .unauthenticated {
            let problem = error.message.contains("just used") ? Failures.sentence(error.message)
                : "The firm ID, e-mail address, password or code is not right. If you use an authenticator app, enter its current code."
            return try signInForm(request, context, problem: problem, email: email, status: .unauthorized)
        } catch let error as RPCError where error.code == .resourceExhausted {
            return try signInForm(request, context, problem: "Too many failed sign-ins. Wait a few minutes, then try again.", email: email,
                                  status: .tooManyRequests)
        }
        // Signing in over a session (another account in the same browser) ends the old one in identity.
        if let previous = context.session {
            _ = try? await app.backend.identity.logout(.init(), options: Caller(token: previous.token, clientAddress: context.clientAddress).options)
        }
        let session = WebSession(token: login.token, orgID: firm, userID: login.userID, csrf: try SessionSeal.randomToken(),
                                 signedInAt: app.clock.nowUnixMs)
        var response = WebApp.seeOther(Self.returnPath(form["next"]))
        response.setCookie(Cookies.make(Cookies.session, try app.seal.seal(session)))
        response.setCookie(Cookies.make(Cookies.firm, firm, maxAge: 400 * 86400))
        response.setCookie(Cookies.clear(Cookies.preSession))
        return response
    }

    private func signOut(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let session = context.session else { return .redirect(to: "/sign-in", type: .normal) }
        _ = try await Form.read(request, context: context)
        // Ends the session in identity: the cookie alone no longer opens anything, wherever it was copied.
        _ = try? await app.backend.identity.logout(.init(), options: Caller(token: session.token, clientAddress: context.clientAddress).options)
        var response = WebApp.seeOther("/sign-in?reason=signed-out")
        response.setCookie(Cookies.clear(Cookies.session))
        return response
    }

    // MARK: Passwords

    private func requestReset(_ request: Request, _ context: WebContext) async throws -> Response {
        let form = try await Form.read(request, context: context, beforeSignIn: true)
        guard !form["firm"].isEmpty, !form["email"].isEmpty else { throw PageError.invalid("Enter your firm's ID and your e-mail address.") }
        // Identity answers the same whether or not the address has an account, and so does this page.
        _ = try await app.backend.identity.requestPasswordReset(.with {
            $0.orgID = form["firm"]
            $0.email = form["email"]
        }, options: Caller(token: nil, clientAddress: context.clientAddress).options)
        return app.renderer.message(title: "Check your e-mail",
                                    text: "If that address has an account at that firm, we have sent it a link to choose a new password. The link works for one hour.",
                                    link: (href: "/sign-in", label: "Back to sign in"), chrome: nil, status: .ok)
    }

    private func setPassword(_ request: Request, _ context: WebContext, invitation: Bool) async throws -> Response {
        let form = try await Form.read(request, context: context, beforeSignIn: true)
        let password = form.raw("password")
        guard password == form.raw("confirm") else { throw PageError.invalid("The two passwords are not the same.") }
        let options = Caller(token: nil, clientAddress: context.clientAddress).options
        do {
            if invitation {
                let redeemed = try await app.backend.identity.redeemInvitation(.with {
                    $0.invitationToken = form["token"]
                    $0.password = password
                }, options: options)
                return WebApp.seeOther("/sign-in?reason=ready&firm=\(redeemed.orgID)")
            }
            _ = try await app.backend.identity.resetPassword(.with {
                $0.resetToken = form["token"]
                $0.password = password
            }, options: options)
            return WebApp.seeOther("/sign-in?reason=changed")
        } catch let error as RPCError where [.notFound, .unauthenticated, .permissionDenied].contains(error.code) {
            return app.renderer.message(title: "This link no longer works",
                                        text: invitation ? "Invitations work once and expire. Ask your firm's CallTrace admin to invite you again."
                                            : "Reset links work once, for one hour. Ask for a new one.",
                                        link: invitation ? (href: "/sign-in", label: "Sign in") : (href: "/forgot-password", label: "Ask for a new link"),
                                        chrome: nil, status: .gone)
        }
    }

    // MARK: Shared

    /// A page before sign-in: its forms carry the token of the pre-session cookie, set here.
    private func preSessionPage(_ request: Request, _ template: String, title: String, data: [String: Any],
                                status: HTTPResponse.Status = .ok) throws -> Response {
        let existing = request.cookies[Cookies.preSession]?.value
        let token = try existing.flatMap { SessionSeal.data(base64URL: $0)?.count == 32 ? $0 : nil } ?? SessionSeal.randomToken()
        var data = data
        data["csrf"] = token
        var response = app.renderer.page(template, title: title, data: data, chrome: nil, status: status)
        if existing != token { response.setCookie(Cookies.make(Cookies.preSession, token)) }
        return response
    }

    /// The firm ID to fill in: from the link (`?firm=`), else the one last signed in to.
    private func firm(_ request: Request) -> String {
        let given = request.query["firm"].isEmpty ? request.cookies[Cookies.firm]?.value ?? "" : request.query["firm"]
        return given.count <= 64 ? given : ""
    }

    /// Where to go after signing in: a path of this site only (never `//elsewhere` or a URL).
    static func returnPath(_ next: String?) -> String {
        guard let next, isSafeReturn(next) else { return "/calls" }
        return next
    }

    static func isSafeReturn(_ path: String) -> Bool {
        path.hasPrefix("/") && !path.hasPrefix("//") && !path.contains("\\") && path.count <= 200
            && path.unicodeScalars.allSatisfy { $0.isASCII && $0.value > 0x20 && $0.value != 0x7f }
            && !path.hasPrefix("/sign-in") && !path.hasPrefix("/sign-out")
    }
}
