import Foundation
import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost

/// `calltrace.identity.v1.IdentityService`: who may call each RPC, and the thin step from each
/// request to `IdentityRules`.
struct IdentityHandler: Calltrace_Identity_V1_IdentityServiceHandler {
    typealias Permission = Calltrace_Identity_V1_Permission
    let rules: IdentityRules
    let policies: Calltrace_Identity_V1_IdentityServicePolicies

    /// - Parameters:
    ///   - credentialGateways: the gateways allowed credential calls (login, invitations,
    ///     resets): the web backend. A telephony gateway or a CRM integration never handles them.
    ///   - adminOperators: the operators who may create and suspend organisations; empty for all.
    init(rules: IdentityRules, credentialGateways: [String], adminOperators: [String]) {
        self.rules = rules
        let credentials = PeerPolicy.gateways(named: credentialGateways)
        let admins = adminOperators.isEmpty ? PeerPolicy.operators : PeerPolicy.operators(named: adminOperators)
        policies = .init(
            createOrganization: admins, inviteUser: .gateways, redeemInvitation: credentials, requestPasswordReset: credentials,
            resetPassword: credentials, login: credentials, logout: .gateways, removeUser: .gateways, createSupportGrant: .gateways,
            revokeSupportGrant: .gateways, authorizeOperator: Self.authorizers, enrollTotp: .gateways, resetTwoFactor: .gateways,
            confirmTotp: .gateways, suspendUser: .gateways, changeUserRole: .gateways, revokeUserSessions: .gateways,
            suspendOrganization: admins, markOrganizationOffboarded: .service("compliance"), setSecurityPolicy: .gateways, listUsers: .gateways, getCurrentUser: .gateways, listOrganizations: .operators,
            listSupportGrants: .gateways, getSecurityPolicy: .gateways,
            createApiToken: .gateways, listApiTokens: .gateways, revokeApiToken: .gateways,
            authorize: Self.authorizers)
    }

    /// Who asks whether a person may act: the services, and the telephony gateway, which serves
    /// people's calls of its own (a firm's numbers at Twilio, call backs).
    static let authorizers: PeerPolicy = .services | .gateway("telephony")

    /// Identity answers the route check itself.
    var authorizer: any Authorizing { rules }


    /// Who carried the caller's token, from where.
    static func presentation(_ context: ServerContext) -> Presentation {
        Presentation(gateway: context.peer.kind == .gateway ? context.peer.name : nil, clientAddress: context.clientAddress)
    }

    // MARK: Organisations and users

    func createOrganization(_ request: Calltrace_Identity_V1_CreateOrganizationRequest, context: ServerContext) async throws
        -> Calltrace_Identity_V1_CreateOrganizationResponse {
        let created = try await rules.createOrganization(name: request.name, adminEmail: request.firstAdminEmail,
                                                         adminName: request.firstAdminDisplayName, by: "operator:\(context.peer.name)")
        context.annotate(org: created.org)
        return .with {
            $0.orgID = created.org
            $0.invitationExpiresAtUnixMs = created.expires
        }
    }

    func inviteUser(_ request: Calltrace_Identity_V1_InviteUserRequest, principal admin: Principal, context: ServerContext) async throws -> Calltrace_Identity_V1_InviteUserResponse {
        let invited = try await rules.inviteUser(org: request.orgID, email: request.email, name: request.displayName,
                                                 role: request.role, by: admin.actor)
        return .with {
            $0.userID = invited.user
            $0.invitationExpiresAtUnixMs = invited.expires
        }
    }

    func removeUser(_ request: Calltrace_Identity_V1_RemoveUserRequest, principal admin: Principal, context: ServerContext) async throws -> Calltrace_Identity_V1_RemoveUserResponse {
        try await rules.removeUser(request.userID, org: request.orgID, by: admin.actor)
        return .init()
    }

    func suspendUser(_ request: Calltrace_Identity_V1_SuspendUserRequest, principal admin: Principal, context: ServerContext) async throws -> Calltrace_Identity_V1_SuspendUserResponse {
        try await rules.suspendUser(request.userID, org: request.orgID, by: admin.actor)
        return .init()
    }

    func changeUserRole(_ request: Calltrace_Identity_V1_ChangeUserRoleRequest, principal admin: Principal, context: ServerContext) async throws
        -> Calltrace_Identity_V1_ChangeUserRoleResponse {
        try await rules.changeRole(request.userID, org: request.orgID, to: request.role, by: admin.actor)
        return .init()
    }

    func revokeUserSessions(_ request: Calltrace_Identity_V1_RevokeUserSessionsRequest, principal admin: Principal, context: ServerContext) async throws
        -> Calltrace_Identity_V1_RevokeUserSessionsResponse {
        let ended = try await rules.revokeSessions(request.userID, org: request.orgID, by: admin.actor)
        return .with { $0.sessionsEnded = UInt32(ended) }
    }

    func suspendOrganization(_ request: Calltrace_Identity_V1_SuspendOrganizationRequest, context: ServerContext) async throws
        -> Calltrace_Identity_V1_SuspendOrganizationResponse {
        try OrganizationID.validate(request.orgID)
        context.annotate(org: request.orgID)
        guard !request.reason.isEmpty else { throw RPCError(.invalidArgument, "give a reason") }
        try await rules.suspendOrganization(request.orgID, by: "operator:\(context.peer.name)")
        return .init()
    }

    func markOrganizationOffboarded(_ request: Calltrace_Identity_V1_MarkOrganizationOffboardedRequest, context: ServerContext) async throws
        -> Calltrace_Identity_V1_MarkOrganizationOffboardedResponse {
        try OrganizationID.validate(request.orgID)
        context.annotate(org: request.orgID)
        let deleted = try await rules.markOffboarded(request.orgID, by: context.peerActor)
        return .with {
            $0.usersDeleted = UInt32(deleted.users); $0.invitationsDeleted = UInt32(deleted.invitations)
            $0.sessionsDeleted = UInt32(deleted.sessions); $0.supportGrantsDeleted = UInt32(deleted.supportGrants)
            $0.apiTokensDeleted = UInt32(deleted.apiTokens)
        }
    }

    func setSecurityPolicy(_ request: Calltrace_Identity_V1_SetSecurityPolicyRequest, principal admin: Principal, context: ServerContext) async throws
        -> Calltrace_Identity_V1_SetSecurityPolicyResponse {
        let policy = try await rules.setPolicy(ranges: request.allowedClientRanges, idleSeconds: request.sessionIdleSeconds,
                                               maxSeconds: request.sessionMaxSeconds, requireTwoFactor: request.requireTwoFactor,
                                               org: request.orgID, by: admin.actor)
        return .with { $0.policy = Self.proto(policy) }
    }

    func listUsers(_ request: Calltrace_Identity_V1_ListUsersRequest, principal _: Principal, context: ServerContext) async throws -> Calltrace_Identity_V1_ListUsersResponse {
        let users = try await rules.users(org: request.orgID)
        return .with { $0.users = users.map(Self.proto) }
    }

    func getCurrentUser(_ request: Calltrace_Identity_V1_GetCurrentUserRequest, context: ServerContext) async throws
        -> Calltrace_Identity_V1_GetCurrentUserResponse {
        let me = try await rules.me(context, in: request.orgID)
        guard let found = try await rules.users(org: request.orgID, only: me.user).first else { throw IdentityRules.noValidCredential }
        return .with {
            $0.user = Self.proto(found)
            // An API token's: only what both its scopes and the role allow.
            $0.permissions = Permission.allCases.filter { me.permissions.contains($0) }
        }
    }

    func listOrganizations(_ request: Calltrace_Identity_V1_ListOrganizationsRequest, context: ServerContext) async throws
        -> Calltrace_Identity_V1_ListOrganizationsResponse {
        let organizations = try await rules.organizations()
        return .with { $0.organizations = organizations.map(Self.proto) }
    }

    func listSupportGrants(_ request: Calltrace_Identity_V1_ListSupportGrantsRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Identity_V1_ListSupportGrantsResponse {
        let grants = try await rules.grants(org: request.orgID)
        return .with { $0.grants = grants.map(Self.proto) }
    }

    func getSecurityPolicy(_ request: Calltrace_Identity_V1_GetSecurityPolicyRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Identity_V1_GetSecurityPolicyResponse {
        let policy = try await rules.policy(org: request.orgID)
        return .with { $0.policy = Self.proto(policy) }
    }

    static func proto(_ user: User) -> Calltrace_Identity_V1_User {
        .with {
            $0.userID = user.id; $0.email = user.email; $0.displayName = user.displayName; $0.role = user.role; $0.status = user.status
            $0.twoFactorConfirmed = user.twoFactorConfirmed; $0.createdAtUnixMs = user.createdAt
        }
    }

    static func proto(_ organization: Organization) -> Calltrace_Identity_V1_Organization {
        .with { $0.orgID = organization.id; $0.name = organization.name; $0.status = organization.status; $0.createdAtUnixMs = organization.createdAt }
    }

    static func proto(_ grant: SupportGrant) -> Calltrace_Identity_V1_SupportGrant {
        .with {
            $0.grantID = grant.id; $0.permissions = grant.permissions; $0.reason = grant.reason; $0.createdBy = grant.createdBy
            $0.createdAtUnixMs = grant.createdAt; $0.expiresAtUnixMs = grant.expiresAt; $0.revokedAtUnixMs = grant.revokedAt ?? 0
        }
    }

    static func proto(_ policy: SecurityPolicy) -> Calltrace_Identity_V1_SecurityPolicy {
        .with {
            $0.allowedClientRanges = policy.ranges; $0.sessionIdleSeconds = UInt32(policy.idleSeconds)
            $0.sessionMaxSeconds = UInt32(policy.maxSeconds); $0.requireTwoFactor = policy.requireTwoFactor
        }
    }

    // MARK: Credentials (credential gateways only)

    /// The address of the person behind a credential call. The web backend always knows it, and
    /// lockout counts by it and the organisation's allow-list checks it, so a call without it
    /// is refused rather than let past both.
    private func endUserAddress(_ context: ServerContext) throws -> String {
        guard let address = context.clientAddress, !address.isEmpty else {
            throw RPCError(.invalidArgument, "a credential call names the end user's address in \(ServerContext.clientAddressKey)")
        }
        return address
    }

    func redeemInvitation(_ request: Calltrace_Identity_V1_RedeemInvitationRequest, context: ServerContext) async throws
        -> Calltrace_Identity_V1_RedeemInvitationResponse {
        _ = try endUserAddress(context)
        let redeemed = try await rules.redeem(.invitation, token: request.invitationToken, password: request.password)
        context.annotate(org: redeemed.org)
        return .with {
            $0.orgID = redeemed.org
            $0.userID = redeemed.user
        }
    }

    func requestPasswordReset(_ request: Calltrace_Identity_V1_RequestPasswordResetRequest, context: ServerContext) async throws
        -> Calltrace_Identity_V1_RequestPasswordResetResponse {
        let address = try endUserAddress(context)
        try OrganizationID.validate(request.orgID)
        context.annotate(org: request.orgID)
        try await rules.requestReset(org: request.orgID, email: request.email, clientAddress: address)
        return .init()
    }

    func resetPassword(_ request: Calltrace_Identity_V1_ResetPasswordRequest, context: ServerContext) async throws
        -> Calltrace_Identity_V1_ResetPasswordResponse {
        _ = try endUserAddress(context)
        let reset = try await rules.redeem(.reset, token: request.resetToken, password: request.password)
        context.annotate(org: reset.org)
        return .init()
    }

    func login(_ request: Calltrace_Identity_V1_LoginRequest, context: ServerContext) async throws -> Calltrace_Identity_V1_LoginResponse {
        let address = try endUserAddress(context)
        try OrganizationID.validate(request.orgID)
        context.annotate(org: request.orgID)
        // Only credential gateways reach this method, and their client address is believed.
        let session = try await rules.login(org: request.orgID, email: request.email, password: request.password,
                                            totpCode: request.totpCode, clientAddress: address)
        return .with {
            $0.token = session.token; $0.expiresAtUnixMs = session.expiresAt; $0.userID = session.user; $0.role = session.role
        }
    }

    func logout(_ request: Calltrace_Identity_V1_LogoutRequest, context: ServerContext) async throws -> Calltrace_Identity_V1_LogoutResponse {
        try await rules.logout(token: try context.bearerToken())
        return .init()
    }

    // MARK: Two-factor

    func enrollTotp(_ request: Calltrace_Identity_V1_EnrollTotpRequest, context: ServerContext) async throws -> Calltrace_Identity_V1_EnrollTotpResponse {
        let me = try await rules.me(context, in: request.orgID, accepting: .sessionOnly).user
        let secret = TOTP.base32(try await rules.enrollTotp(user: me, org: request.orgID, password: request.password))
        let (issuer, account) = try await rules.totpLabel(user: me, org: request.orgID)
        func encoded(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "CallTrace" }
        return .with {
            $0.secretBase32 = secret
            $0.otpauthUri = "otpauth://totp/\(encoded(issuer)):\(encoded(account))?secret=\(secret)&issuer=\(encoded(issuer))&algorithm=SHA1&digits=6&period=30"
        }
    }

    func confirmTotp(_ request: Calltrace_Identity_V1_ConfirmTotpRequest, context: ServerContext) async throws -> Calltrace_Identity_V1_ConfirmTotpResponse {
        let me = try await rules.me(context, in: request.orgID, accepting: .sessionOnly).user
        try await rules.confirmTotp(user: me, org: request.orgID, code: request.code)
        return .init()
    }

    func resetTwoFactor(_ request: Calltrace_Identity_V1_ResetTwoFactorRequest, principal admin: Principal, context: ServerContext) async throws
        -> Calltrace_Identity_V1_ResetTwoFactorResponse {
        try await rules.resetTwoFactor(request.userID, org: request.orgID, by: admin.actor)
        return .init()
    }

    // MARK: Support grants (P8)

    func createSupportGrant(_ request: Calltrace_Identity_V1_CreateSupportGrantRequest, principal admin: Principal, context: ServerContext) async throws
        -> Calltrace_Identity_V1_CreateSupportGrantResponse {
        let grant = try await rules.createGrant(org: request.orgID, permissions: request.permissions,
                                                seconds: request.durationSeconds, reason: request.reason, by: admin.actor)
        return .with {
            $0.grantID = grant.id
            $0.expiresAtUnixMs = grant.expires
        }
    }

    func revokeSupportGrant(_ request: Calltrace_Identity_V1_RevokeSupportGrantRequest, principal admin: Principal, context: ServerContext) async throws
        -> Calltrace_Identity_V1_RevokeSupportGrantResponse {
        try await rules.revokeGrant(request.grantID, org: request.orgID, by: admin.actor)
        return .init()
    }

    // MARK: API tokens

    func createApiToken(_ request: Calltrace_Identity_V1_CreateApiTokenRequest, context: ServerContext) async throws
        -> Calltrace_Identity_V1_CreateApiTokenResponse {
        // A token the gateway keeps may be made from an API token (the rules say how far).
        let me = try await rules.me(context, in: request.orgID, accepting: request.heldByGateway ? .sessionOrApiToken : .sessionOnly)
        let created = try await rules.createApiToken(ApiTokenRequest(name: request.name, permissions: request.permissions,
                                                                     durationSeconds: request.durationSeconds,
                                                                     heldBy: request.heldByGateway ? context.peer.name : nil), for: me)
        return .with {
            $0.token = created.secret
            $0.apiToken = Self.proto(created.token)
        }
    }

    func listApiTokens(_ request: Calltrace_Identity_V1_ListApiTokensRequest, context: ServerContext) async throws
        -> Calltrace_Identity_V1_ListApiTokensResponse {
        let me = try await rules.me(context, in: request.orgID)
        let tokens = try await rules.apiTokens(for: me, allUsers: request.allUsers)
        return .with { $0.apiTokens = tokens.map(Self.proto) }
    }

    func revokeApiToken(_ request: Calltrace_Identity_V1_RevokeApiTokenRequest, context: ServerContext) async throws
        -> Calltrace_Identity_V1_RevokeApiTokenResponse {
        let me = try await rules.me(context, in: request.orgID)
        try await rules.revokeApiToken(request.tokenID, by: me)
        return .init()
    }

    static func proto(_ token: ApiToken) -> Calltrace_Identity_V1_ApiToken {
        let record = token.record
        return .with {
            $0.tokenID = record.id; $0.userID = record.user; $0.name = token.name; $0.prefix = record.prefix; $0.permissions = token.permissions
            $0.createdAtUnixMs = record.createdAt; $0.expiresAtUnixMs = record.expiresAt
            $0.lastUsedAtUnixMs = record.lastUsedAt; $0.revokedAtUnixMs = record.revokedAt ?? 0
            $0.heldByGateway = record.heldBy ?? ""; $0.madeByTokenID = record.madeBy ?? ""
        }
    }

    // MARK: For other services

    func authorize(_ request: Calltrace_Identity_V1_AuthorizeRequest, context: ServerContext) async throws -> Calltrace_Identity_V1_AuthorizeResponse {
        try OrganizationID.validate(request.orgID)
        context.annotate(org: request.orgID)
        guard request.permission != .unspecified else { throw RPCError(.invalidArgument, "name a permission") }
        // A gateway asking (the telephony gateway, for a person the web app sent it) passes on what
        // it was told; a gateway acting for nobody never goes through another gateway.
        if context.peer.kind == .gateway, request.clientAddress == ServerContext.actingForNobody || request.gateway == context.peer.name {
            throw RPCError(.permissionDenied, "\(context.peer) asks only for people another gateway sent it")
        }
        let bearer = try await rules.authorize(token: request.token, org: request.orgID, permission: request.permission,
                                               from: Presentation(gateway: request.gateway, clientAddress: request.clientAddress))
        return .with {
            $0.principal = .with {
                $0.orgID = bearer.org; $0.userID = bearer.user; $0.role = bearer.role
                if let token = bearer.apiTokenID { $0.apiTokenID = token }
            }
        }
    }

    func authorizeOperator(_ request: Calltrace_Identity_V1_AuthorizeOperatorRequest, context: ServerContext) async throws
        -> Calltrace_Identity_V1_AuthorizeOperatorResponse {
        try OrganizationID.validate(request.orgID)
        context.annotate(org: request.orgID)
        guard !request.operatorName.isEmpty, request.permission != .unspecified else {
            throw RPCError(.invalidArgument, "name the operator and a permission")
        }
        let grant = try await rules.authorizeOperator(request.operatorName, org: request.orgID, permission: request.permission)
        return .with { $0.principal = .with { $0.orgID = request.orgID; $0.operatorName = request.operatorName; $0.supportGrantID = grant } }
    }
}

/// Identity answers the route check for its own user-facing RPCs, without a round trip.
extension IdentityRules: Authorizing {
    func authorizeUser(token: String, org: String, permission: Calltrace_Identity_V1_Permission,
                       gateway: String, clientAddress: String?) async throws -> Principal {
        let bearer = try await authorize(token: token, org: org, permission: permission,
                                         from: Presentation(gateway: gateway, clientAddress: clientAddress))
        return Principal(org: bearer.org, acting: .user(id: bearer.user, role: bearer.role))
    }

    func authorizeOperator(name: String, org: String, permission: Calltrace_Identity_V1_Permission) async throws -> Principal {
        Principal(org: org, acting: .operator(name: name, grant: try await authorizeOperator(name, org: org, permission: permission)))
    }
}

extension IdentityRules {
    /// The calling user of a self-service call (no permission needed, e.g. enrolling two-factor).
    /// - Parameter accepting: `.sessionOnly` for a credential call, which an API token cannot make.
    func me(_ context: ServerContext, in org: String, accepting: Bearer.Accepted = .sessionOrApiToken) async throws -> Bearer {
        try OrganizationID.validate(org)
        context.annotate(org: org)
        return try await bearer(try context.bearerToken(), org: org, may: nil, accepting: accepting, from: IdentityHandler.presentation(context))
    }
}
