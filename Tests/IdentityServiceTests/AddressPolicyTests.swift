import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Testing

@Suite("Identity: an organisation's IP allow-list for logins and token use")
struct AddressPolicyTests {
    typealias Identity = Calltrace_Identity_V1_IdentityService

    @Test("Logins and token use from outside the org's ranges are refused, from inside they work; only gateways name the address")
    func allowList() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        var adminCall = Metadata()
        try adminCall.add("authorization", "Bearer \(admin)")
        try adminCall.add("x-client-address", "198.51.100.7")
        _ = try await deployment.gateway.unary(Identity.setSecurityPolicy, .with {
            $0.orgID = org
            $0.allowedClientRanges = ["198.51.100.0/24", "2001:db8::/32"]
        }, options: .init(metadata: adminCall))

        func login(from address: String?, via client: RPCClient? = nil) async -> StatusCode? {
            var metadata = Metadata()
            if let address { try? metadata.add("x-client-address", address) }
            return await code {
                _ = try await (client ?? deployment.gateway).unary(Identity.login, .with {
                    $0.orgID = org; $0.email = "admin@firm.example"; $0.password = "correct horse battery staple"
                }, options: .init(metadata: metadata))
            }
        }
        #expect(await login(from: "198.51.100.42") == .ok)
        #expect(await login(from: "2001:db8:1::5") == .ok)
        #expect(await login(from: "203.0.113.9") == .permissionDenied)
        #expect(await login(from: nil) == .invalidArgument)
        // A service cannot log users in, so it cannot claim an address either.
        #expect(await login(from: "198.51.100.42", via: deployment.media) == .permissionDenied)

        func use(from address: String) async -> StatusCode? {
            await code { _ = try await deployment.authorize(admin, org: org, .reportsRead, from: address) }
        }
        #expect(await use(from: "198.51.100.200") == .ok)
        #expect(await use(from: "192.0.2.1") == .permissionDenied)
        #expect(await use(from: "") == .permissionDenied)

        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.setSecurityPolicy, .with { $0.orgID = org; $0.allowedClientRanges = ["not-a-range"] },
                                                   options: .init(metadata: adminCall))
        } == .invalidArgument)
        // A NUL byte inside an address would cut it short for inet_pton: refused, not read as its first part.
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.setSecurityPolicy, .with { $0.orgID = org; $0.allowedClientRanges = ["198.51.100.7\u{0}junk/8"] },
                                                   options: .init(metadata: adminCall))
        } == .invalidArgument)
        _ = await deployment.stop()
    }
}
