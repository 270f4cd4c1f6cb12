import CallTraceKeys
import CallTraceOutbound
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import Foundation

/// Organisations, named users, invitations and sessions, in identity's own database. E-mails and
/// names are sealed per organisation; an e-mail is found through its blind index.
struct IdentityStore: Sendable {
    static let schema = """
        CREATE TABLE organizations (
            id TEXT PRIMARY KEY,
            name BLOB NOT NULL,
            status TEXT NOT NULL DEFAULT 'active',
            allowed_client_ranges TEXT NOT NULL DEFAULT '',
            session_idle_seconds INTEGER NOT NULL DEFAULT 1800,
            session_max_seconds INTEGER NOT NULL DEFAULT 43200,
            require_two_factor INTEGER NOT NULL DEFAULT 0,
            created_at_unix_ms INTEGER NOT NULL
        );
        CREATE TABLE users (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL REFERENCES organizations(id),
            email BLOB NOT NULL,
            email_index BLOB NOT NULL,
            display_name BLOB NOT NULL,
            role INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'invited',
            password_hash TEXT,
            totp_secret BLOB,
            totp_confirmed INTEGER NOT NULL DEFAULT 0,
            created_at_unix_ms INTEGER NOT NULL,
            UNIQUE (org_id, email_index)
        );
        CREATE TABLE invitations (
            token_hash BLOB PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id),
            purpose TEXT NOT NULL DEFAULT 'invitation',
            expires_at_unix_ms INTEGER NOT NULL,
            redeemed_at_unix_ms INTEGER
        );
        CREATE TABLE support_grants (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL REFERENCES organizations(id),
            permissions TEXT NOT NULL,
            reason BLOB NOT NULL,
            created_by TEXT NOT NULL,
            created_at_unix_ms INTEGER NOT NULL,
            expires_at_unix_ms INTEGER NOT NULL,
            revoked_at_unix_ms INTEGER,
            expiry_recorded INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE login_failures (
            subject BLOB PRIMARY KEY,
            failures INTEGER NOT NULL,
            window_started_at_unix_ms INTEGER NOT NULL
        );
        CREATE TABLE sessions (
            token_hash BLOB PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id),
            org_id TEXT NOT NULL,
            last_used_at_unix_ms INTEGER NOT NULL,
            expires_at_unix_ms INTEGER NOT NULL
        );
        """

    /// Replay protection for two-factor codes, and a session's start (so that shortening an
    /// organisation's maximum session reaches sessions already open).
    static let schemaV3 = """
        ALTER TABLE users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE sessions ADD COLUMN created_at_unix_ms INTEGER NOT NULL DEFAULT 0;
        """

    /// Invitations last 72 hours. Sessions end after the org's idle time (default 30 minutes)
    /// or its maximum (default 12 hours), whichever comes first.
    static let invitationLifetimeMS: Int64 = 72 * 3_600_000
    static let resetLifetimeMS: Int64 = 3_600_000
    static let defaultIdleSeconds = 1800, defaultMaxSeconds = 43_200
    /// Lockout: 5 failed logins per account, or 20 per client address, within 15 minutes.
    static let failureWindowMS: Int64 = 15 * 60_000
    static let accountFailureLimit = 5
    static let addressFailureLimit = 20

    let database: Database
    let keys: KeyRing
    let outbox: AuditOutbox
    /// Where invitation and reset tokens go: to the user, never back to the caller.
    let delivery: any TokenDelivery
    /// Every expiry here reads this clock (tests move it instead of sleeping).
    let clock: any WallClock

    func now() -> Int64 { clock.nowUnixMs }
    static func newID(_ prefix: String) -> String { "\(prefix)_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))" }

    static func normalisedEmail(_ raw: String) throws -> String {
        let email = raw.trimmingCharacters(in: .whitespaces).lowercased()
        let parts = email.split(separator: "@")
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), MailAddress.isPlain(email) else {
            throw RPCError(.invalidArgument, "not an e-mail address")
        }
        return email
    }

    // MARK: Organisations and invitations

    /// A new organisation with its keys, and the first admin's invitation, delivered to them.
    func createOrganization(name: String, adminEmail: String, adminName: String, by actor: String)
        async throws -> (org: String, expires: Int64) {
        guard !name.isEmpty, name.count <= 200 else { throw RPCError(.invalidArgument, "an organisation needs a name") }
        let org = Self.newID("org")
        try keys.createKeys(for: org)
        let sealedName = try keys.seal(Data(name.utf8), org: org, table: "organizations", column: "name", row: org)
        let (_, expires) = try await database.write { [self] db in
            try db.execute("INSERT INTO organizations (id, name, created_at_unix_ms) VALUES (?, ?, ?)", org, sealedName, now())
            let invited = try invite(org: org, email: adminEmail, name: adminName, role: .admin, in: db)
            try outbox.record(AuditRecord(org: org, actor: actor, action: "organization.created", resource: "organization:\(org)",
                                          outcome: "success"), in: db)
            return invited
        }
        return (org, expires)
    }

    func inviteUser(org: String, email: String, name: String, role: Calltrace_Identity_V1_Role, by actor: String)
        async throws -> (user: String, expires: Int64) {
        guard role != .unspecified, RoleTable.permissions(of: role).count > 0 else {
            throw RPCError(.invalidArgument, "a user needs a role")
        }
        return try await database.write { [self] db in
            guard try db.query("SELECT 1 FROM organizations WHERE id = ? AND status = 'active'", org).first != nil else {
                throw RPCError(.notFound, "organisation \(org) not found")
            }
            return try invite(org: org, email: email, name: name, role: role, in: db, actor: actor)
        }
    }

    /// A user in state `invited` and a single-use invitation; only the token's hash is stored,
    /// and the token itself goes to the user through `delivery`, in the same transaction.
    private func invite(org: String, email: String, name: String, role: Calltrace_Identity_V1_Role,
                        in db: Connection, actor: String? = nil) throws -> (user: String, expires: Int64) {
        let email = try Self.normalisedEmail(email)
        let index = try keys.blindIndex(email, kind: "email", org: org)
        guard try db.query("SELECT 1 FROM users WHERE org_id = ? AND email_index = ?", org, index).first == nil else {
            throw RPCError(.alreadyExists, "that e-mail already belongs to a user of the organisation")
        }
        let user = Self.newID("usr")
        try db.execute(
            "INSERT INTO users (id, org_id, email, email_index, display_name, role, created_at_unix_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            user, org, try keys.seal(Data(email.utf8), org: org, table: "users", column: "email", row: user), index,
            try keys.seal(Data(name.utf8), org: org, table: "users", column: "display_name", row: user), role.rawValue, now())
        let token = try OpaqueToken.generate()
        let expires = now() + Self.invitationLifetimeMS
        try db.execute("INSERT INTO invitations (token_hash, user_id, expires_at_unix_ms) VALUES (?, ?, ?)",
                       OpaqueToken.storageHash(token), user, expires)
        try outbox.record(AuditRecord(org: org, actor: actor ?? "system", action: "invitation.issued", resource: "user:\(user)",
                                      outcome: "success"), in: db)
        try delivery.deliver(TokenMessage(kind: .invitation, orgID: org, userID: user, email: email, token: token, expiresAtUnixMs: expires),
                             in: db)
        return (user, expires)
    }

    /// Sets a password with a single-use token: an invitation (the user must still be invited:
    /// a suspended or removed invitee gets nothing) or a reset (the user must be active; every
    /// session ends). Either way every other outstanding token of the same kind is voided.
    func redeem(_ purpose: TokenPurpose, token: String, password: String) async throws -> (org: String, user: String) {
        if let weakness = PasswordHasher.weakness(of: password) { throw RPCError(.invalidArgument, weakness) }
        let hash = try await BlockingPool.shared.run { try PasswordHasher.hash(password) }
        return try await database.write { [self] db in
            let now = self.now()
            let requiredStatus = purpose == .invitation ? "invited" : "active"
            guard let row = try db.query("""
                SELECT i.user_id, u.org_id FROM invitations i JOIN users u ON u.id = i.user_id
                JOIN organizations o ON o.id = u.org_id
                WHERE i.token_hash = ? AND i.purpose = ? AND i.redeemed_at_unix_ms IS NULL AND i.expires_at_unix_ms > ?
                  AND u.status = ? AND o.status = 'active'
                """, OpaqueToken.storageHash(token), purpose.rawValue, now, requiredStatus).first,
                  let user = row.text("user_id"), let org = row.text("org_id")
            else { throw RPCError(.notFound, "\(purpose.rawValue) not found, used or expired") }
            try db.execute("UPDATE invitations SET redeemed_at_unix_ms = ? WHERE user_id = ? AND purpose = ? AND redeemed_at_unix_ms IS NULL",
                           now, user, purpose.rawValue)
            try db.execute("UPDATE users SET password_hash = ?, status = 'active' WHERE id = ?", hash, user)
            if purpose == .reset { try db.execute("DELETE FROM sessions WHERE user_id = ?", user) }
            try outbox.record(AuditRecord(org: org, actor: "user:\(user)", action: "\(purpose.rawValue).redeemed", resource: "user:\(user)",
                                          outcome: "success"), in: db)
            return (org, user)
        }
    }

    enum TokenPurpose: String { case invitation, reset = "password_reset" }

    /// Delivers a reset token to an active user with that e-mail; does nothing otherwise (the
    /// caller cannot tell which).
    func requestReset(org: String, email: String) async throws {
        guard let email = try? Self.normalisedEmail(email), let index = try? keys.blindIndex(email, kind: "email", org: org) else { return }
        try await database.write { [self] db in
            guard let user = try db.query("SELECT id FROM users WHERE org_id = ? AND email_index = ? AND status = 'active'", org, index)
                .first?.text("id") else { return }
            let token = try OpaqueToken.generate()
            let expires = now() + Self.resetLifetimeMS
            try db.execute("INSERT INTO invitations (token_hash, user_id, purpose, expires_at_unix_ms) VALUES (?, ?, ?, ?)",
                           OpaqueToken.storageHash(token), user, TokenPurpose.reset.rawValue, expires)
            try outbox.record(AuditRecord(org: org, actor: "user:\(user)", action: "password_reset.issued", resource: "user:\(user)",
                                          outcome: "success"), in: db)
            try delivery.deliver(TokenMessage(kind: .passwordReset, orgID: org, userID: user, email: email, token: token,
                                              expiresAtUnixMs: expires), in: db)
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
        let refused = RPCError(.unauthenticated, "invalid e-mail, password or code")
        // An unknown organisation has no keys (and gets none): the same answer, after the same work.
        guard let email = try? Self.normalisedEmail(email), let index = try? keys.blindIndex(email, kind: "email", org: org) else {
            _ = try await BlockingPool.shared.run { PasswordHasher.verifyDummy(password) }
            throw refused
        }
        // Counted per account (known or not, so lockout reveals nothing) and per client address.
        let account = LoginAttempts.Subject(key: Data("account:".utf8) + index, limit: Self.accountFailureLimit)
        guard let bucket = LoginAttempts.bucket(of: clientAddress) else {
            throw RPCError(.invalidArgument, "the client address must be an IPv4 or IPv6 address")
        }
        let address = LoginAttempts.Subject(key: OpaqueToken.storageHash("address:\(org):\(bucket)"), limit: Self.addressFailureLimit)
        try await checkClientAddress(clientAddress, org: org)
        let subjects = [account, address]
        let now = self.now()
        guard try await database.write({ db in try LoginAttempts.reserve(subjects, now: now, window: Self.failureWindowMS, in: db) }) else {
            try await audit(org: org, actor: "unknown", action: "login.locked_out", resource: "organization:\(org)", outcome: "denied")
            throw RPCError(.resourceExhausted, "too many failed logins; try again later")
        }
        let row = try await database.read { db in
            try db.query("""
                SELECT u.id, u.role, u.password_hash, u.totp_secret, u.totp_confirmed, u.totp_last_step, o.session_max_seconds
                FROM users u JOIN organizations o ON o.id = u.org_id
                WHERE u.org_id = ? AND u.email_index = ? AND u.status = 'active' AND o.status = 'active'
                """, org, index).first
        }
        guard let row, let user = row.text("id"), let stored = row.text("password_hash") else {
            _ = try await BlockingPool.shared.run { PasswordHasher.verifyDummy(password) }
            try await audit(org: org, actor: "unknown", action: "login.failed", resource: "organization:\(org)", outcome: "denied")
            throw refused
        }
        let passwordHolds = try await BlockingPool.shared.run { PasswordHasher.verify(password, against: stored) }
        let totpStep = try secondFactorStep(row, user: user, org: org, code: totpCode)
        guard passwordHolds, totpStep != nil else {
            try await audit(org: org, actor: "user:\(user)", action: "login.failed", resource: "user:\(user)", outcome: "denied")
            throw refused
        }
        let token = try OpaqueToken.generate()
        let expires = now + (row.int("session_max_seconds") ?? Int64(Self.defaultMaxSeconds)) * 1000
        try await database.write { [self] db in
            // A two-factor code is good once: the step must come after the last one accepted.
            if let step = totpStep, step > 0 {
                let fresh = try db.execute("UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?", step, user, step)
                guard fresh == 1 else { throw refused }
            }
            try LoginAttempts.succeeded(account: account, address: address, in: db)
            try db.execute("""
                INSERT INTO sessions (token_hash, user_id, org_id, last_used_at_unix_ms, expires_at_unix_ms, created_at_unix_ms)
                VALUES (?, ?, ?, ?, ?, ?)
                """, OpaqueToken.storageHash(token), user, org, now, expires, now)
            try outbox.record(AuditRecord(org: org, actor: "user:\(user)", action: "login.succeeded", resource: "user:\(user)",
                                          outcome: "success"), in: db)
        }
        var response = Calltrace_Identity_V1_LoginResponse()
        response.token = token
        response.expiresAtUnixMs = expires
        response.userID = user
        response.role = Calltrace_Identity_V1_Role(rawValue: Int(row.int("role") ?? 0)) ?? .unspecified
        return response
    }

    /// The accepted two-factor step: 0 for a user without confirmed two-factor, nil when the code
    /// does not match or was already used.
    private func secondFactorStep(_ row: Row, user: String, org: String, code: String) throws -> Int64? {
        guard row.int("totp_confirmed") == 1 else { return 0 }
        guard let sealed = row.blob("totp_secret") else { return nil }
        let secret = try keys.open(sealed, org: org, table: "users", column: "totp_secret", row: user)
        guard let step = TOTP.acceptedStep(code, secret: secret, unixTime: now() / 1000),
              step > (row.int("totp_last_step") ?? 0) else { return nil }
        return step
    }

    // MARK: Two-factor

    /// A new secret for a user who proved their password again (a stolen session alone cannot
    /// bind an attacker's authenticator).
    func enrollTotp(user: String, org: String, password: String) async throws -> Data {
        let stored = try await database.read { db in
            try db.query("SELECT password_hash FROM users WHERE id = ? AND org_id = ? AND status = 'active'", user, org).first?.text("password_hash")
        }
        let holds = try await BlockingPool.shared.run { stored.map { PasswordHasher.verify(password, against: $0) } ?? false }
        guard holds else { throw RPCError(.permissionDenied, "enrolling two-factor needs the user's current password") }
        let secret = try TOTP.newSecret()
        let sealed = try keys.seal(secret, org: org, table: "users", column: "totp_secret", row: user)
        try await database.write { [self] db in
            let changed = try db.execute("UPDATE users SET totp_secret = ? WHERE id = ? AND org_id = ? AND totp_confirmed = 0", sealed, user, org)
            guard changed == 1 else { throw RPCError(.failedPrecondition, "two-factor is already confirmed") }
            try outbox.record(AuditRecord(org: org, actor: "user:\(user)", action: "two_factor.enrolment_started", resource: "user:\(user)",
                                          outcome: "success"), in: db)
        }
        return secret
    }

    /// Clears a user's two-factor (a lost phone): they enrol again. Audited.
    func resetTwoFactor(_ user: String, org: String, by actor: String) async throws {
        try await changeUser(user, org: org, set: "totp_secret = NULL, totp_confirmed = 0", endSessions: true,
                             action: "two_factor.reset", by: actor)
    }

    func confirmTotp(user: String, org: String, code: String) async throws {
        try await database.write { [self] db in
            guard let row = try db.query("SELECT totp_secret, totp_last_step FROM users WHERE id = ? AND org_id = ? AND totp_confirmed = 0",
                                         user, org).first,
                  let sealed = row.blob("totp_secret")
            else { throw RPCError(.failedPrecondition, "start enrolment first") }
            let secret = try keys.open(sealed, org: org, table: "users", column: "totp_secret", row: user)
            guard let step = TOTP.acceptedStep(code, secret: secret, unixTime: now() / 1000),
                  step > (row.int("totp_last_step") ?? 0) else {
                throw RPCError(.invalidArgument, "that code does not match")
            }
            try db.execute("UPDATE users SET totp_confirmed = 1, totp_last_step = ? WHERE id = ?", step, user)
            try outbox.record(AuditRecord(org: org, actor: "user:\(user)", action: "two_factor.confirmed", resource: "user:\(user)",
                                          outcome: "success"), in: db)
        }
    }

    // MARK: Security policy

    func setPolicy(ranges: [String], idleSeconds: UInt32, maxSeconds: UInt32, requireTwoFactor: Bool, org: String,
                   by actor: String) async throws {
        for range in ranges where AddressRange(range) == nil {
            throw RPCError(.invalidArgument, "\(range) is not a CIDR range")
        }
        let idle = idleSeconds == 0 ? Self.defaultIdleSeconds : Int(idleSeconds)
        let maximum = maxSeconds == 0 ? Self.defaultMaxSeconds : Int(maxSeconds)
        guard idle <= 86_400, maximum <= 30 * 86_400 else {
            throw RPCError(.invalidArgument, "sessions last at most a day idle and 30 days in all")
        }
        try await database.write { [self] db in
            let changed = try db.execute(
                "UPDATE organizations SET allowed_client_ranges = ?, session_idle_seconds = ?, session_max_seconds = ?, require_two_factor = ? WHERE id = ?",
                ranges.joined(separator: " "), idle, maximum, requireTwoFactor, org)
            guard changed == 1 else { throw RPCError(.notFound, "organisation \(org) not found") }
            try outbox.record(AuditRecord(org: org, actor: actor, action: "security_policy.changed", resource: "organization:\(org)",
                                          outcome: "success"), in: db)
        }
    }

    /// Refuses an address outside the organisation's allow-list (or none, when it has one).
    func checkClientAddress(_ address: String?, org: String) async throws {
        let text = try await database.read { db in
            try db.query("SELECT allowed_client_ranges FROM organizations WHERE id = ?", org).first?.text("allowed_client_ranges") ?? ""
        }
        let ranges = text.split(separator: " ").compactMap { AddressRange(String($0)) }
        guard !ranges.isEmpty else { return }
        guard let address, ranges.contains(where: { $0.contains(address) }) else {
            throw RPCError(.permissionDenied, "the organisation does not allow access from this network address")
        }
    }

    // MARK: Support grants (P8)

    /// Grants last at most 14 days.
    static let maxGrantSeconds: UInt32 = 14 * 86_400

    func createGrant(org: String, permissions: [Calltrace_Identity_V1_Permission], seconds: UInt32, reason: String,
                     by actor: String) async throws -> (id: String, expires: Int64) {
        let permissions = Set(permissions.filter { $0 != .unspecified })
        guard !permissions.isEmpty else { throw RPCError(.invalidArgument, "a grant names at least one permission") }
        guard (1...Self.maxGrantSeconds).contains(seconds) else {
            throw RPCError(.invalidArgument, "a grant lasts from 1 second to 14 days")
        }
        guard !reason.isEmpty else { throw RPCError(.invalidArgument, "a grant needs a reason or ticket reference") }
        let id = Self.newID("grt")
        let now = self.now()
        let expires = now + Int64(seconds) * 1000
        let sealedReason = try keys.seal(Data(reason.utf8), org: org, table: "support_grants", column: "reason", row: id)
        try await database.write { [self] db in
            try db.execute("""
                INSERT INTO support_grants (id, org_id, permissions, reason, created_by, created_at_unix_ms, expires_at_unix_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, id, org, permissions.map { String($0.rawValue) }.sorted().joined(separator: ","), sealedReason, actor, now, expires)
            try outbox.record(AuditRecord(org: org, actor: actor, action: "support_grant.created", resource: "grant:\(id)",
                                          outcome: "success"), in: db)
        }
        return (id, expires)
    }

    func revokeGrant(_ id: String, org: String, by actor: String) async throws {
        try await database.write { [self] db in
            let changed = try db.execute("UPDATE support_grants SET revoked_at_unix_ms = ? WHERE id = ? AND org_id = ? AND revoked_at_unix_ms IS NULL",
                                         now(), id, org)
            guard changed == 1 else { throw RPCError(.notFound, "grant \(id) not found or already revoked") }
            try outbox.record(AuditRecord(org: org, actor: actor, action: "support_grant.revoked", resource: "grant:\(id)",
                                          outcome: "success"), in: db)
        }
    }

    /// An operator may act only under an active grant naming the permission; audited either way.
    func authorizeOperator(_ name: String, org: String, permission: Calltrace_Identity_V1_Permission) async throws
        -> Calltrace_Identity_V1_Principal {
        let now = self.now()
        // The audit event commits whether or not access is allowed; the refusal comes after.
        let grantID = try await database.write { [self] db -> String? in
            let grants = try db.query("""
                SELECT id, permissions, expires_at_unix_ms FROM support_grants
                WHERE org_id = ? AND revoked_at_unix_ms IS NULL AND expires_at_unix_ms > ? ORDER BY expires_at_unix_ms DESC
                """, org, now)
            let grant = grants.first { row in
                (row.text("permissions") ?? "").split(separator: ",").contains(Substring(String(permission.rawValue)))
            }
            // Grants that ran out become an audit event of their own, once.
            for expired in try db.query("""
                SELECT id FROM support_grants
                WHERE org_id = ? AND revoked_at_unix_ms IS NULL AND expires_at_unix_ms <= ? AND expiry_recorded = 0
                """, org, now).compactMap({ $0.text("id") }) {
                try db.execute("UPDATE support_grants SET expiry_recorded = 1 WHERE id = ?", expired)
                try outbox.record(AuditRecord(org: org, actor: "system", action: "support_grant.expired", resource: "grant:\(expired)",
                                              outcome: "success"), in: db)
            }
            let resource = grant.flatMap { $0.text("id") }.map { "grant:\($0)" } ?? "organization:\(org)"
            try outbox.record(AuditRecord(org: org, actor: "operator:\(name)", action: "operator.access.\(permission)",
                                          resource: resource, outcome: grant == nil ? "denied" : "success"), in: db)
            return grant?.text("id")
        }
        guard let grantID else {
            throw RPCError(.permissionDenied, "no active support grant lets operators use \(RoleTable.name(of: permission)) in \(org)")
        }
        var principal = Calltrace_Identity_V1_Principal()
        principal.orgID = org
        principal.operatorName = name
        principal.supportGrantID = grantID
        return principal
    }

    // MARK: User and organisation lifecycle

    func suspendUser(_ user: String, org: String, by actor: String) async throws {
        try await changeUser(user, org: org, set: "status = 'suspended'", endSessions: true, endTokens: true,
                             action: "user.suspended", by: actor)
    }

    func changeRole(_ user: String, org: String, to role: Calltrace_Identity_V1_Role, by actor: String) async throws {
        guard role != .unspecified, !RoleTable.permissions(of: role).isEmpty else { throw RPCError(.invalidArgument, "name a role") }
        try await changeUser(user, org: org, set: "role = \(role.rawValue)", endSessions: false, action: "user.role_changed", by: actor)
    }

    func revokeSessions(_ user: String, org: String, by actor: String) async throws -> Int {
        try await database.write { [self] db in
            guard try db.query("SELECT 1 FROM users WHERE id = ? AND org_id = ?", user, org).first != nil else {
                throw RPCError(.notFound, "user \(user) not found in organisation \(org)")
            }
            let ended = try db.execute("DELETE FROM sessions WHERE user_id = ?", user)
            try outbox.record(AuditRecord(org: org, actor: actor, action: "sessions.revoked", resource: "user:\(user)", outcome: "success"), in: db)
            return ended
        }
    }

    func suspendOrganization(_ org: String, by actor: String) async throws {
        try await database.write { [self] db in
            let changed = try db.execute("UPDATE organizations SET status = 'suspended' WHERE id = ? AND status = 'active'", org)
            guard changed == 1 else { throw RPCError(.notFound, "active organisation \(org) not found") }
            try db.execute("DELETE FROM sessions WHERE org_id = ?", org)
            try outbox.record(AuditRecord(org: org, actor: actor, action: "organization.suspended", resource: "organization:\(org)",
                                          outcome: "success"), in: db)
        }
    }

    /// Idempotent: an organisation already offboarded stays so.
    func markOffboarded(_ org: String, by actor: String) async throws {
        try await database.write { [self] db in
            guard let status = try db.query("SELECT status FROM organizations WHERE id = ?", org).first?.text("status") else {
                throw RPCError(.notFound, "organisation \(org) not found")
            }
            guard status != "offboarded" else { return }
            try db.execute("UPDATE organizations SET status = 'offboarded' WHERE id = ?", org)
            try db.execute("DELETE FROM sessions WHERE org_id = ?", org)
            try outbox.record(AuditRecord(org: org, actor: actor, action: "organization.offboarded", resource: "organization:\(org)",
                                          outcome: "success"), in: db)
        }
    }

    /// `set` is a fixed SQL fragment chosen by the callers above, never input.
    /// - Parameter endTokens: also void the user's outstanding invitation and reset tokens.
    private func changeUser(_ user: String, org: String, set: String, _ values: [Data] = [], endSessions: Bool, endTokens: Bool = false,
                            action: String, by actor: String) async throws {
        try await database.write { [self] db in
            let changed = try db.execute("UPDATE users SET \(set) WHERE id = ? AND org_id = ? AND status != 'removed'",
                                         bindings: values + [user, org])
            guard changed == 1 else { throw RPCError(.notFound, "user \(user) not found in organisation \(org)") }
            // An organisation always keeps an active admin: the last one cannot be removed,
            // suspended or demoted (the change rolls back).
            let admins = try db.query("SELECT count(*) AS n FROM users WHERE org_id = ? AND role = ? AND status = 'active'",
                                      org, Calltrace_Identity_V1_Role.admin.rawValue)[0].int("n") ?? 0
            guard admins > 0 else {
                throw RPCError(.failedPrecondition, "the organisation's last active admin cannot be removed, suspended or demoted")
            }
            if endSessions { try db.execute("DELETE FROM sessions WHERE user_id = ?", user) }
            if endTokens { try db.execute("DELETE FROM invitations WHERE user_id = ?", user) }
            try outbox.record(AuditRecord(org: org, actor: actor, action: action, resource: "user:\(user)", outcome: "success"), in: db)
        }
    }

    /// Removes a user of `org`; their sessions end at once.
    func removeUser(_ user: String, org: String, by actor: String) async throws {
        // The e-mail's index is replaced by one naming the removed user, so the address can be invited again.
        try await changeUser(user, org: org, set: "status = 'removed', email_index = ?", [Data("removed:\(user)".utf8)],
                             endSessions: true, endTokens: true,
                             action: "user.removed", by: actor)
    }

    func logout(token: String) async throws {
        try await database.write { [self] db in
            // Idempotent: a session already ended, expired or purged is logged out already.
            guard let row = try db.query("SELECT user_id, org_id FROM sessions WHERE token_hash = ?", OpaqueToken.storageHash(token)).first,
                  let user = row.text("user_id"), let org = row.text("org_id")
            else { return }
            try db.execute("DELETE FROM sessions WHERE token_hash = ?", OpaqueToken.storageHash(token))
            try outbox.record(AuditRecord(org: org, actor: "user:\(user)", action: "session.ended", resource: "user:\(user)",
                                          outcome: "success"), in: db)
        }
    }

    /// The principal behind `token`, allowed `permission` in `org`; else UNAUTHENTICATED (no
    /// valid session) or PERMISSION_DENIED (another organisation, or a role without it).
    /// - Parameter permission: nil only checks the session (e.g. to enrol in two-factor), skipping
    ///   the role and the org's two-factor requirement.
    func authorize(token: String, org: String, permission: Calltrace_Identity_V1_Permission?) async throws -> Calltrace_Identity_V1_Principal {
        let now = self.now()
        let tokenHash = OpaqueToken.storageHash(token)
        let row = try await database.read { db in
            try db.query("""
                SELECT s.user_id, s.org_id, s.last_used_at_unix_ms, s.expires_at_unix_ms, s.created_at_unix_ms, u.role, u.status,
                       o.status AS org_status, o.session_idle_seconds, o.session_max_seconds, o.require_two_factor, u.totp_confirmed
                FROM sessions s JOIN users u ON u.id = s.user_id JOIN organizations o ON o.id = s.org_id
                WHERE s.token_hash = ?
                """, tokenHash).first
        }
        // A session ends at its own expiry, or earlier when the organisation shortened its
        // maximum since the login, or after the organisation's idle time.
        guard let row, let user = row.text("user_id"), let sessionOrg = row.text("org_id"),
              let expires = row.int("expires_at_unix_ms"), expires > now,
              (row.int("created_at_unix_ms") ?? 0) == 0
                || (row.int("created_at_unix_ms") ?? 0) + (row.int("session_max_seconds") ?? Int64(Self.defaultMaxSeconds)) * 1000 > now,
              now - (row.int("last_used_at_unix_ms") ?? 0) < (row.int("session_idle_seconds") ?? Int64(Self.defaultIdleSeconds)) * 1000,
              row.text("status") == "active", row.text("org_status") == "active"
        else { throw RPCError(.unauthenticated, "no valid session") }
        guard sessionOrg == org else { throw RPCError(.permissionDenied, "the session does not belong to organisation \(org)") }
        let role = Calltrace_Identity_V1_Role(rawValue: Int(row.int("role") ?? 0)) ?? .unspecified
        if let permission {
            guard row.int("require_two_factor") != 1 || row.int("totp_confirmed") == 1 else {
                throw RPCError(.permissionDenied, "the organisation requires two-factor; enrol first")
            }
            guard RoleTable.permissions(of: role).contains(permission) else {
                throw RPCError(.permissionDenied, "role \(role) lacks \(RoleTable.name(of: permission))")
            }
        }
        // Only an allowed call keeps the session alive; a refused one does not refresh it.
        try await database.write { db in
            _ = try db.execute("UPDATE sessions SET last_used_at_unix_ms = ? WHERE token_hash = ? AND last_used_at_unix_ms < ?",
                               now, tokenHash, now)
        }
        var principal = Calltrace_Identity_V1_Principal()
        principal.orgID = org
        principal.userID = user
        principal.role = role
        return principal
    }

    // MARK: Housekeeping

    /// Deletes what can no longer be used: sessions past their maximum or idle beyond the longest
    /// idle time any organisation may set (a day), failed-login counts outside their window, and
    /// invitation and reset tokens used or expired. Returns the rows removed.
    func purgeExpired() async throws -> Int {
        let now = self.now()
        return try await database.write { db in
            try db.execute("DELETE FROM sessions WHERE expires_at_unix_ms <= ? OR last_used_at_unix_ms <= ?", now, now - 86_400_000)
                + db.execute("DELETE FROM login_failures WHERE window_started_at_unix_ms <= ?", now - Self.failureWindowMS)
                + db.execute("DELETE FROM invitations WHERE redeemed_at_unix_ms IS NOT NULL OR expires_at_unix_ms <= ?", now)
        }
    }

    private func audit(org: String, actor: String, action: String, resource: String, outcome: String) async throws {
        try await database.write { [outbox] db in
            try outbox.record(AuditRecord(org: org, actor: actor, action: action, resource: resource, outcome: outcome), in: db)
        }
    }
}
