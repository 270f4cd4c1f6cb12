import CallTraceKeys
import CallTraceOutbound
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import Foundation

/// Organisations and invitations.
extension IdentityRules {
    /// A new organisation with its keys, and the first admin's invitation, delivered to them.
    func createOrganization(name: String, adminEmail: String, adminName: String, by actor: String)
        async throws -> (org: String, expires: Int64) {
        guard !name.isEmpty, name.count <= 200 else { throw DomainError.invalid("an organisation needs a name") }
        let org = Self.newID("org")
        try keys.createKeys(for: org)
        let sealedName = try keys.seal(Data(name.utf8), org: org, table: "organizations", column: "name", row: org)
        let now = self.now()
        let (_, expires) = try await repository.write { [self] tx in
            try tx.insertOrganization(id: org, sealedName: sealedName, at: now)
            let invited = try invite(org: org, email: adminEmail, name: adminName, role: .admin, in: tx)
            try audit(org: org, actor: actor, action: .organisationCreated, resource: .organisation(org), in: tx)
            return invited
        }
        return (org, expires)
    }

    func inviteUser(org: String, email: String, name: String, role: Calltrace_Identity_V1_Role, by actor: String)
        async throws -> (user: String, expires: Int64) {
        guard role != .unspecified, RoleTable.permissions(of: role).count > 0 else {
            throw DomainError.invalid("a user needs a role")
        }
        return try await repository.write { [self] tx in
            guard try tx.organizationStatus(org) == "active" else { throw DomainError.notFound("organisation \(org) not found") }
            return try invite(org: org, email: email, name: name, role: role, in: tx, actor: actor)
        }
    }

    /// A user in state `invited` and a single-use invitation; only the token's hash is stored,
    /// and the token itself goes to the user through `delivery`, in the same transaction.
    func invite(org: String, email: String, name: String, role: Calltrace_Identity_V1_Role,
                        in tx: any IdentityTransaction, actor: String? = nil) throws -> (user: String, expires: Int64) {
        let email = try Self.normalisedEmail(email)
        let index = try keys.blindIndex(email, kind: "email", org: org)
        guard try !tx.userExists(org: org, emailIndex: index) else {
            throw DomainError.alreadyExists("that e-mail already belongs to a user of the organisation")
        }
        let user = Self.newID("usr")
        try tx.insertUser(NewUser(id: user, org: org,
                                  sealedEmail: try keys.seal(Data(email.utf8), org: org, table: "users", column: "email", row: user),
                                  emailIndex: index,
                                  sealedName: try keys.seal(Data(name.utf8), org: org, table: "users", column: "display_name", row: user),
                                  role: role.rawValue, createdAt: now()))
        let token = try OpaqueToken.generate()
        let expires = now() + Self.invitationLifetimeMS
        try tx.insertToken(hash: OpaqueToken.storageHash(token), user: user, purpose: TokenPurpose.invitation.rawValue, expiresAt: expires)
        try audit(org: org, actor: actor ?? "system", action: .invitationIssued, resource: .user(user), in: tx)
        try delivery.deliver(TokenMessage(kind: .invitation, orgID: org, userID: user, email: email, token: token, expiresAtUnixMs: expires),
                             in: tx.connection)
        return (user, expires)
    }

    /// Sets a password with a single-use token: an invitation (the user must still be invited:
    /// a suspended or removed invitee gets nothing) or a reset (the user must be active; every
    /// session ends). Either way every other outstanding token of the same kind is voided.
    func redeem(_ purpose: TokenPurpose, token: String, password: String) async throws -> (org: String, user: String) {
        if let weakness = PasswordHasher.weakness(of: password) { throw DomainError.invalid(weakness) }
        let (tokenHash, status, refusal) = (OpaqueToken.storageHash(token), purpose == .invitation ? "invited" : "active",
                                            DomainError.notFound("\(purpose.rawValue) not found, used or expired"))
        // The token is looked up before the password is hashed: a made-up one costs a query, not
        // a fifth of a second of scrypt. It is looked up again as it is used.
        guard try await repository.read({ tx in try tx.redeemableToken(hash: tokenHash, purpose: purpose.rawValue, userStatus: status, now: self.now()) }) != nil
        else { throw refusal }
        let hasher = self.hasher
        let hash = try await blocking.run { try hasher.hash(password) }
        let now = self.now()
        return try await repository.write { [self] tx in
            guard let (user, org) = try tx.redeemableToken(hash: tokenHash, purpose: purpose.rawValue, userStatus: status, now: now)
            else { throw refusal }
            try tx.markTokensUsed(user: user, purpose: purpose.rawValue, at: now)
            try tx.activate(user, passwordHash: hash)
            if purpose == .reset { try tx.deleteSessions(user: user) }
            try audit(org: org, actor: "user:\(user)", action: purpose == .invitation ? .invitationRedeemed : .passwordResetRedeemed, resource: .user(user), in: tx)
            return (org, user)
        }
    }

    enum TokenPurpose: String { case invitation, reset = "password_reset" }

    /// Delivers a reset token to an active user with that e-mail; does nothing otherwise (the
    /// caller cannot tell which).
    /// A reset link to the user's mailbox. At most `resetAccountLimit` an hour per account and
    /// `resetAddressLimit` per client address (counted for unknown accounts too, so the limit
    /// reveals nothing): past them nothing is sent, and the answer is the same.
    func requestReset(org: String, email: String, clientAddress: String) async throws {
        guard let email = try? Self.normalisedEmail(email), let index = try? keys.blindIndex(email, kind: "email", org: org),
              let bucket = LoginAttempts.bucket(of: clientAddress) else { return }
        let token = try OpaqueToken.generate()
        let now = self.now()
        let expires = now + Self.resetLifetimeMS
        let limits = [LoginAttempts.Subject(key: Data("reset-account:".utf8) + index, limit: Self.resetAccountLimit),
                      LoginAttempts.Subject(key: OpaqueToken.storageHash("reset-address:\(org):\(bucket)"), limit: Self.resetAddressLimit)]
        try await repository.write { [self] tx in
            guard try tx.reserveLoginAttempts(limits, now: now, window: Self.resetWindowMS) else { return }
            guard let user = try tx.activeUser(org: org, emailIndex: index) else { return }
            try tx.insertToken(hash: OpaqueToken.storageHash(token), user: user, purpose: TokenPurpose.reset.rawValue, expiresAt: expires)
            try audit(org: org, actor: "user:\(user)", action: .passwordResetIssued, resource: .user(user), in: tx)
            try delivery.deliver(TokenMessage(kind: .passwordReset, orgID: org, userID: user, email: email, token: token,
                                              expiresAtUnixMs: expires), in: tx.connection)
        }
    }
}
