import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import Foundation
import Testing

@Suite("Identity: removal reaches every service's cache; brute force is limited")
struct RemovalAndLockoutTests {
    typealias Identity = Calltrace_Identity_V1_IdentityService

    @Test("A removed user's token is refused by another process's authorisation cache within its TTL")
    func removalReachesCache() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin()
        let member = try await deployment.invite(.member, in: org, adminToken: admin, email: "leaver@firm.example")
        let memberID = try await deployment.authorize(member, org: org, .recordingsPlay).userID

        // This test process plays "media": it asks identity through the shared authoriser.
        var configuration = IdentityAuthorizer.Configuration()
        configuration.allowTTL = .milliseconds(400)
        let authorizer = IdentityAuthorizer(identity: deployment.media, configuration: configuration)
        #expect(try await authorizer.authorize(token: member, org: org, permission: .recordingsPlay).userID == memberID)

        var metadata = Metadata()
        try metadata.add("authorization", "Bearer \(admin)")
        _ = try await deployment.gateway.unary(Identity.removeUser, .with { $0.orgID = org; $0.userID = memberID },
                                               options: .init(metadata: metadata))
        let removedAt = ContinuousClock.now
        // Identity itself refuses at once…
        #expect(await code { _ = try await deployment.authorize(member, org: org, .recordingsPlay) } == .unauthenticated)
        // …and the cache no later than its TTL.
        var refusedAfter: Duration?
        while removedAt.duration(to: .now) < .seconds(3) {
            if await code({ _ = try await authorizer.authorize(token: member, org: org, permission: .recordingsPlay) }) == .unauthenticated {
                refusedAfter = removedAt.duration(to: .now)
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let after = try #require(refusedAfter)
        #expect(after <= .milliseconds(400) + .milliseconds(200), "refused only after \(after)")
        // A denial is not cached: the admin is still allowed right after a refused call.
        #expect(await code { _ = try await authorizer.authorize(token: admin, org: "org_other", permission: .reportsRead) } == .permissionDenied)
        #expect(try await authorizer.authorize(token: admin, org: org, permission: .reportsRead).role == .admin)
        _ = await deployment.stop()
    }

    @Test("Five failed logins lock the account, even for the right password; unknown e-mails lock the same way")
    func accountLockout() async throws {
        let deployment = try await IdentityDeployment()
        let (org, _) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        func login(_ email: String, _ password: String) async -> StatusCode? {
            await code {
                _ = try await deployment.gateway.unary(Identity.login, .with { $0.orgID = org; $0.email = email; $0.password = password })
            }
        }
        for _ in 0..<5 { #expect(await login("admin@firm.example", "wrong passphrase here") == .unauthenticated) }
        #expect(await login("admin@firm.example", "correct horse battery staple") == .resourceExhausted)
        for _ in 0..<5 { #expect(await login("ghost@firm.example", "wrong passphrase here") == .unauthenticated) }
        #expect(await login("ghost@firm.example", "wrong passphrase here") == .resourceExhausted)
        _ = await deployment.stop()
    }

    @Test("Twenty failures from one client address lock that address, not others")
    func addressLockout() async throws {
        let deployment = try await IdentityDeployment()
        let (org, _) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        func login(_ email: String, from address: String, _ password: String = "wrong passphrase here") async -> StatusCode? {
            var metadata = Metadata()
            try? metadata.add("x-client-address", address)
            return await code {
                _ = try await deployment.gateway.unary(Identity.login, .with { $0.orgID = org; $0.email = email; $0.password = password },
                                                       options: .init(metadata: metadata))
            }
        }
        for index in 0..<20 { _ = await login("user\(index)@firm.example", from: "203.0.113.7") }
        #expect(await login("admin@firm.example", from: "203.0.113.7", "correct horse battery staple") == .resourceExhausted)
        #expect(await login("admin@firm.example", from: "198.51.100.2", "correct horse battery staple") == .ok)
        _ = await deployment.stop()
    }
}
