import CallTraceKeys
import CallTraceOutbound
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import Foundation

/// Identity's rules: organisations, named users, invitations and sessions, lockout, two-factor,
/// support grants. They decide; `repository` reads and writes (all SQL is there), and every
/// state change commits in one transaction with its audit record (and any job). E-mails and names
/// are sealed per organisation before they reach the repository; an e-mail is found through its
/// blind index.
struct IdentityRules: Sendable {
    /// Invitations last 72 hours. Sessions end after the org's idle time (default 30 minutes)
    /// or its maximum (default 12 hours), whichever comes first.
    static let invitationLifetimeMS: Int64 = 72 * 3_600_000
    static let resetLifetimeMS: Int64 = 3_600_000
    static let defaultIdleSeconds = 1800, defaultMaxSeconds = 43_200
    /// Lockout: 5 failed logins per account, or 20 per client address, within 15 minutes.
    static let failureWindowMS: Int64 = 15 * 60_000
    static let accountFailureLimit = 5
    static let addressFailureLimit = 20

    let repository: any IdentityRepository
    let keys: KeyRing
    let outbox: AuditOutbox
    /// Where invitation and reset tokens go: to the user, never back to the caller.
    let delivery: any TokenDelivery
    /// Every expiry here reads this clock (tests move it instead of sleeping).
    let clock: any WallClock
    /// scrypt at the deployment's cost (`PasswordHasher.standard`).
    var hasher = PasswordHasher.standard
    /// Where scrypt runs: never on the connection's I/O thread.
    var blocking = BlockingPool.shared

    func now() -> Int64 { clock.nowUnixMs }
    static func newID(_ prefix: String) -> String { "\(prefix)_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))" }

    static func normalisedEmail(_ raw: String) throws -> String {
        let email = raw.trimmingCharacters(in: .whitespaces).lowercased()
        let parts = email.split(separator: "@")
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), MailAddress.isPlain(email) else {
            throw DomainError.invalid("not an e-mail address")
        }
        return email
    }

    /// Records `record` in the same transaction as the change it describes.
    private func audit(_ record: AuditRecord, in tx: any IdentityTransaction) throws {
        try outbox.record(record, in: tx.connection)
    }

    private func audit(org: String, actor: String, action: IdentityAuditAction, resource: AuditResource, outcome: AuditOutcome = .success,
                       detail: String = "", in tx: any IdentityTransaction) throws {
        try audit(AuditRecord(org: org, actor: actor, action: action, resource: resource, outcome: outcome, detail: detail), in: tx)
    }

    /// An audit record on its own (a refusal changes nothing else).
    private func audit(org: String, actor: String, action: IdentityAuditAction, resource: AuditResource, outcome: AuditOutcome) async throws {
        try await repository.write { [self] tx in try audit(org: org, actor: actor, action: action, resource: resource, outcome: outcome, in: tx) }
    }

    // MARK: Organisations and invitations

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
    private func invite(org: String, email: String, name: String, role: Calltrace_Identity_V1_Role,
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
        let hasher = self.hasher
        let hash = try await blocking.run { try hasher.hash(password) }
        let now = self.now()
        return try await repository.write { [self] tx in
            guard let (user, org) = try tx.redeemableToken(hash: OpaqueToken.storageHash(token), purpose: purpose.rawValue,
                                                           userStatus: purpose == .invitation ? "invited" : "active", now: now)
            else { throw DomainError.notFound("\(purpose.rawValue) not found, used or expired") }
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
    func requestReset(org: String, email: String) async throws {
        guard let email = try? Self.normalisedEmail(email), let index = try? keys.blindIndex(email, kind: "email", org: org) else { return }
        let token = try OpaqueToken.generate()
        let expires = now() + Self.resetLifetimeMS
        try await repository.write { [self] tx in
            guard let user = try tx.activeUser(org: org, emailIndex: index) else { return }
            try tx.insertToken(hash: OpaqueToken.storageHash(token), user: user, purpose: TokenPurpose.reset.rawValue, expiresAt: expires)
            try audit(org: org, actor: "user:\(user)", action: .passwordResetIssued, resource: .user(user), in: tx)
            try delivery.deliver(TokenMessage(kind: .passwordReset, orgID: org, userID: user, email: email, token: token,
                                              expiresAtUnixMs: expires), in: tx.connection)
        }
    }

    // MARK: Sessions

    /// One answer for an unknown e-mail and a wrong password, after the same work.
    ///
    /// Each attempt is counted before the password is checked, in one transaction with the
    /// lockout check, so concurrent attempts cannot slip past the limit while an earlier one is
    /// still being verified; a success clears the account's count and gives back the address's.
    func login(org: String, email: String, password: String, totpCode: String, clientAddress: String) async throws
        -> Calltrace_Identity_V1_LoginResponse {
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
        var response = Calltrace_Identity_V1_LoginResponse()
        response.token = token
        response.expiresAtUnixMs = expires
        response.userID = user
        response.role = Calltrace_Identity_V1_Role(rawValue: candidate.role) ?? .unspecified
        return response
    }

    enum SecondFactor {
        /// The step accepted (0 for a user without confirmed two-factor).
        case accepted(Int64)
        /// A code that matched a step already used.
        case alreadyUsed
        case wrong
    }

    private func secondFactorStep(_ candidate: LoginCandidate, org: String, code: String) throws -> SecondFactor {
        guard candidate.twoFactorConfirmed else { return .accepted(0) }
        guard let sealed = candidate.sealedTwoFactorSecret else { return .wrong }
        let secret = try keys.open(sealed, org: org, table: "users", column: "totp_secret", row: candidate.user)
        guard let step = TOTP.acceptedStep(code, secret: secret, unixTime: now() / 1000) else { return .wrong }
        return step > candidate.lastTwoFactorStep ? .accepted(step) : .alreadyUsed
    }

    // MARK: Two-factor

    /// A new secret for a user who proved their password again (a stolen session alone cannot
    /// bind an attacker's authenticator).
    func enrollTotp(user: String, org: String, password: String) async throws -> Data {
        let stored = try await repository.read { tx in try tx.passwordHash(ofActiveUser: user, org: org) }
        let holds = try await blocking.run { stored.map { PasswordHasher.verify(password, against: $0) } ?? false }
        guard holds else { throw DomainError.notAllowed("enrolling two-factor needs the user's current password") }
        let secret = try TOTP.newSecret()
        let sealed = try keys.seal(secret, org: org, table: "users", column: "totp_secret", row: user)
        try await repository.write { [self] tx in
            guard try tx.setUnconfirmedTwoFactorSecret(sealed, user: user, org: org) else {
                throw DomainError.wrongState("two-factor is already confirmed")
            }
            try audit(org: org, actor: "user:\(user)", action: .twoFactorEnrolmentStarted, resource: .user(user), in: tx)
        }
        return secret
    }

    /// Clears a user's two-factor (a lost phone): they enrol again. Audited.
    func resetTwoFactor(_ user: String, org: String, by actor: String) async throws {
        try await changeUser(user, org: org, .resetTwoFactor, endSessions: true, action: .twoFactorReset, by: actor)
    }

    func confirmTotp(user: String, org: String, code: String) async throws {
        let now = self.now()
        try await repository.write { [self] tx in
            guard let pending = try tx.unconfirmedTwoFactor(user: user, org: org) else {
                throw DomainError.wrongState("start enrolment first")
            }
            let secret = try keys.open(pending.sealedSecret, org: org, table: "users", column: "totp_secret", row: user)
            guard let step = TOTP.acceptedStep(code, secret: secret, unixTime: now / 1000), step > pending.lastStep else {
                throw DomainError.invalid("that code does not match")
            }
            try tx.confirmTwoFactor(user: user, step: step)
            try audit(org: org, actor: "user:\(user)", action: .twoFactorConfirmed, resource: .user(user), in: tx)
        }
    }

    // MARK: Users as the firm sees them

    /// The organisation's users (`only`: that one), names and e-mails opened.
    func users(org: String, only user: String? = nil) async throws -> [Calltrace_Identity_V1_User] {
        let records = try await repository.read { tx in try tx.users(org: org, only: user) }
        return try records.map { record in
            let email = try keys.open(record.sealedEmail, org: org, table: "users", column: "email", row: record.id)
            let name = try keys.open(record.sealedName, org: org, table: "users", column: "display_name", row: record.id)
            return .with {
                $0.userID = record.id; $0.email = String(decoding: email, as: UTF8.self); $0.displayName = String(decoding: name, as: UTF8.self)
                $0.role = Calltrace_Identity_V1_Role(rawValue: record.role) ?? .unspecified; $0.status = record.status
                $0.twoFactorConfirmed = record.twoFactorConfirmed; $0.createdAtUnixMs = record.createdAt
            }
        }
    }

    /// How an authenticator app lists the account: the firm's name and the person's e-mail, never
    /// an id (`otpauth://totp/ISSUER:ACCOUNT?issuer=ISSUER`, each part percent-encoded).
    func totpLabel(user: String, org: String) async throws -> (issuer: String, account: String) {
        let firm = try await repository.read { tx in try tx.organizations(only: org) }.first
            .flatMap { try? keys.open($0.sealedName, org: org, table: "organizations", column: "name", row: org) }
            .map { String(decoding: $0, as: UTF8.self) }
        let email = try await users(org: org, only: user).first?.email ?? user
        return (firm.map { "CallTrace (\($0))" } ?? "CallTrace", email)
    }

    /// Every organisation for operators; an offboarded one's name is gone with its key.
    func organizations() async throws -> [Calltrace_Identity_V1_Organization] {
        try await repository.read { tx in try tx.organizations(only: nil) }.map { record in
            let name = (try? keys.open(record.sealedName, org: record.id, table: "organizations", column: "name", row: record.id))
                .map { String(decoding: $0, as: UTF8.self) } ?? "(unreadable: key shredded)"
            return .with { $0.orgID = record.id; $0.name = name; $0.status = record.status; $0.createdAtUnixMs = record.createdAt }
        }
    }

    /// The organisation's support grants, past and present, reasons opened.
    func grants(org: String) async throws -> [Calltrace_Identity_V1_SupportGrant] {
        try await repository.read { tx in try tx.grants(org: org) }.map { record in
            let reason = try keys.open(record.sealedReason, org: org, table: "support_grants", column: "reason", row: record.id)
            return .with {
                $0.grantID = record.id; $0.permissions = record.permissions.compactMap { Calltrace_Identity_V1_Permission(rawValue: $0) }
                $0.reason = String(decoding: reason, as: UTF8.self); $0.createdBy = record.createdBy; $0.createdAtUnixMs = record.createdAt
                $0.expiresAtUnixMs = record.expiresAt; $0.revokedAtUnixMs = record.revokedAt ?? 0
            }
        }
    }

    // MARK: Security policy

    func policy(org: String) async throws -> SecurityPolicy {
        guard let policy = try await repository.read({ tx in try tx.securityPolicy(of: org) }) else {
            throw DomainError.notFound("organisation \(org) not found")
        }
        return policy
    }

    /// Replaces the policy; the audit event says what changed from what to what.
    @discardableResult
    func setPolicy(ranges: [String], idleSeconds: UInt32, maxSeconds: UInt32, requireTwoFactor: Bool, org: String,
                   by actor: String) async throws -> SecurityPolicy {
        for range in ranges where AddressRange(range) == nil {
            throw DomainError.invalid("\(range) is not a CIDR range")
        }
        let idle = idleSeconds == 0 ? Self.defaultIdleSeconds : Int(idleSeconds)
        let maximum = maxSeconds == 0 ? Self.defaultMaxSeconds : Int(maxSeconds)
        guard idle <= 86_400, maximum <= 30 * 86_400 else {
            throw DomainError.invalid("sessions last at most a day idle and 30 days in all")
        }
        let changed = SecurityPolicy(ranges: ranges, idleSeconds: idle, maxSeconds: maximum, requireTwoFactor: requireTwoFactor)
        try await repository.write { [self] tx in
            guard let before = try tx.securityPolicy(of: org),
                  try tx.setSecurityPolicy(org, ranges: ranges.joined(separator: " "), idleSeconds: idle, maxSeconds: maximum,
                                           requireTwoFactor: requireTwoFactor) else {
                throw DomainError.notFound("organisation \(org) not found")
            }
            try audit(org: org, actor: actor, action: .securityPolicyChanged, resource: .organisation(org),
                      detail: String(before.changes(to: changed).prefix(900)), in: tx)
        }
        return changed
    }

    /// Refuses an address outside the organisation's allow-list (or none, when it has one).
    func checkClientAddress(_ address: String?, org: String) async throws {
        let text = try await repository.read { tx in try tx.allowedClientRanges(of: org) ?? "" }
        let ranges = text.split(separator: " ").compactMap { AddressRange(String($0)) }
        guard !ranges.isEmpty else { return }
        guard let address, ranges.contains(where: { $0.contains(address) }) else {
            throw DomainError.notAllowed("the organisation does not allow access from this network address")
        }
    }

    // MARK: Support grants (P8)

    /// Grants last at most 14 days.
    static let maxGrantSeconds: UInt32 = 14 * 86_400

    func createGrant(org: String, permissions: [Calltrace_Identity_V1_Permission], seconds: UInt32, reason: String,
                     by actor: String) async throws -> (id: String, expires: Int64) {
        let permissions = Set(permissions.filter { $0 != .unspecified })
        guard !permissions.isEmpty else { throw DomainError.invalid("a grant names at least one permission") }
        guard (1...Self.maxGrantSeconds).contains(seconds) else {
            throw DomainError.invalid("a grant lasts from 1 second to 14 days")
        }
        guard !reason.isEmpty else { throw DomainError.invalid("a grant needs a reason or ticket reference") }
        let id = Self.newID("grt")
        let now = self.now()
        let grant = NewGrant(id: id, org: org, permissions: permissions.map(\.rawValue),
                             sealedReason: try keys.seal(Data(reason.utf8), org: org, table: "support_grants", column: "reason", row: id),
                             createdBy: actor, createdAt: now, expiresAt: now + Int64(seconds) * 1000)
        try await repository.write { [self] tx in
            try tx.insertGrant(grant)
            try audit(org: org, actor: actor, action: .supportGrantCreated, resource: .grant(id), in: tx)
        }
        return (id, grant.expiresAt)
    }

    func revokeGrant(_ id: String, org: String, by actor: String) async throws {
        let now = self.now()
        try await repository.write { [self] tx in
            guard try tx.revokeGrant(id, org: org, at: now) else { throw DomainError.notFound("grant \(id) not found or already revoked") }
            try audit(org: org, actor: actor, action: .supportGrantRevoked, resource: .grant(id), in: tx)
        }
    }

    /// An operator may act only under an active grant naming the permission; audited either way.
    func authorizeOperator(_ name: String, org: String, permission: Calltrace_Identity_V1_Permission) async throws
        -> Calltrace_Identity_V1_Principal {
        let now = self.now()
        // The audit event commits whether or not access is allowed; the refusal comes after.
        let grantID = try await repository.write { [self] tx -> String? in
            let grant = try tx.activeGrants(org: org, now: now).first { $0.permissions.contains(permission.rawValue) }
            // Grants that ran out become an audit event of their own, once.
            for expired in try tx.takeNewlyExpiredGrants(org: org, now: now) {
                try audit(org: org, actor: "system", action: .supportGrantExpired, resource: .grant(expired), in: tx)
            }
            try audit(AuditRecord(org: org, actor: "operator:\(name)", action: IdentityAuditAction.operatorAccess(to: permission),
                                  resource: grant.map { AuditResource.grant($0.id) } ?? .organisation(org), outcome: grant == nil ? .denied : .success), in: tx)
            return grant?.id
        }
        guard let grantID else {
            throw DomainError.notAllowed("no active support grant lets operators use \(RoleTable.name(of: permission)) in \(org)")
        }
        var principal = Calltrace_Identity_V1_Principal()
        principal.orgID = org
        principal.operatorName = name
        principal.supportGrantID = grantID
        return principal
    }

    // MARK: User and organisation lifecycle

    func suspendUser(_ user: String, org: String, by actor: String) async throws {
        try await changeUser(user, org: org, .suspend, endSessions: true, endTokens: true, action: .userSuspended, by: actor)
    }

    func changeRole(_ user: String, org: String, to role: Calltrace_Identity_V1_Role, by actor: String) async throws {
        guard role != .unspecified, !RoleTable.permissions(of: role).isEmpty else { throw DomainError.invalid("name a role") }
        try await changeUser(user, org: org, .role(role.rawValue), endSessions: false, action: .userRoleChanged, by: actor)
    }

    func revokeSessions(_ user: String, org: String, by actor: String) async throws -> Int {
        try await repository.write { [self] tx in
            guard try tx.userExists(user, org: org) else { throw DomainError.notFound("user \(user) not found in organisation \(org)") }
            let ended = try tx.deleteSessions(user: user)
            try audit(org: org, actor: actor, action: .sessionsRevoked, resource: .user(user), in: tx)
            return ended
        }
    }

    func suspendOrganization(_ org: String, by actor: String) async throws {
        try await repository.write { [self] tx in
            guard try tx.setOrganizationStatus(org, to: "suspended", from: ["active"]) else {
                throw DomainError.notFound("active organisation \(org) not found")
            }
            try tx.deleteSessions(org: org)
            try audit(org: org, actor: actor, action: .organisationSuspended, resource: .organisation(org), in: tx)
        }
    }

    /// The last step of offboarding (P11): the organisation is marked offboarded, its people are
    /// deleted (users with their sealed names and e-mails, password hashes and two-factor
    /// secrets, invitations, sessions, support grants), then identity's key for it is shredded.
    /// Idempotent: a repeat (compliance retrying after a lost answer, or a crash between the
    /// steps) deletes what is left and answers everything deleted so far, as the first did.
    func markOffboarded(_ org: String, by actor: String) async throws -> OffboardedPeople {
        let deleted = try await repository.write { [self] tx -> OffboardedPeople in
            guard let status = try tx.organizationStatus(org) else { throw DomainError.notFound("organisation \(org) not found") }
            if status != "offboarded" { _ = try tx.setOrganizationStatus(org, to: "offboarded", from: nil) }
            let total = try tx.offboardingReceipt(org: org) + tx.deletePeople(org: org)
            try tx.setOffboardingReceipt(org: org, total)
            if status != "offboarded" {
                try audit(org: org, actor: actor, action: .organisationOffboarded, resource: .organisation(org), in: tx)
            }
            return total
        }
        try keys.shred(org: org)
        return deleted
    }

    /// Organisations offboarded before offboarding deleted their people: deleted now, and their
    /// keys shredded (the hourly housekeeping). Returns how many organisations it cleared.
    func clearOffboarded() async throws -> Int {
        let orgs = try await repository.read { tx in try tx.offboardedWithPeople() }
        for org in orgs { _ = try await markOffboarded(org, by: IdentityService.actor) }
        return orgs.count
    }

    /// Applies an admin's change to a user.
    /// - Parameter endTokens: also void the user's outstanding invitation and reset tokens.
    private func changeUser(_ user: String, org: String, _ change: UserChange, endSessions: Bool, endTokens: Bool = false,
                            action: IdentityAuditAction, by actor: String) async throws {
        try await repository.write { [self] tx in
            guard try tx.change(user, org: org, change) else { throw DomainError.notFound("user \(user) not found in organisation \(org)") }
            // An organisation always keeps an active admin: the last one cannot be removed,
            // suspended or demoted (the change rolls back).
            guard try tx.activeAdminCount(org: org) > 0 else {
                throw DomainError.wrongState("the organisation's last active admin cannot be removed, suspended or demoted")
            }
            if endSessions { try tx.deleteSessions(user: user) }
            if endTokens { try tx.deleteTokens(user: user) }
            try audit(org: org, actor: actor, action: action, resource: .user(user), in: tx)
        }
    }

    /// Removes a user of `org`; their sessions end at once.
    func removeUser(_ user: String, org: String, by actor: String) async throws {
        // The e-mail's index is replaced by one naming the removed user, so the address can be invited again.
        try await changeUser(user, org: org, .remove(freedIndex: Data("removed:\(user)".utf8)), endSessions: true, endTokens: true,
                             action: .userRemoved, by: actor)
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

    /// The principal behind `token`, allowed `permission` in `org`; else UNAUTHENTICATED (no
    /// valid session) or PERMISSION_DENIED (another organisation, or a role without it).
    /// - Parameter permission: nil only checks the session (e.g. to enrol in two-factor), skipping
    ///   the role and the org's two-factor requirement.
    func authorize(token: String, org: String, permission: Calltrace_Identity_V1_Permission?) async throws -> Calltrace_Identity_V1_Principal {
        let now = self.now()
        let tokenHash = OpaqueToken.storageHash(token)
        let session = try await repository.read { tx in try tx.session(tokenHash: tokenHash) }
        // A session ends at its own expiry, or earlier when the organisation shortened its
        // maximum since the login, or after the organisation's idle time.
        guard let session, session.expiresAt > now,
              session.createdAt == 0 || session.createdAt + session.maxSeconds * 1000 > now,
              now - session.lastUsedAt < session.idleSeconds * 1000,
              session.userStatus == "active", session.orgStatus == "active"
        else { throw DomainError.unauthenticated("no valid session") }
        guard session.org == org else { throw DomainError.notAllowed("the session does not belong to organisation \(org)") }
        let role = Calltrace_Identity_V1_Role(rawValue: session.role) ?? .unspecified
        if let permission {
            guard !session.requireTwoFactor || session.twoFactorConfirmed else {
                throw DomainError.notAllowed("the organisation requires two-factor; enrol first")
            }
            guard RoleTable.permissions(of: role).contains(permission) else {
                throw DomainError.notAllowed("role \(role) lacks \(RoleTable.name(of: permission))")
            }
        }
        // Only an allowed call keeps the session alive; a refused one does not refresh it.
        try await repository.write { tx in try tx.touchSession(tokenHash: tokenHash, at: now) }
        var principal = Calltrace_Identity_V1_Principal()
        principal.orgID = org
        principal.userID = session.user
        principal.role = role
        return principal
    }

    // MARK: Housekeeping

    /// Deletes what can no longer be used: sessions past their maximum or idle beyond the longest
    /// idle time any organisation may set (a day), failed-login counts outside their window, and
    /// invitation and reset tokens used or expired. Returns the rows removed.
    func purgeExpired() async throws -> Int {
        let now = self.now()
        return try await repository.write { tx in
            try tx.purge(now: now, idleBefore: now - 86_400_000, failuresBefore: now - Self.failureWindowMS)
        }
    }
}
