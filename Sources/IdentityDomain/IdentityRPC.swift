import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost

/// `calltrace.identity.v1.IdentityService`: who may call what, and the checks of each call.
struct IdentityRPC: RPCService {
    let store: IdentityStore
    /// The gateways allowed credential calls (login, invitations, resets): the web backend.
    let credentialGateways: [String]

    func register(with router: inout RPCRouter) {
        let store = self.store
        typealias Service = Calltrace_Identity_V1_IdentityService
        // A telephony gateway or a CRM integration never handles users' credentials.
        let credentials = PeerPolicy.gateways(named: credentialGateways)

        /// The calling user, allowed `permission` in `org`, from an address the org accepts.
        @Sendable func user(_ context: ServerContext, org: String, _ permission: Calltrace_Identity_V1_Permission) async throws
            -> Calltrace_Identity_V1_Principal {
            try OrganizationID.validate(org)
            let principal = try await store.authorize(token: try bearerToken(context), org: org, permission: permission)
            try await store.checkClientAddress(context.clientAddress, org: org)
            return principal
        }

        router.unary(Service.createOrganization, allow: .operators) { request, context in
            let created = try await store.createOrganization(name: request.name, adminEmail: request.firstAdminEmail,
                                                             adminName: request.firstAdminDisplayName,
                                                             by: "operator:\(context.peer.name)")
            context.annotate(org: created.org)
            return .with {
                $0.orgID = created.org
                $0.invitationExpiresAtUnixMs = created.expires
            }
        }

        router.unary(Service.inviteUser, allow: .gateways) { request, context in
            context.annotate(org: request.orgID)
            let admin = try await user(context, org: request.orgID, .usersManage)
            let invited = try await store.inviteUser(org: request.orgID, email: request.email, name: request.displayName,
                                                     role: request.role, by: "user:\(admin.userID)")
            return .with {
                $0.userID = invited.user
                $0.invitationExpiresAtUnixMs = invited.expires
            }
        }

        router.unary(Service.redeemInvitation, allow: credentials) { request, context in
            let redeemed = try await store.redeem(.invitation, token: request.invitationToken, password: request.password)
            context.annotate(org: redeemed.org)
            return .with {
                $0.orgID = redeemed.org
                $0.userID = redeemed.user
            }
        }

        router.unary(Service.requestPasswordReset, allow: credentials) { request, context in
            try OrganizationID.validate(request.orgID)
            context.annotate(org: request.orgID)
            try await store.requestReset(org: request.orgID, email: request.email)
            return .init()
        }

        router.unary(Service.resetPassword, allow: credentials) { request, context in
            let reset = try await store.redeem(.reset, token: request.resetToken, password: request.password)
            context.annotate(org: reset.org)
            return .init()
        }

        router.unary(Service.login, allow: credentials) { request, context in
            try OrganizationID.validate(request.orgID)
            context.annotate(org: request.orgID)
            // Only credential gateways reach this method, and their client address is trusted.
            return try await store.login(org: request.orgID, email: request.email, password: request.password,
                                         totpCode: request.totpCode, clientAddress: context.clientAddress)
        }

        router.unary(Service.removeUser, allow: .gateways) { request, context in
            context.annotate(org: request.orgID)
            let admin = try await user(context, org: request.orgID, .usersManage)
            try await store.removeUser(request.userID, org: request.orgID, by: "user:\(admin.userID)")
            return .init()
        }

        router.unary(Service.createSupportGrant, allow: .gateways) { request, context in
            context.annotate(org: request.orgID)
            let admin = try await user(context, org: request.orgID, .grantsManage)
            let grant = try await store.createGrant(org: request.orgID, permissions: request.permissions,
                                                    seconds: request.durationSeconds, reason: request.reason, by: "user:\(admin.userID)")
            return .with {
                $0.grantID = grant.id
                $0.expiresAtUnixMs = grant.expires
            }
        }

        router.unary(Service.revokeSupportGrant, allow: .gateways) { request, context in
            context.annotate(org: request.orgID)
            let admin = try await user(context, org: request.orgID, .grantsManage)
            try await store.revokeGrant(request.grantID, org: request.orgID, by: "user:\(admin.userID)")
            return .init()
        }

        router.unary(Service.authorizeOperator, allow: .services) { request, context in
            try OrganizationID.validate(request.orgID)
            context.annotate(org: request.orgID)
            guard !request.operatorName.isEmpty, request.permission != .unspecified else {
                throw RPCError(.invalidArgument, "name the operator and a permission")
            }
            let principal = try await store.authorizeOperator(request.operatorName, org: request.orgID, permission: request.permission)
            return .with { $0.principal = principal }
        }

        router.unary(Service.setSecurityPolicy, allow: .gateways) { request, context in
            context.annotate(org: request.orgID)
            let admin = try await user(context, org: request.orgID, .settingsManage)
            try await store.setPolicy(ranges: request.allowedClientRanges, idleSeconds: request.sessionIdleSeconds,
                                      maxSeconds: request.sessionMaxSeconds, requireTwoFactor: request.requireTwoFactor,
                                      org: request.orgID, by: "user:\(admin.userID)")
            return .init()
        }

        router.unary(Service.enrollTotp, allow: .gateways) { request, context in
            try OrganizationID.validate(request.orgID)
            context.annotate(org: request.orgID)
            let me = try await store.authorize(token: try bearerToken(context), org: request.orgID, permission: nil)
            try await store.checkClientAddress(context.clientAddress, org: request.orgID)
            let secret = TOTP.base32(try await store.enrollTotp(user: me.userID, org: request.orgID, password: request.password))
            return .with {
                $0.secretBase32 = secret
                $0.otpauthUri = "otpauth://totp/CallTrace:\(me.userID)?secret=\(secret)&issuer=CallTrace&algorithm=SHA1&digits=6&period=30"
            }
        }

        router.unary(Service.resetTwoFactor, allow: .gateways) { request, context in
            context.annotate(org: request.orgID)
            let admin = try await user(context, org: request.orgID, .usersManage)
            try await store.resetTwoFactor(request.userID, org: request.orgID, by: "user:\(admin.userID)")
            return .init()
        }

        router.unary(Service.confirmTotp, allow: .gateways) { request, context in
            try OrganizationID.validate(request.orgID)
            context.annotate(org: request.orgID)
            let me = try await store.authorize(token: try bearerToken(context), org: request.orgID, permission: nil)
            try await store.checkClientAddress(context.clientAddress, org: request.orgID)
            try await store.confirmTotp(user: me.userID, org: request.orgID, code: request.code)
            return .init()
        }

        router.unary(Service.suspendUser, allow: .gateways) { request, context in
            context.annotate(org: request.orgID)
            let admin = try await user(context, org: request.orgID, .usersManage)
            try await store.suspendUser(request.userID, org: request.orgID, by: "user:\(admin.userID)")
            return .init()
        }

        router.unary(Service.changeUserRole, allow: .gateways) { request, context in
            context.annotate(org: request.orgID)
            let admin = try await user(context, org: request.orgID, .usersManage)
            try await store.changeRole(request.userID, org: request.orgID, to: request.role, by: "user:\(admin.userID)")
            return .init()
        }

        router.unary(Service.revokeUserSessions, allow: .gateways) { request, context in
            context.annotate(org: request.orgID)
            let admin = try await user(context, org: request.orgID, .usersManage)
            let ended = try await store.revokeSessions(request.userID, org: request.orgID, by: "user:\(admin.userID)")
            return .with { $0.sessionsEnded = UInt32(ended) }
        }

        router.unary(Service.suspendOrganization, allow: .operators) { request, context in
            try OrganizationID.validate(request.orgID)
            context.annotate(org: request.orgID)
            guard !request.reason.isEmpty else { throw RPCError(.invalidArgument, "give a reason") }
            try await store.suspendOrganization(request.orgID, by: "operator:\(context.peer.name)")
            return .init()
        }

        router.unary(Service.markOrganizationOffboarded, allow: .service("compliance")) { request, context in
            try OrganizationID.validate(request.orgID)
            context.annotate(org: request.orgID)
            try await store.markOffboarded(request.orgID, by: "service:\(context.peer.name)")
            return .init()
        }

        router.unary(Service.logout, allow: .gateways) { _, context in
            try await store.logout(token: try bearerToken(context))
            return .init()
        }

        router.unary(Service.authorize, allow: .services) { request, context in
            try OrganizationID.validate(request.orgID)
            context.annotate(org: request.orgID)
            guard request.permission != .unspecified else { throw RPCError(.invalidArgument, "name a permission") }
            let principal = try await store.authorize(token: request.token, org: request.orgID, permission: request.permission)
            try await store.checkClientAddress(request.clientAddress.isEmpty ? nil : request.clientAddress, org: request.orgID)
            return .with { $0.principal = principal }
        }
    }
}

/// The user's token from `authorization: Bearer <token>`.
func bearerToken(_ context: ServerContext) throws -> String {
    guard let header = context.metadata["authorization"], header.hasPrefix("Bearer "), header.count > 7 else {
        throw RPCError(.unauthenticated, "this call needs a user's bearer token")
    }
    return String(header.dropFirst(7))
}
