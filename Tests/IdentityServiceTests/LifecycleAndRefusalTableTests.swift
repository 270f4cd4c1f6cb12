import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import IdentityDomain
import Foundation
import Testing

@Suite("Identity: user and organisation lifecycle, and every user RPC's refusals")
struct LifecycleAndRefusalTableTests {
    typealias Identity = Calltrace_Identity_V1_IdentityService

    @Test("Suspending a user, changing a role, revoking sessions and suspending the org take effect at once")
    func lifecycle() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin()
        var adminCall = Metadata()
        try adminCall.add("authorization", "Bearer \(admin)")
        let member = try await deployment.invite(.member, in: org, adminToken: admin, email: "m@firm.example")
        let memberID = try await deployment.authorize(member, org: org, .transcriptsRead).userID

        _ = try await deployment.gateway.unary(Identity.changeUserRole, .with { $0.orgID = org; $0.userID = memberID; $0.role = .analyst },
                                               options: .init(metadata: adminCall))
        #expect(await code { _ = try await deployment.authorize(member, org: org, .transcriptsRead) } == .permissionDenied)
        #expect(try await deployment.authorize(member, org: org, .reportsRead).role == .analyst)

        let revoked = try await deployment.gateway.unary(Identity.revokeUserSessions, .with { $0.orgID = org; $0.userID = memberID },
                                                         options: .init(metadata: adminCall))
        #expect(revoked.sessionsEnded == 1)
        #expect(await code { _ = try await deployment.authorize(member, org: org, .reportsRead) } == .unauthenticated)

        let second = try await deployment.invite(.member, in: org, adminToken: admin, email: "s@firm.example")
        let secondID = try await deployment.authorize(second, org: org, .reportsRead).userID
        _ = try await deployment.gateway.unary(Identity.suspendUser, .with { $0.orgID = org; $0.userID = secondID },
                                               options: .init(metadata: adminCall))
        #expect(await code { _ = try await deployment.authorize(second, org: org, .reportsRead) } == .unauthenticated)
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.login, .with {
                $0.orgID = org; $0.email = "s@firm.example"; $0.password = "a long and unusual passphrase"
            }, options: .endUser)
        } == .unauthenticated)

        _ = try await deployment.operatorClient.unary(Identity.suspendOrganization, .with { $0.orgID = org; $0.reason = "unpaid" })
        #expect(await code { _ = try await deployment.authorize(admin, org: org, .reportsRead) } == .unauthenticated)

        // Offboarding ends with compliance marking the org offboarded; nobody else may.
        let (leaving, leavingAdmin) = try await deployment.organisationWithAdmin(email: "admin@leaving.example")
        #expect(await code {
            _ = try await deployment.media.unary(Identity.markOrganizationOffboarded, .with { $0.orgID = leaving })
        } == .permissionDenied)
        let compliance = try deployment.client(TemporaryPKI.identity("service", "compliance"))
        let first = try await compliance.unary(Identity.markOrganizationOffboarded, .with { $0.orgID = leaving })
        #expect(first.usersDeleted == 1 && first.sessionsDeleted >= 1, "\(first)")
        // Idempotent, and a repeat (an answer lost on the way) reports what the first deleted.
        let again = try await compliance.unary(Identity.markOrganizationOffboarded, .with { $0.orgID = leaving })
        #expect(again == first)
        #expect(await code { _ = try await deployment.authorize(leavingAdmin, org: leaving, .reportsRead) } == .unauthenticated)
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.login, .with {
                $0.orgID = leaving; $0.email = "admin@leaving.example"; $0.password = "correct horse battery staple"
            }, options: .endUser)
        } == .unauthenticated)
        _ = await deployment.stop()
    }

    @Test("Every user-authenticated RPC refuses no token, an expired token, another org's token and too weak a role, a session's or an API token's alike", .overTLS)
    func refusalTable() async throws {
        let deployment = try await IdentityDeployment(.inProcess)
        let (org, _) = try await deployment.organisationWithAdmin(email: "admin@a.example")
        func login() async throws -> String {
            try await deployment.gateway.unary(Identity.login, .with {
                $0.orgID = org; $0.email = "admin@a.example"; $0.password = "correct horse battery staple"
            }, options: .endUser).token
        }
        // An expired token: issued, then outlived. Sessions last at most 12 hours; identity's
        // clock moves 11 h 59 min, the other sessions start, then 2 minutes more.
        let expiring = try await login()
        let everything = Calltrace_Identity_V1_Permission.allCases.filter { $0 != .unspecified }
        let expiringApiToken = try await deployment.createApiToken(expiring, org: org, everything, seconds: 3600).token
        deployment.clock.advance(by: .seconds(12 * 3600 - 60))
        let (otherOrg, otherOrgAdmin) = try await deployment.organisationWithAdmin(email: "admin@b.example")
        let otherOrgApiToken = try await deployment.createApiToken(otherOrgAdmin, org: otherOrg, everything).token
        let admin = try await login()
        // An admin's API token scoped to reports only: as weak as a role without the permission.
        let reportsOnlyApiToken = try await deployment.createApiToken(admin, org: org, [.reportsRead]).token
        let member = try await deployment.invite(.member, in: org, adminToken: admin, email: "member@a.example")
        let memberID = try await deployment.authorize(member, org: org, .reportsRead).userID
        let analyst = try await deployment.invite(.analyst, in: org, adminToken: admin, email: "analyst@a.example")
        let analystsApiToken = try await deployment.createApiToken(analyst, org: org, [.reportsRead]).apiToken.tokenID
        deployment.clock.advance(by: .seconds(120))

        let gateway = deployment.gateway
        // Each call, made by `c` (the web gateway unless a refusal needs another peer).
        let calls: [(String, @Sendable (RPCClient, CallOptions) async throws -> Void)] = [
            ("InviteUser", { c, o in _ = try await c.unary(Identity.inviteUser, .with { $0.orgID = org; $0.email = "x@a.example"; $0.role = .member }, options: o) }),
            ("RemoveUser", { c, o in _ = try await c.unary(Identity.removeUser, .with { $0.orgID = org; $0.userID = memberID }, options: o) }),
            ("SuspendUser", { c, o in _ = try await c.unary(Identity.suspendUser, .with { $0.orgID = org; $0.userID = memberID }, options: o) }),
            ("ChangeUserRole", { c, o in _ = try await c.unary(Identity.changeUserRole, .with { $0.orgID = org; $0.userID = memberID; $0.role = .admin }, options: o) }),
            ("RevokeUserSessions", { c, o in _ = try await c.unary(Identity.revokeUserSessions, .with { $0.orgID = org; $0.userID = memberID }, options: o) }),
            ("CreateSupportGrant", { c, o in _ = try await c.unary(Identity.createSupportGrant, .with { $0.orgID = org; $0.permissions = [.reportsRead]; $0.durationSeconds = 60; $0.reason = "t" }, options: o) }),
            ("RevokeSupportGrant", { c, o in _ = try await c.unary(Identity.revokeSupportGrant, .with { $0.orgID = org; $0.grantID = "grt_none" }, options: o) }),
            ("SetSecurityPolicy", { c, o in _ = try await c.unary(Identity.setSecurityPolicy, .with { $0.orgID = org }, options: o) }),
            ("GetSecurityPolicy", { c, o in _ = try await c.unary(Identity.getSecurityPolicy, .with { $0.orgID = org }, options: o) }),
            ("ListUsers", { c, o in _ = try await c.unary(Identity.listUsers, .with { $0.orgID = org }, options: o) }),
            ("ListSupportGrants", { c, o in _ = try await c.unary(Identity.listSupportGrants, .with { $0.orgID = org }, options: o) }),
            ("ResetTwoFactor", { c, o in _ = try await c.unary(Identity.resetTwoFactor, .with { $0.orgID = org; $0.userID = memberID }, options: o) }),
            // Beyond a member's role; and never with an API token.
            ("CreateApiToken", { c, o in _ = try await c.unary(Identity.createApiToken, .with { $0.orgID = org; $0.name = "t"; $0.permissions = [.usersManage] }, options: o) }),
            ("ListApiTokens --all-users", { c, o in _ = try await c.unary(Identity.listApiTokens, .with { $0.orgID = org; $0.allUsers = true }, options: o) }),
            // Another user's token.
            ("RevokeApiToken", { c, o in _ = try await c.unary(Identity.revokeApiToken, .with { $0.orgID = org; $0.tokenID = analystsApiToken }, options: o) }),
        ]
        func options(_ token: String?) -> CallOptions {
            token.flatMap { try? IdentityDeployment.bearer($0) } ?? CallOptions()
        }
        let wrongService = deployment.media  // a service's certificate, where a gateway is expected
        for (name, call) in calls {
            #expect(await code { try await call(gateway, options(nil)) } == .unauthenticated, "\(name): no token")
            #expect(await code { try await call(gateway, options(expiring)) } == .unauthenticated, "\(name): expired token")
            #expect(await code { try await call(gateway, options(otherOrgAdmin)) } == .permissionDenied, "\(name): another org's token")
            #expect(await code { try await call(gateway, options(member)) } == .permissionDenied, "\(name): member role")
            // Operators administer users only through the firm's own admins: no grant reaches these.
            #expect(await code { try await call(deployment.operatorClient, options(admin)) } == .permissionDenied, "\(name): operator")
            #expect(await code { try await call(wrongService, options(admin)) } == .permissionDenied, "\(name): a service's certificate")
            #expect(await code { try await call(gateway, options(expiringApiToken)) } == .unauthenticated, "\(name): expired API token")
            #expect(await code { try await call(gateway, options(otherOrgApiToken)) } == .permissionDenied, "\(name): another org's API token")
            #expect(await code { try await call(gateway, options(reportsOnlyApiToken)) } == .permissionDenied, "\(name): API token without the scope")
        }
        // Operators only: a firm's admin through the web gateway, or a service, is refused.
        #expect(await code { _ = try await gateway.unary(Identity.listOrganizations, .init(), options: options(admin)) } == .permissionDenied)
        #expect(await code { _ = try await wrongService.unary(Identity.listOrganizations, .init(), options: options(admin)) } == .permissionDenied)
        #expect(await code { _ = try await deployment.operatorClient.unary(Identity.listOrganizations, .init()) } == .ok)
        // Token-only RPCs (no role needed): no token, an expired one, another org's.
        let selfService: [(String, @Sendable (CallOptions) async throws -> Void)] = [
            ("EnrollTotp", { o in _ = try await gateway.unary(Identity.enrollTotp, .with { $0.orgID = org }, options: o) }),
            ("ConfirmTotp", { o in _ = try await gateway.unary(Identity.confirmTotp, .with { $0.orgID = org; $0.code = "000000" }, options: o) }),
            ("GetCurrentUser", { o in _ = try await gateway.unary(Identity.getCurrentUser, .with { $0.orgID = org }, options: o) }),
            ("ListApiTokens", { o in _ = try await gateway.unary(Identity.listApiTokens, .with { $0.orgID = org }, options: o) }),
            ("GetAlertPreferences", { o in
                _ = try await gateway.unary(Calltrace_Identity_V1_AlertService.getAlertPreferences, .with { $0.orgID = org }, options: o)
            }),
            ("SetAlertPreferences", { o in
                _ = try await gateway.unary(Calltrace_Identity_V1_AlertService.setAlertPreferences, .with { $0.orgID = org; $0.enabled = [.missedCall] },
                                            options: o)
            }),
        ]
        for (name, call) in selfService {
            #expect(await code { try await call(options(nil)) } == .unauthenticated, "\(name): no token")
            #expect(await code { try await call(options(expiring)) } == .unauthenticated, "\(name): expired token")
            #expect(await code { try await call(options(otherOrgAdmin)) } == .permissionDenied, "\(name): another org's token")
            #expect(await code { try await call(options(expiringApiToken)) } == .unauthenticated, "\(name): expired API token")
            #expect(await code { try await call(options(otherOrgApiToken)) } == .permissionDenied, "\(name): another org's API token")
        }
        // A person's alert choices are a gateway's to carry, never a service's.
        #expect(await code {
            _ = try await wrongService.unary(Calltrace_Identity_V1_AlertService.getAlertPreferences, .with { $0.orgID = org }, options: options(admin))
        } == .permissionDenied)
        #expect(await code { _ = try await gateway.unary(Identity.logout, .init(), options: options(nil)) } == .unauthenticated)
        #expect(await code { _ = try await gateway.unary(Identity.logout, .init(), options: options(expiring)) } == .ok,
                "logging out an expired session is harmless")
        #expect(await code { _ = try await deployment.authorize(expiring, org: org, .reportsRead) } == .unauthenticated)

        // The happy path of each, with the admin's token.
        #expect(await code { try await calls[0].1(gateway, options(admin)) } == .ok)
        #expect(await code { try await calls[3].1(gateway, options(admin)) } == .ok)
        #expect(await code { try await calls[7].1(gateway, options(admin)) } == .ok)
        for name in ["CreateApiToken", "ListApiTokens --all-users", "RevokeApiToken"] {
            #expect(await code { try await calls.first { $0.0 == name }!.1(gateway, options(admin)) } == .ok, "\(name)")
        }
        _ = await deployment.stop()
    }
}

@Suite("Identity: organisations offboarded before offboarding deleted their people")
struct OffboardedBackfillTests {
    @Test("The hourly housekeeping deletes their users and shreds identity's key for them (P11)")
    func backfill() async throws {
        let identity = try await InProcessService.start(IdentityService.self)
        defer { Task { await identity.stop() } }
        let made = try await identity.newOrganisation("Gone & Co")
        // As an older release left it: offboarded, its users and key still there.
        try await identity.instance.database.write { db in
            _ = try db.execute("UPDATE organizations SET status = 'offboarded' WHERE id = ?", made.org)
        }
        func remaining() async throws -> (users: Int64, keys: Int) {
            let users = try await identity.instance.database.read { db in
                try db.query("SELECT count(*) AS n FROM users WHERE org_id = ?", made.org)[0].int("n") ?? -1
            }
            let keys = try identity.instance.keyStore.sync { db in try db.query("SELECT 1 FROM org_keys WHERE org_id = ?", made.org).count }
            return (users, keys)
        }
        #expect(try await remaining() == (1, 1))
        #expect(try await eventually {
            identity.clock.advance(by: .seconds(3600))
            return try await remaining() == (0, 0)
        })
    }
}
