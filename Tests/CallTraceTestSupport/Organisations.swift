public import CallTraceProto
public import CallTraceRPC
import Foundation

/// A service a test reaches: started in process (`InProcessService`) or as a process of its
/// own (`ServiceProcess`).
public protocol ServiceEndpoint: AnyObject, Sendable {
    var setup: ServiceSetup { get }
    /// A client presenting `identity`, kept and shared by later calls naming the same identity.
    func client(identity: String) throws -> RPCClient
}

extension InProcessService: ServiceEndpoint {}

/// Organisations and users made the way a deployment makes them, through an identity service
/// started in process or as a process: an operator creates the organisation, the invitation
/// arrives in the development mailbox, the user sets a password and logs in through the web
/// gateway.
extension ServiceEndpoint {
    /// A new organisation, its first admin's e-mail and session token.
    public func newOrganisation(_ name: String = "Smith & Co Solicitors") async throws -> (org: String, email: String, admin: String) {
        let email = "admin-\(UUID().uuidString.prefix(8).lowercased())@firm.example"
        let created = try await client(identity: TemporaryPKI.identity("operator", "ops"))
            .unary(Calltrace_Identity_V1_IdentityService.createOrganization, .with { $0.name = name; $0.firstAdminEmail = email })
        return (created.orgID, email, try await activate(email: email, org: created.orgID))
    }

    /// A user of `org` in `role`, invited by its admin; their session token.
    public func newUser(_ role: Calltrace_Identity_V1_Role, in org: String, admin: String) async throws -> String {
        let email = "\(role)-\(UUID().uuidString.prefix(8).lowercased())@firm.example"
        var metadata = Metadata()
        try metadata.add("authorization", "Bearer \(admin)")
        _ = try await client(identity: TemporaryPKI.identity("gateway", "web")).unary(Calltrace_Identity_V1_IdentityService.inviteUser, .with {
            $0.orgID = org; $0.email = email; $0.role = role
        }, options: CallOptions(metadata: metadata))
        return try await activate(email: email, org: org)
    }

    /// A new session of the user with `email`.
    public func login(email: String, org: String) async throws -> String {
        try await client(identity: TemporaryPKI.identity("gateway", "web")).unary(Calltrace_Identity_V1_IdentityService.login, .with {
            $0.orgID = org; $0.email = email; $0.password = "correct horse battery staple"
        }, options: .endUser).token
    }

    /// On a compliance service: `org`'s admin accepts the current processing agreement, as a
    /// firm does before its first call (until then nothing is recorded).
    public func acceptAgreement(org: String, admin: String) async throws {
        let client = try client(identity: TemporaryPKI.identity("gateway", "web"))
        let shown = try await client.unary(Calltrace_Compliance_V1_RegisterService.getProcessingAgreement, .with { $0.orgID = org },
                                           options: try bearer(admin)).agreement
        _ = try await client.unary(Calltrace_Compliance_V1_RegisterService.acceptProcessingAgreement, .with {
            $0.orgID = org; $0.templateVersion = shown.templateVersion; $0.registerVersion = shown.registerVersion
        }, options: try bearer(admin))
    }

    private func activate(email: String, org: String) async throws -> String {
        guard let invitation = try setup.deliveredToken(to: email) else {
            throw RPCError(.notFound, "no invitation was delivered to \(email)")
        }
        _ = try await client(identity: TemporaryPKI.identity("gateway", "web")).unary(Calltrace_Identity_V1_IdentityService.redeemInvitation, .with {
            $0.invitationToken = invitation; $0.password = "correct horse battery staple"
        }, options: .endUser)
        return try await login(email: email, org: org)
    }
}

/// Call options carrying a user's session token, as the web gateway sends it.
public func bearer(_ token: String) throws -> CallOptions {
    var metadata = Metadata()
    try metadata.add("authorization", "Bearer \(token)")
    return CallOptions(metadata: metadata)
}
