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

        // This test process plays "media": it asks identity through the shared authoriser,
        // whose cache runs on a clock the test moves.
        let cacheClock = TestClock()
        var configuration = IdentityAuthorizer.Configuration()
        configuration.allowTTL = .seconds(5)
        configuration.clock = cacheClock
        let authorizer = IdentityAuthorizer(identity: deployment.media, configuration: configuration)
        #expect(try await authorizer.authorize(token: member, org: org, permission: .recordingsPlay).userID == memberID)

        var metadata = Metadata()
        try metadata.add("authorization", "Bearer \(admin)")
        _ = try await deployment.gateway.unary(Identity.removeUser, .with { $0.orgID = org; $0.userID = memberID },
                                               options: .init(metadata: metadata))
        // Identity itself refuses at once…
        #expect(await code { _ = try await deployment.authorize(member, org: org, .recordingsPlay) } == .unauthenticated)
        // …the cache still allows within its TTL, and refuses once the TTL has passed.
        cacheClock.advance(by: .milliseconds(4_999))
        #expect(await code { _ = try await authorizer.authorize(token: member, org: org, permission: .recordingsPlay) } == .ok)
        cacheClock.advance(by: .milliseconds(1))
        #expect(await code { _ = try await authorizer.authorize(token: member, org: org, permission: .recordingsPlay) } == .unauthenticated)
        // A denial is not cached: the same question (same token, org and permission) asked again
        // after the cause is gone gets the new answer at once.
        let second = try await deployment.invite(.member, in: org, adminToken: admin, email: "second@firm.example")
        #expect(await code { _ = try await authorizer.authorize(token: second, org: org, permission: .usersManage) } == .permissionDenied)
        let secondID = try await deployment.authorize(second, org: org, .reportsRead).userID
        _ = try await deployment.gateway.unary(Identity.changeUserRole, .with { $0.orgID = org; $0.userID = secondID; $0.role = .admin },
                                               options: .init(metadata: metadata))
        #expect(try await authorizer.authorize(token: second, org: org, permission: .usersManage).role == .admin)
        _ = await deployment.stop()
    }

    @Test("Five failed logins lock the account, even for the right password; unknown e-mails lock the same way")
    func accountLockout() async throws {
        let deployment = try await IdentityDeployment()
        let (org, _) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        func login(_ email: String, _ password: String) async -> StatusCode? {
            await code {
                _ = try await deployment.gateway.unary(Identity.login, .with { $0.orgID = org; $0.email = email; $0.password = password }, options: .endUser)
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
