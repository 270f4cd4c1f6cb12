import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Testing

@Suite("Identity: password reset")
struct PasswordResetTests {
    typealias Identity = Calltrace_Identity_V1_IdentityService

    @Test("Reset e-mails are limited per account in an hour, with the same answer past the limit; an hour later they go again")
    func resetsAreLimited() async throws {
        let deployment = try await IdentityDeployment()
        let (org, _) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        func sent() throws -> Int {
            try FileManager.default.contentsOfDirectory(atPath: deployment.setup.mailbox).filter { $0.contains("password_reset") }.count
        }
        var answers = Set<Data>()
        for _ in 0..<6 {
            let answer = try await deployment.gateway.unary(Identity.requestPasswordReset, .with { $0.orgID = org; $0.email = "admin@firm.example" }, options: .endUser)
            answers.insert(try answer.serializedBytes())
        }
        #expect(try sent() == 3)
        #expect(answers.count == 1)
        deployment.clock.advance(by: .seconds(3601))
        _ = try await deployment.gateway.unary(Identity.requestPasswordReset, .with { $0.orgID = org; $0.email = "admin@firm.example" }, options: .endUser)
        #expect(try sent() == 4)
    }

    @Test("A reset token sets a new password once and ends every session; unknown e-mails get no token")
    func reset() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        // The answer is empty either way; only the user's mailbox receives a token.
        let unknown = try await deployment.gateway.unary(Identity.requestPasswordReset, .with { $0.orgID = org; $0.email = "nobody@firm.example" }, options: .endUser)
        let known = try await deployment.gateway.unary(Identity.requestPasswordReset, .with { $0.orgID = org; $0.email = "ADMIN@firm.example" }, options: .endUser)
        #expect(try unknown.serializedBytes() == known.serializedBytes())
        #expect(try deployment.setup.deliveredToken(to: "nobody@firm.example", kind: "password_reset") == nil)
        let first = try deployment.delivered(to: "admin@firm.example", kind: "password_reset")
        _ = try await deployment.gateway.unary(Identity.requestPasswordReset, .with { $0.orgID = org; $0.email = "admin@firm.example" }, options: .endUser)
        let resetToken = try deployment.delivered(to: "admin@firm.example", kind: "password_reset")
        #expect(first != resetToken)
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.resetPassword, .with { $0.resetToken = resetToken; $0.password = "short" }, options: .endUser)
        } == .invalidArgument)
        _ = try await deployment.gateway.unary(Identity.resetPassword, .with {
            $0.resetToken = resetToken
            $0.password = "a brand new passphrase"
        }, options: .endUser)
        #expect(await code { _ = try await deployment.authorize(admin, org: org, .reportsRead) } == .unauthenticated)
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.resetPassword, .with { $0.resetToken = resetToken; $0.password = "yet another passphrase" }, options: .endUser)
        } == .notFound)
        func login(_ password: String) async -> StatusCode? {
            await code {
                _ = try await deployment.gateway.unary(Identity.login, .with { $0.orgID = org; $0.email = "admin@firm.example"; $0.password = password }, options: .endUser)
            }
        }
        #expect(await login("correct horse battery staple") == .unauthenticated)
        #expect(await login("a brand new passphrase") == .ok)
        // Redeeming one reset voided the user's other reset tokens.
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.resetPassword, .with { $0.resetToken = first; $0.password = "an older token's passphrase" }, options: .endUser)
        } == .notFound)
        // An invitation token is not a reset token, and the reverse.
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.redeemInvitation, .with { $0.invitationToken = resetToken; $0.password = "a brand new passphrase" }, options: .endUser)
        } == .notFound)
        _ = await deployment.stop()
    }
}
