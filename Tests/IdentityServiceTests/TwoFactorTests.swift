import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Testing

@Suite("Identity: optional TOTP two-factor, which an organisation can require")
struct TwoFactorTests {
    typealias Identity = Calltrace_Identity_V1_IdentityService

    static func base32Decode(_ text: String) -> Data {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var buffer = 0, bits = 0, out = Data()
        for character in text {
            guard let value = alphabet.firstIndex(of: character) else { continue }
            buffer = (buffer << 5) | value
            bits += 5
            if bits >= 8 {
                out.append(UInt8((buffer >> (bits - 8)) & 0xFF))
                bits -= 8
            }
        }
        return out
    }


    @Test("Enrol, confirm with a current code; then a login needs the code; secrets never reach the logs")
    func enrolAndLogin() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        var call = Metadata()
        try call.add("authorization", "Bearer \(admin)")
        // Enrolling needs the password again: a stolen session alone cannot bind an authenticator.
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.enrollTotp, .with { $0.orgID = org; $0.password = "a guess at the password" },
                                                   options: .init(metadata: call))
        } == .permissionDenied)
        let enrolled = try await deployment.gateway.unary(Identity.enrollTotp, .with {
            $0.orgID = org; $0.password = "correct horse battery staple"
        }, options: .init(metadata: call))
        #expect(enrolled.otpauthUri.hasPrefix("otpauth://totp/CallTrace"), "\(enrolled.otpauthUri)")
        // The authenticator lists the firm and the person, never an id.
        #expect(enrolled.otpauthUri.contains("admin%40firm%2Eexample") && !enrolled.otpauthUri.contains("usr_"), "\(enrolled.otpauthUri)")
        let secret = Self.base32Decode(enrolled.secretBase32)
        #expect(secret.count == 20)
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.confirmTotp, .with { $0.orgID = org; $0.code = "000000" }, options: .init(metadata: call))
        } == .invalidArgument)
        let confirming = TOTP.code(secret: secret, unixTime: deployment.clock.nowUnixMs / 1000)
        _ = try await deployment.gateway.unary(Identity.confirmTotp, .with {
            $0.orgID = org
            $0.code = confirming
        }, options: .init(metadata: call))

        func login(code totp: String, password: String = "correct horse battery staple") async -> StatusCode? {
            await code {
                _ = try await deployment.gateway.unary(Identity.login, .with {
                    $0.orgID = org; $0.email = "admin@firm.example"; $0.password = password; $0.totpCode = totp
                }, options: .endUser)
            }
        }
        // Signing in with the code that just confirmed two-factor says so, to whoever has the password.
        let reused = await #expect(throws: RPCError.self) {
            _ = try await deployment.gateway.unary(Identity.login, .with {
                $0.orgID = org; $0.email = "admin@firm.example"; $0.password = "correct horse battery staple"; $0.totpCode = confirming
            }, options: .endUser)
        }
        #expect(reused?.code == .unauthenticated && reused?.message.contains("this code was just used; wait for the next one") == true)
        let guessed = await #expect(throws: RPCError.self) {
            _ = try await deployment.gateway.unary(Identity.login, .with {
                $0.orgID = org; $0.email = "admin@firm.example"; $0.password = "a wrong but long password"; $0.totpCode = confirming
            }, options: .endUser)
        }
        #expect(guessed?.message == "invalid e-mail, password or code", "without the password, nothing more is said")
        #expect(await login(code: "") == .unauthenticated)
        #expect(await login(code: "123456") == .unauthenticated)
        // The confirming code's step is used; the next step's code (within the drift window) works
        // once, and a replay of it is refused.
        let next = TOTP.code(secret: secret, unixTime: deployment.clock.nowUnixMs / 1000 + 30)
        #expect(await login(code: next) == .ok)
        #expect(await login(code: next) == .unauthenticated, "a two-factor code was accepted twice")
        let logs = await deployment.stop()
        #expect(!logs.contains(enrolled.secretBase32))
    }

    @Test("When the org requires two-factor, an unenrolled user's session can only enrol; after enrolling it works")
    func required() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        let member = try await deployment.invite(.member, in: org, adminToken: admin, email: "member@firm.example")
        var adminCall = Metadata()
        try adminCall.add("authorization", "Bearer \(admin)")
        _ = try await deployment.gateway.unary(Identity.setSecurityPolicy, .with { $0.orgID = org; $0.requireTwoFactor = true },
                                               options: .init(metadata: adminCall))
        #expect(await code { _ = try await deployment.authorize(member, org: org, .reportsRead) } == .permissionDenied)

        var memberCall = Metadata()
        try memberCall.add("authorization", "Bearer \(member)")
        let enrolled = try await deployment.gateway.unary(Identity.enrollTotp, .with {
            $0.orgID = org; $0.password = "a long and unusual passphrase"
        }, options: .init(metadata: memberCall))
        _ = try await deployment.gateway.unary(Identity.confirmTotp, .with {
            $0.orgID = org
            $0.code = TOTP.code(secret: Self.base32Decode(enrolled.secretBase32), unixTime: deployment.clock.nowUnixMs / 1000)
        }, options: .init(metadata: memberCall))
        #expect(try await deployment.authorize(member, org: org, .reportsRead).role == .member)
        _ = await deployment.stop()
    }
}
