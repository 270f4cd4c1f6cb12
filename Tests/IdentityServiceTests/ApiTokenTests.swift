import CallTraceProto
import CallTraceRPC
import CallTraceStorage
import CallTraceTestSupport
import Foundation
import IdentityDomain
import Testing

/// API tokens through the web gateway's eyes: made, used, listed and revoked over real mutual
/// TLS, against identity's real database, with a test clock.
extension IdentityDeployment {
    /// A new API token, made under `session` (a session's token, or whatever a test tries).
    func createApiToken(_ session: String, org: String, _ permissions: [Calltrace_Identity_V1_Permission], name: String = "Clio sync",
                        seconds: UInt32 = 0) async throws -> Calltrace_Identity_V1_CreateApiTokenResponse {
        try await gateway.unary(Identity.createApiToken, .with {
            $0.orgID = org; $0.name = name; $0.permissions = permissions; $0.durationSeconds = seconds
        }, options: Self.bearer(session))
    }

    func listApiTokens(_ token: String, org: String, allUsers: Bool = false) async throws -> Calltrace_Identity_V1_ListApiTokensResponse {
        try await gateway.unary(Identity.listApiTokens, .with { $0.orgID = org; $0.allUsers = allUsers }, options: Self.bearer(token))
    }

    func revokeApiToken(_ id: String, org: String, with token: String) async throws {
        try await revokeApiToken(id, org: org, with: Self.bearer(token))
    }

    func revokeApiToken(_ id: String, org: String, with options: CallOptions) async throws {
        _ = try await gateway.unary(Identity.revokeApiToken, .with { $0.orgID = org; $0.tokenID = id }, options: options)
    }

    /// The organisation's audit events waiting in identity's outbox, oldest first.
    func auditEvents(org: String) async throws -> [Calltrace_Compliance_V1_AuditEvent] {
        try await database.read { db in
            try db.query("SELECT event FROM audit_outbox WHERE org_id = ? ORDER BY id", org).compactMap { row in
                try row.blob("event").map { try Calltrace_Compliance_V1_AuditEvent(serializedBytes: $0) }
            }
        }
    }
}

@Suite("Issue 30: per-user API tokens — scoped, expiring, revocable, shown once, audited")
struct ApiTokenTests {
    typealias Identity = Calltrace_Identity_V1_IdentityService

    @Test("A token is shown once, acts for its user within its scopes and their current role, and stops at once when revoked; all audited")
    func lifecycle() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        let member = try await deployment.invite(.member, in: org, adminToken: admin, email: "member@firm.example")
        let memberID = try await deployment.authorize(member, org: org, .reportsRead).userID
        let now = deployment.clock.nowUnixMs

        let created = try await deployment.createApiToken(member, org: org, [.reportsRead, .recordingsPlay])
        let secret = created.token
        #expect(secret.hasPrefix("ctk_") && secret.count == 47 && secret.dropFirst(4).allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        #expect(created.apiToken.prefix == String(secret.prefix(12)) && created.apiToken.tokenID.hasPrefix("api_"))
        #expect(created.apiToken.userID == memberID && created.apiToken.name == "Clio sync")
        #expect(created.apiToken.permissions == [.recordingsPlay, .reportsRead], "in declaration order")
        #expect(created.apiToken.expiresAtUnixMs == now + 90 * 86_400_000, "90 days by default")

        // Authorize: the member, for what the token names; not for what it leaves out.
        let principal = try await deployment.authorize(secret, org: org, .recordingsPlay)
        #expect(principal.userID == memberID && principal.role == .member && principal.apiTokenID == created.apiToken.tokenID)
        #expect(await code { _ = try await deployment.authorize(secret, org: org, .transcriptsRead) } == .permissionDenied,
                "the role has it; the token does not")
        let whoami = try await deployment.gateway.unary(Identity.getCurrentUser, .with { $0.orgID = org }, options: IdentityDeployment.bearer(secret))
        #expect(whoami.user.userID == memberID && whoami.permissions == [.recordingsPlay, .reportsRead])

        // Never beyond the role, at creation or later.
        #expect(await code { _ = try await deployment.createApiToken(member, org: org, [.reportsRead, .usersManage]) } == .permissionDenied)
        #expect(await code { _ = try await deployment.createApiToken(member, org: org, []) } == .invalidArgument)
        #expect(await code { _ = try await deployment.createApiToken(member, org: org, [.reportsRead], name: "") } == .invalidArgument)
        #expect(await code { _ = try await deployment.createApiToken(member, org: org, [.reportsRead], name: "two\nlines") } == .invalidArgument)
        _ = try await deployment.gateway.unary(Identity.changeUserRole, .with { $0.orgID = org; $0.userID = memberID; $0.role = .analyst },
                                               options: IdentityDeployment.bearer(admin))
        #expect(await code { _ = try await deployment.authorize(secret, org: org, .recordingsPlay) } == .permissionDenied,
                "a role downgrade narrows the token at once")
        #expect(try await deployment.authorize(secret, org: org, .reportsRead).role == .analyst)
        let narrowed = try await deployment.gateway.unary(Identity.getCurrentUser, .with { $0.orgID = org }, options: IdentityDeployment.bearer(secret))
        #expect(narrowed.permissions == [.reportsRead])

        // Listing: the owner's own, or everyone's with users.manage; never a secret.
        let own = try await deployment.listApiTokens(member, org: org)
        #expect(own.apiTokens.map(\.tokenID) == [created.apiToken.tokenID] && own.apiTokens[0].prefix == created.apiToken.prefix)
        #expect(await code { _ = try await deployment.listApiTokens(member, org: org, allUsers: true) } == .permissionDenied)
        deployment.clock.advance(by: .seconds(1))
        let adminsOwn = try await deployment.createApiToken(admin, org: org, [.auditRead], name: "Audit export")
        let everyone = try await deployment.listApiTokens(admin, org: org, allUsers: true)
        #expect(everyone.apiTokens.map(\.tokenID) == [adminsOwn.apiToken.tokenID, created.apiToken.tokenID], "newest first")
        #expect(everyone.apiTokens.map(\.userID).last == memberID)
        #expect(try await deployment.listApiTokens(admin, org: org).apiTokens.map(\.tokenID) == [adminsOwn.apiToken.tokenID])
        for listing in [own, everyone] {
            let bytes = try listing.serializedBytes() as [UInt8]
            let text = String(decoding: bytes, as: UTF8.self) + (try listing.jsonString())
            #expect(!text.contains(secret) && !text.contains(adminsOwn.token) && !text.contains(String(secret.dropFirst(12).prefix(8))))
        }

        // Revoked by its owner: refused at once; a repeat answers OK and changes nothing.
        try await deployment.revokeApiToken(created.apiToken.tokenID, org: org, with: member)
        #expect(await code { _ = try await deployment.authorize(secret, org: org, .reportsRead) } == .unauthenticated)
        #expect(await code { try await deployment.revokeApiToken(created.apiToken.tokenID, org: org, with: member) } == .ok)
        #expect(try await deployment.listApiTokens(member, org: org).apiTokens[0].revokedAtUnixMs == deployment.clock.nowUnixMs)
        // Someone else's: only with users.manage.
        #expect(await code { try await deployment.revokeApiToken(adminsOwn.apiToken.tokenID, org: org, with: member) } == .permissionDenied)
        #expect(await code { try await deployment.revokeApiToken("api_none", org: org, with: member) } == .notFound)
        #expect(try await deployment.authorize(adminsOwn.token, org: org, .auditRead).userID != memberID)

        let events = try await deployment.auditEvents(org: org)
        let created2 = events.filter { $0.action == "api_token.created" }, revoked = events.filter { $0.action == "api_token.revoked" }
        #expect(created2.map(\.resource) == ["api_token:\(created.apiToken.tokenID)", "api_token:\(adminsOwn.apiToken.tokenID)"])
        #expect(created2.first?.actor == "user:\(memberID)" && created2.first?.detail.contains("recordings.play, reports.read") == true)
        #expect(revoked.map(\.resource) == ["api_token:\(created.apiToken.tokenID)"], "revoked once, however often asked")
        #expect(events.filter { $0.resource.hasPrefix("api_token:") }.count == 3, "a refused use is not audited")
        let log = await deployment.stop()
        #expect(!log.contains(secret) && !log.contains(adminsOwn.token))
    }

    @Test("A token expires on its own clock (default 90 days, at most 365); its last use is written at most once a minute")
    func expiryAndLastUse() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        #expect(await code { _ = try await deployment.createApiToken(admin, org: org, [.reportsRead], seconds: 366 * 86_400) } == .invalidArgument)
        let hour = try await deployment.createApiToken(admin, org: org, [.reportsRead], name: "An hour", seconds: 3600)
        let year = try await deployment.createApiToken(admin, org: org, [.reportsRead], name: "A year", seconds: 365 * 86_400)
        func lastUsed(_ id: String) async throws -> Int64 {
            try await deployment.listApiTokens(year.token, org: org).apiTokens.first { $0.tokenID == id }?.lastUsedAtUnixMs ?? -1
        }
        #expect(try await lastUsed(hour.apiToken.tokenID) == 0, "never used")

        let first = deployment.clock.nowUnixMs
        _ = try await deployment.authorize(hour.token, org: org, .reportsRead)
        #expect(try await lastUsed(hour.apiToken.tokenID) == first)
        deployment.clock.advance(by: .seconds(30))
        _ = try await deployment.authorize(hour.token, org: org, .reportsRead)
        #expect(try await lastUsed(hour.apiToken.tokenID) == first, "not a write on every call")
        deployment.clock.advance(by: .seconds(31))
        _ = try await deployment.authorize(hour.token, org: org, .reportsRead)
        #expect(try await lastUsed(hour.apiToken.tokenID) == deployment.clock.nowUnixMs)

        deployment.clock.advance(by: .seconds(3600 - 61 - 1))
        #expect(try await deployment.authorize(hour.token, org: org, .reportsRead).orgID == org, "a second before its expiry")
        deployment.clock.advance(by: .seconds(1))
        #expect(await code { _ = try await deployment.authorize(hour.token, org: org, .reportsRead) } == .unauthenticated)
        // No idle time, unlike a session: the year's token works after months unused.
        deployment.clock.advance(by: .seconds(200 * 86_400))
        #expect(await code { _ = try await deployment.authorize(admin, org: org, .reportsRead) } == .unauthenticated, "the session ended long ago")
        #expect(try await deployment.authorize(year.token, org: org, .reportsRead).orgID == org)
        deployment.clock.advance(by: .seconds(165 * 86_400))
        #expect(await code { _ = try await deployment.authorize(year.token, org: org, .reportsRead) } == .unauthenticated)
        _ = await deployment.stop()
    }

    @Test("A suspended or removed user's, a suspended firm's and another firm's tokens are refused as their sessions are; the allow-list applies; offboarding counts them")
    func refusedAsSessionsAre() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        let (otherOrg, otherAdmin) = try await deployment.organisationWithAdmin(email: "admin@other.example")
        let adminToken = try await deployment.createApiToken(admin, org: org, [.reportsRead, .usersManage]).token
        let otherToken = try await deployment.createApiToken(otherAdmin, org: otherOrg, [.reportsRead]).token

        // Another firm's token: PERMISSION_DENIED here, as another firm's session is.
        #expect(await code { _ = try await deployment.authorize(otherToken, org: org, .reportsRead) } == .permissionDenied)
        #expect(await code { _ = try await deployment.authorize(otherAdmin, org: org, .reportsRead) } == .permissionDenied)
        #expect(await code { _ = try await deployment.listApiTokens(otherToken, org: org) } == .permissionDenied)
        // An unknown token written as an API token, and a session token that looks like none.
        #expect(await code { _ = try await deployment.authorize("ctk_" + String(repeating: "A", count: 43), org: org, .reportsRead) } == .unauthenticated)

        // Suspended: refused. Removed: refused, and revoked (each audited).
        let suspended = try await deployment.invite(.member, in: org, adminToken: admin, email: "suspended@firm.example")
        let suspendedID = try await deployment.authorize(suspended, org: org, .reportsRead).userID
        let suspendedToken = try await deployment.createApiToken(suspended, org: org, [.reportsRead]).token
        let removed = try await deployment.invite(.member, in: org, adminToken: admin, email: "removed@firm.example")
        let removedID = try await deployment.authorize(removed, org: org, .reportsRead).userID
        let removedTokens = [try await deployment.createApiToken(removed, org: org, [.reportsRead]),
                             try await deployment.createApiToken(removed, org: org, [.recordingsPlay], name: "Second")]
        // Users are managed with the admin's API token (users.manage in its scopes), as through /api/v1.
        _ = try await deployment.gateway.unary(Identity.suspendUser, .with { $0.orgID = org; $0.userID = suspendedID },
                                               options: IdentityDeployment.bearer(adminToken))
        _ = try await deployment.gateway.unary(Identity.removeUser, .with { $0.orgID = org; $0.userID = removedID },
                                               options: IdentityDeployment.bearer(adminToken))
        #expect(await code { _ = try await deployment.authorize(suspendedToken, org: org, .reportsRead) } == .unauthenticated)
        for made in removedTokens {
            #expect(await code { _ = try await deployment.authorize(made.token, org: org, .reportsRead) } == .unauthenticated)
        }
        let listed = try await deployment.listApiTokens(adminToken, org: org, allUsers: true).apiTokens
        #expect(listed.filter { $0.userID == removedID }.allSatisfy { $0.revokedAtUnixMs > 0 })
        #expect(listed.filter { $0.userID == suspendedID }.allSatisfy { $0.revokedAtUnixMs == 0 }, "refused while suspended, not revoked")
        let revocations = try await deployment.auditEvents(org: org).filter { $0.action == "api_token.revoked" }
        #expect(Set(revocations.map(\.resource)) == Set(removedTokens.map { "api_token:\($0.apiToken.tokenID)" }))
        #expect(revocations.allSatisfy { $0.detail == "user removed" && $0.actor.hasPrefix("user:") })

        // The organisation's IP allow-list, as for sessions.
        _ = try await deployment.gateway.unary(Identity.setSecurityPolicy, .with { $0.orgID = org; $0.allowedClientRanges = ["198.51.100.0/24"] },
                                               options: IdentityDeployment.bearer(admin))
        func use(from address: String) async -> StatusCode? {
            await code { _ = try await deployment.authorize(adminToken, org: org, .reportsRead, from: address) }
        }
        #expect(await use(from: "198.51.100.9") == .ok)
        #expect(await use(from: "192.0.2.1") == .permissionDenied)
        #expect(await use(from: "") == .permissionDenied)

        // The organisation's two-factor requirement, as for sessions: an unenrolled user's token is refused.
        var fromOffice = try IdentityDeployment.bearer(admin)
        try fromOffice.metadata.add("x-client-address", "198.51.100.7")
        _ = try await deployment.gateway.unary(Identity.setSecurityPolicy, .with {
            $0.orgID = org; $0.allowedClientRanges = ["198.51.100.0/24"]; $0.requireTwoFactor = true
        }, options: fromOffice)
        #expect(await use(from: "198.51.100.9") == .permissionDenied)

        // A suspended firm: refused. Offboarded: its tokens are deleted and counted.
        #expect(try await deployment.authorize(otherToken, org: otherOrg, .reportsRead).orgID == otherOrg)
        _ = try await deployment.operatorClient.unary(Identity.suspendOrganization, .with { $0.orgID = otherOrg; $0.reason = "unpaid" })
        #expect(await code { _ = try await deployment.authorize(otherToken, org: otherOrg, .reportsRead) } == .unauthenticated)
        let compliance = try deployment.client(TemporaryPKI.identity("service", "compliance"))
        let offboarded = try await compliance.unary(Identity.markOrganizationOffboarded, .with { $0.orgID = org })
        #expect(offboarded.apiTokensDeleted == 4, "revoked ones too: \(offboarded)")
        #expect(try await compliance.unary(Identity.markOrganizationOffboarded, .with { $0.orgID = org }) == offboarded, "the same receipt again")
        #expect(await code { _ = try await deployment.authorize(adminToken, org: org, .reportsRead) } == .unauthenticated)
        _ = await deployment.stop()
    }

    @Test("An API token never makes a credential call: no two-factor enrolment, no new token; it opens no session")
    func credentialCallsNeedASession() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        let token = try await deployment.createApiToken(admin, org: org, Calltrace_Identity_V1_Permission.allCases.filter { $0 != .unspecified }).token
        let asToken = try IdentityDeployment.bearer(token)
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.enrollTotp, .with { $0.orgID = org; $0.password = "correct horse battery staple" }, options: asToken)
        } == .permissionDenied)
        #expect(await code { _ = try await deployment.gateway.unary(Identity.confirmTotp, .with { $0.orgID = org; $0.code = "123456" }, options: asToken) }
                == .permissionDenied)
        #expect(await code { _ = try await deployment.createApiToken(token, org: org, [.reportsRead]) } == .permissionDenied)
        // Logging out with it ends no session and leaves it working: revoking is how it ends.
        #expect(await code { _ = try await deployment.gateway.unary(Identity.logout, .init(), options: asToken) } == .ok)
        #expect(try await deployment.authorize(token, org: org, .usersManage).role == .admin)
        let sessions = try await deployment.database.read { db in try db.query("SELECT count(*) AS n FROM sessions")[0].int("n") }
        #expect(sessions == 1, "the admin's login only")
        // What it may do for users it does, as a session would (users.manage is in its scopes).
        #expect(try await deployment.gateway.unary(Identity.listUsers, .with { $0.orgID = org }, options: asToken).users.count == 1)
        _ = await deployment.stop()
    }

    @Test("""
        A token the web gateway keeps for a webhook works only when that gateway presents it for nobody at an address, past the \
        firm's allow-list; made from an API token, it is no wider and lives no longer than that token, and is revoked with it
        """)
    func heldByAGateway() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        let adminID = try await deployment.authorize(admin, org: org, .reportsRead).userID
        func fromOffice(_ token: String) throws -> CallOptions {
            var options = try IdentityDeployment.bearer(token)
            try options.metadata.add("x-client-address", "198.51.100.7")
            return options
        }
        func create(_ maker: String, _ permissions: [Calltrace_Identity_V1_Permission], held: Bool = true, seconds: UInt32 = 0,
                    options: CallOptions? = nil) async throws -> Calltrace_Identity_V1_CreateApiTokenResponse {
            try await deployment.gateway.unary(Identity.createApiToken, .with {
                $0.orgID = org; $0.name = "Webhook to crm.example"; $0.permissions = permissions; $0.durationSeconds = seconds; $0.heldByGateway = held
            }, options: try options ?? fromOffice(maker))
        }
        _ = try await deployment.gateway.unary(Identity.setSecurityPolicy, .with { $0.orgID = org; $0.allowedClientRanges = ["198.51.100.0/24"] },
                                               options: try fromOffice(admin))

        // Made under the admin's session, in the office; kept by the web gateway.
        let held = try await create(admin, [.reportsRead])
        #expect(held.apiToken.heldByGateway == "web" && held.apiToken.madeByTokenID.isEmpty)
        let nobody = ServerContext.actingForNobody
        #expect(try await deployment.authorize(held.token, org: org, .reportsRead, gateway: "web", from: nobody).userID == adminID,
                "the web gateway polling for the firm, saying it acts for nobody: the allow-list is about people")
        #expect(await code { _ = try await deployment.authorize(held.token, org: org, .reportsRead, gateway: "web") } == .permissionDenied,
                "no address is not the same as saying so (a lost address fails closed)")
        #expect(await code { _ = try await deployment.authorize(held.token, org: org, .reportsRead, gateway: "web", from: "198.51.100.9") }
                == .permissionDenied, "presented for a person (the gateway's API always says whose address): refused, even from the office")
        #expect(await code { _ = try await deployment.authorize(held.token, org: org, .reportsRead, gateway: "telephony", from: nobody) } == .permissionDenied)
        #expect(await code { _ = try await deployment.authorize(held.token, org: org, .reportsRead, from: nobody) } == .permissionDenied, "no gateway")
        #expect(await code { _ = try await deployment.authorize(held.token, org: org, .transcriptsRead, gateway: "web", from: nobody) } == .permissionDenied,
                "still within its scopes")
        #expect(await code { _ = try await deployment.authorize(admin, org: org, .reportsRead, gateway: "web", from: nobody) } == .permissionDenied,
                "a person's own credential is held to the allow-list as before: nobody is no address of the office")
        // Identity's own calls: the same rule, from the certificate that carried it.
        var asHeld = try IdentityDeployment.bearer(held.token)
        try asHeld.metadata.add("x-client-address", nobody)
        #expect(try await deployment.gateway.unary(Identity.getCurrentUser, .with { $0.orgID = org }, options: asHeld).user.userID == adminID)
        let telephony = try deployment.client(TemporaryPKI.identity("gateway", "telephony"))
        #expect(await code { _ = try await telephony.unary(Identity.getCurrentUser, .with { $0.orgID = org }, options: asHeld) } == .permissionDenied)
        #expect(await code { _ = try await create(held.token, [.reportsRead], options: asHeld) } == .permissionDenied, "a kept token makes nothing")

        // Made from the admin's API token (a CRM adding a webhook through the API).
        let crm = try await create(admin, [.reportsRead, .settingsManage], held: false, seconds: 30 * 86_400)
        #expect(await code { _ = try await create(crm.token, [.reportsRead], held: false) } == .permissionDenied,
                "an API token still makes no token a person keeps")
        #expect(await code { _ = try await create(crm.token, [.reportsRead, .transcriptsRead]) } == .permissionDenied, "no wider than its maker")
        var outside = try IdentityDeployment.bearer(crm.token)
        try outside.metadata.add("x-client-address", "192.0.2.1")
        #expect(await code { _ = try await create(crm.token, [.reportsRead], options: outside) } == .permissionDenied,
                "the maker is a person's token: held to the allow-list")
        let child = try await create(crm.token, [.reportsRead], seconds: 365 * 86_400)
        #expect(child.apiToken.madeByTokenID == crm.apiToken.tokenID && child.apiToken.heldByGateway == "web")
        #expect(child.apiToken.expiresAtUnixMs == crm.apiToken.expiresAtUnixMs, "it ends when its maker would")
        #expect(try await deployment.authorize(child.token, org: org, .reportsRead, gateway: "web", from: nobody).userID == adminID)

        // Revoking the maker revokes what it made, audited.
        try await deployment.revokeApiToken(crm.apiToken.tokenID, org: org, with: try fromOffice(admin))
        #expect(await code { _ = try await deployment.authorize(child.token, org: org, .reportsRead, gateway: "web", from: nobody) } == .unauthenticated)
        #expect(try await deployment.authorize(held.token, org: org, .reportsRead, gateway: "web", from: nobody).userID == adminID, "the session's stays")
        let revoked = try await deployment.auditEvents(org: org).filter { $0.action == "api_token.revoked" }
        #expect(revoked.map(\.resource) == ["api_token:\(crm.apiToken.tokenID)", "api_token:\(child.apiToken.tokenID)"])
        #expect(revoked.last?.detail == "the API token that made it was revoked")
        let created = try await deployment.auditEvents(org: org).filter { $0.action == "api_token.created" && $0.resource == "api_token:\(child.apiToken.tokenID)" }
        #expect(created.first?.detail.contains("kept by gateway web; made by API token \(crm.apiToken.tokenID)") == true, "\(created)")
        _ = await deployment.stop()
    }

    @Test("calltrace api-tokens create, list and revoke: the secret printed once, JSON on request, refusals as exit codes", .overTLS)
    func commandLine() async throws {
        let identity = try await InProcessService.start(IdentityService.self)
        defer { Task { await identity.stop() } }
        let pki = identity.setup.pki
        _ = try pki.credentials(for: TemporaryPKI.identity("gateway", "web"), named: "gateway-web")
        let made = try await identity.newOrganisation("Smith & Co")
        let calltrace = productsDirectory.appendingPathComponent("calltrace").path
        var environment = ProcessInfo.processInfo.environment
        environment["CALLTRACE_AS"] = "gateway-web"  // a gateway's own tooling; a firm's staff go through the web app (CLIThroughWebAppTests)
        environment["CALLTRACE_TOKEN"] = made.admin
        environment["CALLTRACE_ORG"] = made.org
        func cli(_ arguments: [String]) async throws -> ProcessResult {
            try await run(calltrace, ["api-tokens"] + arguments + ["--pki", pki.directory.path, "--target", "127.0.0.1:\(identity.instance.port)"],
                          environment: environment)
        }

        let help = try await cli(["--help"])
        #expect(help.status == 0 && help.stdout.contains("create") && help.stdout.contains("revoke") && help.stdout.contains("session"), "\(help.stdout)")
        let created = try await cli(["create", "--name", "Clio sync", "--permission", "reports-read", "--permission", "recordings-play", "--days", "30"])
        let secret = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(created.status == 0 && secret.hasPrefix("ctk_") && created.stderr.contains("shown only this once"), "\(created.stdout) \(created.stderr)")
        let tokenID = try #require(created.stderr.split(separator: " ").first { $0.hasPrefix("api_") }.map(String.init))
        let listed = try await cli(["list"])
        #expect(listed.status == 0 && listed.stdout.hasPrefix("\(tokenID)  \(secret.prefix(12))…  Clio sync  recordings-play,reports-read  until ")
                && !listed.stdout.contains(secret), "\(listed.stdout) \(listed.stderr)")
        let json = try await cli(["list", "--all-users", "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any], "\(json.stdout) \(json.stderr)")
        #expect((object["apiTokens"] as? [[String: Any]])?.first?["tokenId"] as? String == tokenID && !json.stdout.contains(secret))
        #expect(try await cli(["create", "--name", "x", "--permission", "reports-read", "--days", "400"]).status != 0)
        #expect(try await cli(["create", "--name", "x", "--permission", "no-such"]).status != 0)

        // The token itself: it may list, but not make another.
        environment["CALLTRACE_TOKEN"] = secret
        #expect(try await cli(["list"]).stdout.contains(tokenID))
        let refused = try await cli(["create", "--name", "Again", "--permission", "reports-read"])
        #expect(refused.status == 4 && refused.stderr.contains("signed-in session"), "\(refused.stderr)")
        environment["CALLTRACE_TOKEN"] = made.admin
        #expect(try await cli(["revoke", tokenID]).stdout.contains("revoked \(tokenID)"))
        #expect(try await cli(["revoke", "api_none"]).status == 3)
        environment["CALLTRACE_TOKEN"] = secret
        #expect(try await cli(["list"]).status == 4, "revoked")
        #expect(!identity.log.text.contains(secret))
    }
}
