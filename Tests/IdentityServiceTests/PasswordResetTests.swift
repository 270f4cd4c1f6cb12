import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Testing

@Suite("Identity: password reset")
struct PasswordResetTests {
    typealias Identity = Calltrace_Identity_V1_IdentityService

    @Test("A reset token sets a new password once and ends every session; unknown e-mails get no token")
    func reset() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        let unknown = try await deployment.gateway.unary(Identity.requestPasswordReset, .with { $0.orgID = org; $0.email = "nobody@firm.example" })
        #expect(unknown.resetToken.isEmpty)
        let reset = try await deployment.gateway.unary(Identity.requestPasswordReset, .with { $0.orgID = org; $0.email = "ADMIN@firm.example" })
        #expect(!reset.resetToken.isEmpty)
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.resetPassword, .with { $0.resetToken = reset.resetToken; $0.password = "short" })
        } == .invalidArgument)
        _ = try await deployment.gateway.unary(Identity.resetPassword, .with {
            $0.resetToken = reset.resetToken
            $0.password = "a brand new passphrase"
        })
        #expect(await code { _ = try await deployment.authorize(admin, org: org, .reportsRead) } == .unauthenticated)
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.resetPassword, .with { $0.resetToken = reset.resetToken; $0.password = "yet another passphrase" })
        } == .notFound)
        func login(_ password: String) async -> StatusCode? {
            await code {
                _ = try await deployment.gateway.unary(Identity.login, .with { $0.orgID = org; $0.email = "admin@firm.example"; $0.password = password })
            }
        }
        #expect(await login("correct horse battery staple") == .unauthenticated)
        #expect(await login("a brand new passphrase") == .ok)
        // An invitation token is not a reset token, and the reverse.
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.redeemInvitation, .with { $0.invitationToken = reset.resetToken; $0.password = "a brand new passphrase" })
        } == .notFound)
        _ = await deployment.stop()
    }
}
