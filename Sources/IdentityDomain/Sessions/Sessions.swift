import CallTraceKeys
import CallTraceOutbound
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import Foundation

/// Sessions.
extension IdentityRules {
    /// One answer for an unknown e-mail and a wrong password, after the same work.
    ///
    /// Each attempt is counted before the password is checked, in one transaction with the
    /// lockout check, so concurrent attempts cannot slip past the limit while an earlier one is
    /// still being verified; a success clears the account's count and gives back the address's.
    func login(org: String, email: String, password: String, totpCode: String, clientAddress: String) async throws -> SignedIn {
        let refused = DomainError.unauthenticated("invalid e-mail, password or code")
        // An unknown organisation has no keys (and gets none): the same answer, after the same work.
        guard let email = try? Self.normalisedEmail(email), let index = try? keys.blindIndex(email, kind: "email", org: org) else {
            _ = try await blocking.run { hasher.verifyDummy(password) }
            throw refused
        }
        // Counted per account (known or not, so lockout reveals nothing) and per client address.
        let account = LoginAttempts.Subject(key: Data("account:".utf8) + index, limit: Self.accountFailureLimit)
        guard let bucket = LoginAttempts.bucket(of: clientAddress) else {
            throw DomainError.invalid("the client address must be an IPv4 or IPv6 address")
        }
        let address = LoginAttempts.Subject(key: OpaqueToken.storageHash("address:\(org):\(bucket)"), limit: Self.addressFailureLimit)
        try await checkClientAddress(clientAddress, org: org)
        let now = self.now()
        guard try await repository.write({ tx in try tx.reserveLoginAttempts([account, address], now: now, window: Self.failureWindowMS) }) else {
            try await audit(org: org, actor: "unknown", action: .loginLockedOut, resource: .organisation(org), outcome: .denied)
            throw DomainError.tooMany("too many failed logins; try again later")
        }
        guard let candidate = try await repository.read({ tx in try tx.loginCandidate(org: org, emailIndex: index) }),
              let stored = candidate.passwordHash else {
            _ = try await blocking.run { hasher.verifyDummy(password) }
            try await audit(org: org, actor: "unknown", action: .loginFailed, resource: .organisation(org), outcome: .denied)
            throw refused
        }
        let user = candidate.user
        let passwordHolds = try await blocking.run { PasswordHasher.verify(password, against: stored) }
        let secondFactor = try secondFactorStep(candidate, org: org, code: totpCode)
        guard passwordHolds, case .accepted(let totpStep) = secondFactor else {
            try await audit(org: org, actor: "user:\(user)", action: .loginFailed, resource: .user(user), outcome: .denied)
            // Only someone with the password and the authenticator gets told the code was a
            // good one already used (typically the one that just confirmed two-factor).
            if passwordHolds, case .alreadyUsed = secondFactor {
                throw DomainError.unauthenticated("this code was just used; wait for the next one (a new code every 30 seconds)")
            }
            throw refused
        }
        let token = try OpaqueToken.generate()
        let expires = now + candidate.sessionMaxSeconds * 1000
        try await repository.write { [self] tx in
            // A two-factor code is good once: the step must come after the last one accepted.
            if totpStep > 0 {
                guard try tx.acceptTwoFactorStep(totpStep, user: user) else { throw refused }
            }
            try tx.loginSucceeded(account: account, address: address)
            try tx.insertSession(tokenHash: OpaqueToken.storageHash(token), user: user, org: org, at: now, expiresAt: expires)
            try audit(org: org, actor: "user:\(user)", action: .loginSucceeded, resource: .user(user), in: tx)
        }
        return SignedIn(token: token, expiresAt: expires, user: user, role: Calltrace_Identity_V1_Role(rawValue: candidate.role) ?? .unspecified)
    }

    /// A login's session: its token (given once, stored only hashed), when it ends at the
    /// latest, and whose it is.
    struct SignedIn: Sendable {
        let token: String
        let expiresAt: Int64
        let user: String
        let role: Calltrace_Identity_V1_Role
    }

    enum SecondFactor {
        /// The step accepted (0 for a user without confirmed two-factor).
        case accepted(Int64)
        /// A code that matched a step already used.
        case alreadyUsed
        case wrong
    }

    func secondFactorStep(_ candidate: LoginCandidate, org: String, code: String) throws -> SecondFactor {
        guard candidate.twoFactorConfirmed else { return .accepted(0) }
        guard let sealed = candidate.sealedTwoFactorSecret else { return .wrong }
        let secret = try keys.open(sealed, org: org, table: "users", column: "totp_secret", row: candidate.user)
        guard let step = TOTP.acceptedStep(code, secret: secret, unixTime: now() / 1000) else { return .wrong }
        return step > candidate.lastTwoFactorStep ? .accepted(step) : .alreadyUsed
    }

    func logout(token: String) async throws {
        let hash = OpaqueToken.storageHash(token)
        try await repository.write { [self] tx in
            // Idempotent: a session already ended, expired or purged is logged out already.
            guard let session = try tx.session(tokenHash: hash) else { return }
            try tx.deleteSession(tokenHash: hash)
            try audit(org: session.org, actor: "user:\(session.user)", action: .sessionEnded, resource: .user(session.user), in: tx)
        }
    }

    /// The principal behind `token` (a session's or an API token's), allowed `permission` in
    /// `org` from where it was presented; else UNAUTHENTICATED or PERMISSION_DENIED (see `bearer`).
    func authorize(token: String, org: String, permission: Calltrace_Identity_V1_Permission?,
                   from presentation: Presentation) async throws -> Bearer {
        try await bearer(token, org: org, may: permission, from: presentation)
    }

    /// Whom `token` speaks for in `org`, allowed `permission`: a session's user, or an API
    /// token's (`ApiTokens.swift`). Both are refused alike: UNAUTHENTICATED when there is no
    /// valid one (unknown, ended, expired or revoked, its user or organisation no longer active:
    /// one answer, no hint which); PERMISSION_DENIED for another organisation's, a role (or an
    /// API token's scopes) without `permission`, or the organisation's two-factor requirement unmet.
    /// - Parameters:
    ///   - permission: nil only checks the credential (e.g. to enrol in two-factor), skipping the
    ///     role and, for a session, the organisation's two-factor requirement.
    ///   - accepting: `.sessionOnly` for credential calls: an API token is then PERMISSION_DENIED.
    ///   - presentation: who carried the token from where: a person's credential is refused
    ///     (PERMISSION_DENIED) from an address outside the organisation's allow-list, and a token
    ///     a gateway holds from anywhere but that gateway acting for nobody at an address.
    func bearer(_ token: String, org: String, may permission: Calltrace_Identity_V1_Permission?,
                accepting: Bearer.Accepted = .sessionOrApiToken, from presentation: Presentation) async throws -> Bearer {
        let now = self.now()
        let tokenHash = OpaqueToken.storageHash(token)
        if ApiTokenSecret.isApiToken(token), let held = try await repository.read({ tx in try tx.apiTokenHolder(hash: tokenHash) }) {
            return try await apiTokenBearer(held, hash: tokenHash, org: org, may: permission, accepting: accepting,
                                            from: presentation, now: now)
        }
        let session = try await repository.read { tx in try tx.session(tokenHash: tokenHash) }
        // A session ends at its own expiry, or earlier when the organisation shortened its
        // maximum since the login, or after the organisation's idle time.
        guard let session, session.expiresAt > now,
              session.createdAt == 0 || session.createdAt + session.maxSeconds * 1000 > now,
              now - session.lastUsedAt < session.idleSeconds * 1000,
              session.account.isActive
        else { throw Self.noValidCredential }
        guard session.org == org else { throw Self.otherOrganisation(org) }
        let bearer = Bearer(org: org, user: session.user, role: Calltrace_Identity_V1_Role(rawValue: session.account.role) ?? .unspecified,
                            credential: .session, twoFactorSatisfied: session.account.twoFactorSatisfied)
        try await checkClientAddress(presentation.clientAddress, org: org)
        if let permission { try check(bearer, may: permission) }
        // Only an allowed call keeps the session alive; a refused one does not refresh it.
        try await repository.write { tx in try tx.touchSession(tokenHash: tokenHash, at: now) }
        return bearer
    }

    /// The one answer for a token that is not (or no longer) a valid credential.
    static let noValidCredential = DomainError.unauthenticated("no valid session or API token")

    static let twoFactorNeeded = DomainError.notAllowed("the organisation requires two-factor; enrol first")

    static func otherOrganisation(_ org: String) -> DomainError {
        DomainError.notAllowed("the token does not belong to organisation \(org)")
    }

    /// Refuses `permission` unless `bearer` may use it, saying which rule stops it.
    func check(_ bearer: Bearer, may permission: Calltrace_Identity_V1_Permission) throws {
        guard bearer.twoFactorSatisfied else { throw Self.twoFactorNeeded }
        guard RoleTable.permissions(of: bearer.role).contains(permission) else {
            throw DomainError.notAllowed("role \(bearer.role) lacks \(RoleTable.name(of: permission))")
        }
        guard bearer.permissions.contains(permission) else {
            throw DomainError.notAllowed("the API token is not scoped to \(RoleTable.name(of: permission))")
        }
    }
}
