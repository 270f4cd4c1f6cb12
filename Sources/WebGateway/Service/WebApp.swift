import CallTraceHTTP
import CallTraceProto
import CallTraceServiceHost
import Hummingbird
import Logging

/// The web app: its pages by feature (`SignInPages`, `AccountPages`, `CallPages`, `SharePages`,
/// `UserPages`), the website tag (`WebsiteTagRoutes`, behind `TagGuard`) and the JSON API (`APIv1` and the services' methods relayed by `RPCRelay`, behind `APIGuard`), each registering its routes, over what they share.
struct WebApp: Sendable {
    let backend: Backend
    let webhooks: WebhookRules
    let renderer: Renderer
    let seal: SessionSeal
    let publicURL: PublicURL
    let statics: StaticFiles
    let clock: any WallClock
    let logger: Logger
    let trustedProxies: Set<String>
    /// The website tag's script and its endpoints' rate limits (`WebsiteTagRoutes`).
    let tagScript: TagScript
    let tagLimits: TagRateLimits

    func router() -> Router<WebContext> {
        let router = Router(context: WebContext.self)
        router.add(middleware: APIGuard(trustedProxies: trustedProxies, logger: logger))
        router.add(middleware: TagGuard(trustedProxies: trustedProxies, logger: logger))
        router.add(middleware: PageGuard(seal: seal, trustedProxies: trustedProxies, failures: Failures(renderer: renderer, logger: logger)))
        router.get("/static/:name") { _, context in
            guard let response = statics.response(context.parameters.get("name") ?? "") else { throw PageError.notFound }
            return response
        }
        // For nginx's and the operator's checks: the HTTP side answers (the services' health is `calltrace health`).
        router.get("/healthz") { _, _ in Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "ok\n"))) }
        router.get("/") { _, context in
            Response.redirect(to: context.session == nil ? "/sign-in" : "/calls", type: .found)
        }
        SignInPages(app: self).register(on: router)
        AccountPages(app: self).register(on: router)
        ApiTokenPages(app: self).register(on: router)
        CallPages(app: self).register(on: router)
        SharePages(app: self).register(on: router)
        UserPages(app: self).register(on: router)
        ReportPages(app: self).register(on: router)
        NumberPages(app: self).register(on: router)
        BlockListPages(app: self).register(on: router)
        WebsitePages(app: self).register(on: router)
        AuditPages(app: self).register(on: router)
        RequestPages(app: self).register(on: router)
        BundlePages(app: self).register(on: router)
        CallRecordPages(app: self).register(on: router)
        SettingsPages(app: self).register(on: router)
        FirmSettingsPages(app: self).register(on: router)
        WebhookPages(app: self).register(on: router)
        WebhookAPI(app: self).register(on: router)
        APIv1(app: self).register(on: router)
        RPCRelay(peers: backend.peers, logger: logger).register(on: router)
        WebsiteTagRoutes(app: self).register(on: router)
        return router
    }

    /// The signed-in person's session, or a sign-in redirect.
    func session(_ context: WebContext) throws -> WebSession {
        guard let session = context.session else { throw PageError.signInNeeded }
        return session
    }

    /// The page header for the signed-in person: identity says who they are and what their role
    /// permits (a role changed a moment ago shows at once), and the navigation follows.
    func chrome(_ context: WebContext, current: String) async throws -> (Chrome, Set<Calltrace_Identity_V1_Permission>) {
        let session = try session(context)
        let me = try await backend.identity.getCurrentUser(.with { $0.orgID = session.orgID }, options: context.caller.options)
        let permissions = Set(me.permissions)
        var sections: [Chrome.Section] = []
        if permissions.contains(.transcriptsRead) || permissions.contains(.reportsRead) { sections.append(.init(name: "Calls", href: "/calls")) }
        if permissions.contains(.reportsRead) {
            sections.append(.init(name: "Reports", href: "/reports"))
            sections.append(.init(name: "Numbers", href: "/numbers"))
        }
        if permissions.contains(.auditRead) { sections.append(.init(name: "Audit", href: "/audit")) }
        if permissions.contains(.requestsManage) { sections.append(.init(name: "Requests", href: "/requests")) }
        if let settings = SettingsPages.entry(permissions) { sections.append(.init(name: "Settings", href: settings)) }
        sections.append(.init(name: "Account", href: "/account"))
        let chrome = Chrome(displayName: me.user.displayName, role: Formats.role(me.user.role), csrf: session.csrf, sections: sections,
                            current: current)
        return (chrome, permissions)
    }

    /// 303 after a form: the browser's reload does not post it again.
    static func seeOther(_ path: String) -> Response { .redirect(to: path, type: .normal) }
}
