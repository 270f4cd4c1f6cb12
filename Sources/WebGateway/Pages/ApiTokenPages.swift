import CallTraceProto
import CallTraceRPC
import Hummingbird

/// The signed-in person's API tokens (Account → API tokens): what the `calltrace` CLI and a
/// person's own tools use instead of a certificate (`/api/v1`). Identity makes a token only for a
/// signed-in session, scoped to permissions the person's role has, expiring; it is shown once,
/// on the page that made it, with the lines that set the CLI up.
struct ApiTokenPages: Sendable {
    let app: WebApp

    func register(on router: Router<WebContext>) {
        router.get("/account/api-tokens") { _, context in try await tokens(context) }
        router.post("/account/api-tokens") { request, context in try await create(request, context) }
        router.post("/account/api-tokens/:id/revoke") { request, context in
            try await revoke(request, context, id: try context.parameters.require("id"))
        }
    }

    /// What a token may be scoped to, in the person's words, in the proto's order.
    static let labels: [Calltrace_Identity_V1_Permission: String] = [
        .recordingsPlay: "Play recordings", .transcriptsRead: "Read calls and transcripts", .linksShare: "Share recordings by link",
        .recordsDelete: "Delete calls", .mattersExport: "Export to matter files", .reportsRead: "Read reports and numbers",
        .settingsManage: "See and change settings", .usersManage: "Manage users", .grantsManage: "Give support access",
        .requestsManage: "Handle subject requests", .auditRead: "Read the audit trail", .orgOffboard: "Offboard the firm",
        .callsMark: "Mark call outcomes",
        .callsPlace: "Call enquirers back",
    ]

    private func tokens(_ context: WebContext, made: (token: String, name: String)? = nil, notice: String? = nil) async throws -> Response {
        let session = try app.session(context)
        let (chrome, permissions) = try await app.chrome(context, current: "Account")
        let tokens: [Calltrace_Identity_V1_ApiToken]
        do {
            tokens = try await app.backend.identity.listApiTokens(.with { $0.orgID = session.orgID }, options: context.caller.options).apiTokens
        } catch where made != nil {
            tokens = []  // the new token is shown whatever: it is never shown again
        }
        let now = app.clock.nowUnixMs
        var data: [String: Any] = [
            "csrf": session.csrf,
            "scopes": Calltrace_Identity_V1_Permission.allCases.filter(permissions.contains).compactMap { permission in
                Self.labels[permission].map { ["value": "\(permission.rawValue)", "label": $0] }
            },
            "hasTokens": !tokens.isEmpty,
            "tokens": tokens.map { token -> [String: Any] in
                let state = token.revokedAtUnixMs > 0 ? "Revoked" : token.expiresAtUnixMs <= now ? "Expired" : "Active"
                return [
                    "id": token.tokenID, "name": token.name, "prefix": token.prefix, "state": state, "active": state == "Active",
                    "kept": !token.heldByGateway.isEmpty,
                    "scopes": token.permissions.map { Self.labels[$0] ?? "\($0)" }.joined(separator: ", "),
                    "created": Formats.dateTime(unixMs: token.createdAtUnixMs), "expires": Formats.dateTime(unixMs: token.expiresAtUnixMs),
                    "used": token.lastUsedAtUnixMs > 0 ? Formats.dateTime(unixMs: token.lastUsedAtUnixMs) : "Never",
                ]
            },
        ]
        if let made {
            data["made"] = ["token": made.token, "name": made.name, "url": app.publicURL.base, "org": session.orgID]
        }
        if let notice { data["notice"] = notice }
        return app.renderer.page("api-tokens", title: "API tokens", data: data, chrome: chrome)
    }

    private func create(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        let name = form["name"]
        guard !name.isEmpty, name.count <= 100 else { throw PageError.invalid("Name the token (what it is for), in at most 100 characters.") }
        let permissions = Calltrace_Identity_V1_Permission.allCases.filter { $0.rawValue != 0 && form["scope-\($0.rawValue)"] == "yes" }
        guard !permissions.isEmpty else { throw PageError.invalid("Choose at least one thing the token may do.") }
        guard let days = UInt32(form["days"]), (1...365).contains(days) else { throw PageError.invalid("A token lasts from 1 to 365 days.") }
        let made = try await app.backend.identity.createApiToken(.with {
            $0.orgID = session.orgID
            $0.name = name
            $0.permissions = permissions
            $0.durationSeconds = days * 86_400
        }, options: context.caller.options)
        return try await tokens(context, made: (made.token, name))
    }

    private func revoke(_ request: Request, _ context: WebContext, id: String) async throws -> Response {
        let session = try app.session(context)
        _ = try await Form.read(request, context: context)
        _ = try await app.backend.identity.revokeApiToken(.with {
            $0.orgID = session.orgID
            $0.tokenID = id
        }, options: context.caller.options)
        return try await tokens(context, notice: "Token revoked: it opens nothing from now on.")
    }
}
