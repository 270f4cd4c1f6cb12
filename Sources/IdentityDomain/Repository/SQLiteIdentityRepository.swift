import CallTraceProto
import CallTraceStorage
import Foundation

/// Identity's tables in its own SQLite database: all of identity's SQL is here.
struct SQLiteIdentityRepository: IdentityRepository, SQLiteRepository {
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

    /// What offboarding deleted of an organisation's people, kept so that a repeat of the call
    /// (compliance retrying after a lost answer) reports the same counts for the certificate.
    static let schemaV6 = """
        ALTER TABLE organizations ADD COLUMN offboarding_receipt TEXT NOT NULL DEFAULT '';
        """

    /// Replay protection for two-factor codes, and a session's start (so that shortening an
    /// organisation's maximum session reaches sessions already open).
    static let schemaV3 = """
        ALTER TABLE users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE sessions ADD COLUMN created_at_unix_ms INTEGER NOT NULL DEFAULT 0;
        """

    /// Users' API tokens (issue 30): only a hash of each, the name sealed.
    static let schemaV7 = """
        CREATE TABLE api_tokens (
            id TEXT PRIMARY KEY,
            token_hash BLOB NOT NULL UNIQUE,
            user_id TEXT NOT NULL REFERENCES users(id),
            org_id TEXT NOT NULL REFERENCES organizations(id),
            name BLOB NOT NULL,
            prefix TEXT NOT NULL,
            permissions TEXT NOT NULL,
            created_at_unix_ms INTEGER NOT NULL,
            expires_at_unix_ms INTEGER NOT NULL,
            last_used_at_unix_ms INTEGER NOT NULL DEFAULT 0,
            revoked_at_unix_ms INTEGER
        );
        CREATE INDEX api_tokens_by_org_and_user ON api_tokens (org_id, user_id);
        """

    /// Tokens a gateway keeps for the firm (a webhook's), and the token that made one.
    static let schemaV8 = """
        ALTER TABLE api_tokens ADD COLUMN held_by_gateway TEXT;
        ALTER TABLE api_tokens ADD COLUMN made_by_token_id TEXT;
        CREATE INDEX api_tokens_by_maker ON api_tokens (made_by_token_id) WHERE made_by_token_id IS NOT NULL;
        """

    /// The alerts each user chose (a row: on), and the alerts sent, by the sender's idempotency
    /// key, so a retried Notify sends nothing twice (kept 30 days).
    static let alerts = """
        CREATE TABLE alert_preferences (
            user_id TEXT NOT NULL REFERENCES users(id),
            org_id TEXT NOT NULL,
            kind INTEGER NOT NULL,
            PRIMARY KEY (user_id, kind)
        );
        CREATE INDEX alert_preferences_by_org ON alert_preferences (org_id, kind);
        CREATE TABLE alerts_sent (
            org_id TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            kind INTEGER NOT NULL,
            recipients INTEGER NOT NULL,
            sent_at_unix_ms INTEGER NOT NULL,
            PRIMARY KEY (org_id, idempotency_key)
        );
        CREATE INDEX alerts_sent_by_time ON alerts_sent (sent_at_unix_ms);
        """

    let database: Database

    static func statements(on connection: Connection) -> any IdentityTransaction { Transaction(connection: connection) }

    struct Transaction: IdentityTransaction {
        let connection: Connection
        private var db: Connection { connection }

        /// Permissions (their numbers) as stored: "1,6".
        private static func stored(_ permissions: [Int]) -> String { permissions.sorted().map(String.init).joined(separator: ",") }
        private static func permissions(in row: Row) -> [Int] { (row.text("permissions") ?? "").split(separator: ",").compactMap { Int($0) } }

        /// The columns `account(in:)` reads, of users `u` joined with organizations `o`.
        private static let accountColumns = "u.role, u.status, o.status AS org_status, o.require_two_factor, u.totp_confirmed"
        private static func account(in row: Row) -> AccountState {
            AccountState(role: Int(row.int("role") ?? 0), userStatus: row.text("status") ?? "", orgStatus: row.text("org_status") ?? "",
                         requireTwoFactor: row.int("require_two_factor") == 1, twoFactorConfirmed: row.int("totp_confirmed") == 1)
        }

        // MARK: Organisations

        func insertOrganization(id: String, sealedName: Data, at now: Int64) throws {
            try db.execute("INSERT INTO organizations (id, name, created_at_unix_ms) VALUES (?, ?, ?)", id, sealedName, now)
        }

        func organizationStatus(_ org: String) throws -> String? {
            try db.query("SELECT status FROM organizations WHERE id = ?", org).first?.text("status")
        }

        func setOrganizationStatus(_ org: String, to status: String, from: [String]?) throws -> Bool {
            guard let from else { return try db.execute("UPDATE organizations SET status = ? WHERE id = ?", status, org) == 1 }
            let placeholders = from.map { _ in "?" }.joined(separator: ", ")
            return try db.execute("UPDATE organizations SET status = ? WHERE id = ? AND status IN (\(placeholders))",
                                  bindings: [status, org] + from) == 1
        }

        func allowedClientRanges(of org: String) throws -> String? {
            try db.query("SELECT allowed_client_ranges FROM organizations WHERE id = ?", org).first?.text("allowed_client_ranges")
        }

        func securityPolicy(of org: String) throws -> SecurityPolicy? {
            try db.query("""
                SELECT allowed_client_ranges, session_idle_seconds, session_max_seconds, require_two_factor FROM organizations WHERE id = ?
                """, org).first.map { row in
                SecurityPolicy(ranges: (row.text("allowed_client_ranges") ?? "").split(separator: " ").map(String.init),
                               idleSeconds: Int(row.int("session_idle_seconds") ?? Int64(IdentityRules.defaultIdleSeconds)),
                               maxSeconds: Int(row.int("session_max_seconds") ?? Int64(IdentityRules.defaultMaxSeconds)),
                               requireTwoFactor: row.int("require_two_factor") == 1)
            }
        }

        func setSecurityPolicy(_ org: String, ranges: String, idleSeconds: Int, maxSeconds: Int, requireTwoFactor: Bool) throws -> Bool {
            try db.execute("""
                UPDATE organizations SET allowed_client_ranges = ?, session_idle_seconds = ?, session_max_seconds = ?, require_two_factor = ?
                WHERE id = ?
                """, ranges, idleSeconds, maxSeconds, requireTwoFactor ? 1 : 0, org) == 1
        }

        // MARK: Users

        func userExists(org: String, emailIndex: Data) throws -> Bool {
            try db.query("SELECT 1 AS found FROM users WHERE org_id = ? AND email_index = ?", org, emailIndex).first != nil
        }

        func userExists(_ user: String, org: String) throws -> Bool {
            try db.query("SELECT 1 AS found FROM users WHERE id = ? AND org_id = ?", user, org).first != nil
        }

        func insertUser(_ user: NewUser) throws {
            try db.execute("""
                INSERT INTO users (id, org_id, email, email_index, display_name, role, created_at_unix_ms) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, user.id, user.org, user.sealedEmail, user.emailIndex, user.sealedName, user.role, user.createdAt)
        }

        func activeUser(org: String, emailIndex: Data) throws -> String? {
            try db.query("SELECT id FROM users WHERE org_id = ? AND email_index = ? AND status = 'active'", org, emailIndex)
                .first?.text("id")
        }

        func loginCandidate(org: String, emailIndex: Data) throws -> LoginCandidate? {
            guard let row = try db.query("""
                SELECT u.id, u.role, u.password_hash, u.totp_secret, u.totp_confirmed, u.totp_last_step, o.session_max_seconds
                FROM users u JOIN organizations o ON o.id = u.org_id
                WHERE u.org_id = ? AND u.email_index = ? AND u.status = 'active' AND o.status = 'active'
                """, org, emailIndex).first, let user = row.text("id") else { return nil }
            return LoginCandidate(user: user, role: Int(row.int("role") ?? 0), passwordHash: row.text("password_hash"),
                                  sealedTwoFactorSecret: row.blob("totp_secret"), twoFactorConfirmed: row.int("totp_confirmed") == 1,
                                  lastTwoFactorStep: row.int("totp_last_step") ?? 0,
                                  sessionMaxSeconds: row.int("session_max_seconds") ?? Int64(IdentityRules.defaultMaxSeconds))
        }

        func passwordHash(ofActiveUser user: String, org: String) throws -> String? {
            try db.query("SELECT password_hash FROM users WHERE id = ? AND org_id = ? AND status = 'active'", user, org)
                .first?.text("password_hash")
        }

        func activate(_ user: String, passwordHash: String) throws {
            try db.execute("UPDATE users SET password_hash = ?, status = 'active' WHERE id = ?", passwordHash, user)
        }

        func change(_ user: String, org: String, _ change: UserChange) throws -> Bool {
            let (assignments, values): (String, [any SQLiteBindable]) = switch change {
            case .suspend: ("status = 'suspended'", [])
            case .role(let role): ("role = ?", [role])
            case .resetTwoFactor: ("totp_secret = NULL, totp_confirmed = 0", [])
            case .remove(let freedIndex): ("status = 'removed', email_index = ?", [freedIndex])
            }
            if case .remove = change { try db.execute("DELETE FROM alert_preferences WHERE user_id = ? AND org_id = ?", user, org) }
            return try db.execute("UPDATE users SET \(assignments) WHERE id = ? AND org_id = ? AND status <> 'removed'",
                                  bindings: values + [user, org]) == 1
        }

        func users(org: String, only user: String?) throws -> [UserRecord] {
            try db.query("""
                SELECT id, email, display_name, role, status, totp_confirmed, created_at_unix_ms FROM users
                WHERE org_id = ?\(user == nil ? "" : " AND id = ?") ORDER BY created_at_unix_ms, id
                """, bindings: [org] + (user.map { [$0] } ?? [])).compactMap { row in
                guard let id = row.text("id"), let email = row.blob("email"), let name = row.blob("display_name") else { return nil }
                return UserRecord(id: id, sealedEmail: email, sealedName: name, role: Int(row.int("role") ?? 0), status: row.text("status") ?? "",
                                  twoFactorConfirmed: row.int("totp_confirmed") == 1, createdAt: row.int("created_at_unix_ms") ?? 0)
            }
        }

        func activeAdminCount(org: String) throws -> Int {
            Int(try db.query("SELECT count(*) AS n FROM users WHERE org_id = ? AND role = ? AND status = 'active'",
                             org, Calltrace_Identity_V1_Role.admin.rawValue)[0].int("n") ?? 0)
        }

        // MARK: Two-factor

        func acceptTwoFactorStep(_ step: Int64, user: String) throws -> Bool {
            try db.execute("UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?", step, user, step) == 1
        }

        func setUnconfirmedTwoFactorSecret(_ sealed: Data, user: String, org: String) throws -> Bool {
            try db.execute("UPDATE users SET totp_secret = ? WHERE id = ? AND org_id = ? AND totp_confirmed = 0", sealed, user, org) == 1
        }

        func unconfirmedTwoFactor(user: String, org: String) throws -> (sealedSecret: Data, lastStep: Int64)? {
            guard let row = try db.query("SELECT totp_secret, totp_last_step FROM users WHERE id = ? AND org_id = ? AND totp_confirmed = 0",
                                         user, org).first,
                  let sealed = row.blob("totp_secret") else { return nil }
            return (sealed, row.int("totp_last_step") ?? 0)
        }

        func confirmTwoFactor(user: String, step: Int64) throws {
            try db.execute("UPDATE users SET totp_confirmed = 1, totp_last_step = ? WHERE id = ?", step, user)
        }

        // MARK: Tokens

        func insertToken(hash: Data, user: String, purpose: String, expiresAt: Int64) throws {
            try db.execute("INSERT INTO invitations (token_hash, user_id, purpose, expires_at_unix_ms) VALUES (?, ?, ?, ?)",
                           hash, user, purpose, expiresAt)
        }

        func redeemableToken(hash: Data, purpose: String, userStatus: String, now: Int64) throws -> (user: String, org: String)? {
            guard let row = try db.query("""
                SELECT i.user_id, u.org_id FROM invitations i JOIN users u ON u.id = i.user_id
                JOIN organizations o ON o.id = u.org_id
                WHERE i.token_hash = ? AND i.purpose = ? AND i.redeemed_at_unix_ms IS NULL AND i.expires_at_unix_ms > ?
                  AND u.status = ? AND o.status = 'active'
                """, hash, purpose, now, userStatus).first,
                  let user = row.text("user_id"), let org = row.text("org_id") else { return nil }
            return (user, org)
        }

        func markTokensUsed(user: String, purpose: String, at now: Int64) throws {
            try db.execute("UPDATE invitations SET redeemed_at_unix_ms = ? WHERE user_id = ? AND purpose = ? AND redeemed_at_unix_ms IS NULL",
                           now, user, purpose)
        }

        func deleteTokens(user: String) throws {
            try db.execute("DELETE FROM invitations WHERE user_id = ?", user)
        }

        // MARK: Sessions

        func insertSession(tokenHash: Data, user: String, org: String, at now: Int64, expiresAt: Int64) throws {
            try db.execute("""
                INSERT INTO sessions (token_hash, user_id, org_id, last_used_at_unix_ms, expires_at_unix_ms, created_at_unix_ms)
                VALUES (?, ?, ?, ?, ?, ?)
                """, tokenHash, user, org, now, expiresAt, now)
        }

        func session(tokenHash: Data) throws -> SessionRecord? {
            guard let row = try db.query("""
                SELECT s.user_id, s.org_id, s.last_used_at_unix_ms, s.expires_at_unix_ms, s.created_at_unix_ms,
                       o.session_idle_seconds, o.session_max_seconds, \(Self.accountColumns)
                FROM sessions s JOIN users u ON u.id = s.user_id JOIN organizations o ON o.id = s.org_id
                WHERE s.token_hash = ?
                """, tokenHash).first,
                  let user = row.text("user_id"), let org = row.text("org_id") else { return nil }
            return SessionRecord(user: user, org: org, lastUsedAt: row.int("last_used_at_unix_ms") ?? 0,
                                 expiresAt: row.int("expires_at_unix_ms") ?? 0, createdAt: row.int("created_at_unix_ms") ?? 0,
                                 idleSeconds: row.int("session_idle_seconds") ?? Int64(IdentityRules.defaultIdleSeconds),
                                 maxSeconds: row.int("session_max_seconds") ?? Int64(IdentityRules.defaultMaxSeconds),
                                 account: Self.account(in: row))
        }

        func touchSession(tokenHash: Data, at now: Int64) throws {
            try db.execute("UPDATE sessions SET last_used_at_unix_ms = ? WHERE token_hash = ? AND last_used_at_unix_ms < ?", now, tokenHash, now)
        }

        func deleteSession(tokenHash: Data) throws {
            try db.execute("DELETE FROM sessions WHERE token_hash = ?", tokenHash)
        }

        @discardableResult
        func deleteSessions(user: String) throws -> Int {
            try db.execute("DELETE FROM sessions WHERE user_id = ?", user)
        }

        /// The receipt is "users invitations sessions grants api-tokens" (the last missing in one
        /// written before API tokens).
        func offboardingReceipt(org: String) throws -> OffboardedPeople {
            let text = try db.query("SELECT offboarding_receipt FROM organizations WHERE id = ?", org).first?.text("offboarding_receipt") ?? ""
            let counts = text.split(separator: " ").compactMap { Int($0) }
            guard counts.count == 4 || counts.count == 5 else { return OffboardedPeople() }
            return OffboardedPeople(users: counts[0], invitations: counts[1], sessions: counts[2], supportGrants: counts[3],
                                    apiTokens: counts.count == 5 ? counts[4] : 0)
        }

        func setOffboardingReceipt(org: String, _ people: OffboardedPeople) throws {
            try db.execute("UPDATE organizations SET offboarding_receipt = ? WHERE id = ?",
                           "\(people.users) \(people.invitations) \(people.sessions) \(people.supportGrants) \(people.apiTokens)", org)
        }

        func offboardedWithPeople() throws -> [String] {
            try db.query("""
                SELECT id FROM organizations o WHERE status = 'offboarded'
                AND (EXISTS (SELECT 1 FROM users u WHERE u.org_id = o.id) OR EXISTS (SELECT 1 FROM support_grants g WHERE g.org_id = o.id))
                """).compactMap { $0.text("id") }
        }

        func deletePeople(org: String) throws -> OffboardedPeople {
            var deleted = OffboardedPeople()
            deleted.sessions = try db.execute("DELETE FROM sessions WHERE org_id = ?", org)
            deleted.apiTokens = try db.execute("DELETE FROM api_tokens WHERE org_id = ?", org)
            deleted.invitations = try db.execute("DELETE FROM invitations WHERE user_id IN (SELECT id FROM users WHERE org_id = ?)", org)
            deleted.supportGrants = try db.execute("DELETE FROM support_grants WHERE org_id = ?", org)
            try db.execute("DELETE FROM alert_preferences WHERE org_id = ?", org)
            try db.execute("DELETE FROM alerts_sent WHERE org_id = ?", org)
            deleted.users = try db.execute("DELETE FROM users WHERE org_id = ?", org)
            return deleted
        }

        func deleteSessions(org: String) throws {
            try db.execute("DELETE FROM sessions WHERE org_id = ?", org)
        }

        // MARK: API tokens

        private static let apiTokenColumns = """
            t.id, t.user_id, t.org_id, t.name, t.prefix, t.permissions, t.created_at_unix_ms, t.expires_at_unix_ms, t.last_used_at_unix_ms,
            t.revoked_at_unix_ms, t.held_by_gateway, t.made_by_token_id
            """

        private static func apiToken(in row: Row) -> ApiTokenRecord? {
            guard let id = row.text("id"), let user = row.text("user_id"), let org = row.text("org_id"), let name = row.blob("name") else { return nil }
            return ApiTokenRecord(id: id, user: user, org: org, sealedName: name, prefix: row.text("prefix") ?? "", permissions: permissions(in: row),
                                  createdAt: row.int("created_at_unix_ms") ?? 0, expiresAt: row.int("expires_at_unix_ms") ?? 0,
                                  lastUsedAt: row.int("last_used_at_unix_ms") ?? 0, revokedAt: row.int("revoked_at_unix_ms"),
                                  heldBy: row.text("held_by_gateway"), madeBy: row.text("made_by_token_id"))
        }

        func insertApiToken(_ token: ApiTokenRecord, hash: Data) throws {
            try db.execute("""
                INSERT INTO api_tokens (id, token_hash, user_id, org_id, name, prefix, permissions, created_at_unix_ms, expires_at_unix_ms,
                                        held_by_gateway, made_by_token_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, token.id, hash, token.user, token.org, token.sealedName, token.prefix, Self.stored(token.permissions), token.createdAt,
                           token.expiresAt, token.heldBy, token.madeBy)
        }

        func apiTokenHolder(hash: Data) throws -> ApiTokenHolder? {
            guard let row = try db.query("""
                SELECT \(Self.apiTokenColumns), \(Self.accountColumns)
                FROM api_tokens t JOIN users u ON u.id = t.user_id JOIN organizations o ON o.id = t.org_id
                WHERE t.token_hash = ?
                """, hash).first, let token = Self.apiToken(in: row) else { return nil }
            return ApiTokenHolder(token: token, account: Self.account(in: row))
        }

        func apiToken(_ id: String, org: String) throws -> ApiTokenRecord? {
            try db.query("SELECT \(Self.apiTokenColumns) FROM api_tokens t WHERE t.id = ? AND t.org_id = ?", id, org).first.flatMap(Self.apiToken(in:))
        }

        func apiTokens(org: String, user: String?) throws -> [ApiTokenRecord] {
            try db.query("""
                SELECT \(Self.apiTokenColumns) FROM api_tokens t
                WHERE t.org_id = ?\(user == nil ? "" : " AND t.user_id = ?") ORDER BY t.created_at_unix_ms DESC, t.id
                """, bindings: [org] + (user.map { [$0] } ?? [])).compactMap(Self.apiToken(in:))
        }

        func revokeApiToken(_ id: String, at now: Int64) throws -> Bool {
            try db.execute("UPDATE api_tokens SET revoked_at_unix_ms = ? WHERE id = ? AND revoked_at_unix_ms IS NULL", now, id) == 1
        }

        func revokeApiTokens(user: String, at now: Int64) throws -> [String] {
            let live = try db.query("SELECT id FROM api_tokens WHERE user_id = ? AND revoked_at_unix_ms IS NULL AND expires_at_unix_ms > ? ORDER BY id",
                                    user, now).compactMap { $0.text("id") }
            for id in live { _ = try revokeApiToken(id, at: now) }
            return live
        }

        func revokeApiTokens(madeBy id: String, at now: Int64) throws -> [String] {
            let live = try db.query("SELECT id FROM api_tokens WHERE made_by_token_id = ? AND revoked_at_unix_ms IS NULL ORDER BY id", id)
                .compactMap { $0.text("id") }
            for made in live { _ = try revokeApiToken(made, at: now) }
            return live
        }

        func touchApiToken(hash: Data, at now: Int64, unlessUsedSince since: Int64) throws {
            try db.execute("UPDATE api_tokens SET last_used_at_unix_ms = ? WHERE token_hash = ? AND last_used_at_unix_ms < ?", now, hash, since)
        }

        // MARK: Lockout

        func reserveLoginAttempts(_ subjects: [LoginAttempts.Subject], now: Int64, window: Int64) throws -> Bool {
            let since = now - window
            for subject in subjects {
                if let row = try db.query("SELECT failures, window_started_at_unix_ms FROM login_failures WHERE subject = ?", subject.key).first,
                   (row.int("window_started_at_unix_ms") ?? 0) > since, Int(row.int("failures") ?? 0) >= subject.limit {
                    return false
                }
            }
            for subject in subjects {
                let counted = try db.execute("""
                    UPDATE login_failures SET
                        failures = CASE WHEN window_started_at_unix_ms > ? THEN failures + 1 ELSE 1 END,
                        window_started_at_unix_ms = CASE WHEN window_started_at_unix_ms > ? THEN window_started_at_unix_ms ELSE ? END
                    WHERE subject = ?
                    """, since, since, now, subject.key)
                if counted == 0 {
                    try db.execute("INSERT INTO login_failures (subject, failures, window_started_at_unix_ms) VALUES (?, 1, ?)",
                                   subject.key, now)
                }
            }
            return true
        }

        func loginSucceeded(account: LoginAttempts.Subject, address: LoginAttempts.Subject) throws {
            try db.execute("DELETE FROM login_failures WHERE subject = ?", account.key)
            try db.execute("UPDATE login_failures SET failures = failures - 1 WHERE subject = ? AND failures > 0", address.key)
        }

        // MARK: Support grants

        func insertGrant(_ grant: NewGrant) throws {
            try db.execute("""
                INSERT INTO support_grants (id, org_id, permissions, reason, created_by, created_at_unix_ms, expires_at_unix_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, grant.id, grant.org, Self.stored(grant.permissions), grant.sealedReason,
                           grant.createdBy, grant.createdAt, grant.expiresAt)
        }

        func revokeGrant(_ id: String, org: String, at now: Int64) throws -> Bool {
            try db.execute("UPDATE support_grants SET revoked_at_unix_ms = ? WHERE id = ? AND org_id = ? AND revoked_at_unix_ms IS NULL",
                           now, id, org) == 1
        }

        func activeGrants(org: String, now: Int64) throws -> [ActiveGrant] {
            try db.query("""
                SELECT id, permissions, expires_at_unix_ms FROM support_grants
                WHERE org_id = ? AND revoked_at_unix_ms IS NULL AND expires_at_unix_ms > ? ORDER BY expires_at_unix_ms DESC
                """, org, now).compactMap { row in
                guard let id = row.text("id") else { return nil }
                return ActiveGrant(id: id, permissions: Self.permissions(in: row), expiresAt: row.int("expires_at_unix_ms") ?? 0)
            }
        }

        func grants(org: String) throws -> [GrantRecord] {
            try db.query("""
                SELECT id, permissions, reason, created_by, created_at_unix_ms, expires_at_unix_ms, revoked_at_unix_ms FROM support_grants
                WHERE org_id = ? ORDER BY created_at_unix_ms DESC, id
                """, org).compactMap { row in
                guard let id = row.text("id"), let reason = row.blob("reason") else { return nil }
                return GrantRecord(id: id, permissions: Self.permissions(in: row), sealedReason: reason,
                                   createdBy: row.text("created_by") ?? "", createdAt: row.int("created_at_unix_ms") ?? 0,
                                   expiresAt: row.int("expires_at_unix_ms") ?? 0, revokedAt: row.int("revoked_at_unix_ms"))
            }
        }

        func organizations(only org: String?) throws -> [OrganizationRecord] {
            try db.query("SELECT id, name, status, created_at_unix_ms FROM organizations\(org == nil ? "" : " WHERE id = ?") ORDER BY created_at_unix_ms, id",
                         bindings: org.map { [$0] } ?? []).compactMap { row in
                guard let id = row.text("id"), let name = row.blob("name") else { return nil }
                return OrganizationRecord(id: id, sealedName: name, status: row.text("status") ?? "", createdAt: row.int("created_at_unix_ms") ?? 0)
            }
        }

        func takeNewlyExpiredGrants(org: String, now: Int64) throws -> [String] {
            let expired = try db.query("""
                SELECT id FROM support_grants
                WHERE org_id = ? AND revoked_at_unix_ms IS NULL AND expires_at_unix_ms <= ? AND expiry_recorded = 0
                """, org, now).compactMap { $0.text("id") }
            for id in expired { try db.execute("UPDATE support_grants SET expiry_recorded = 1 WHERE id = ?", id) }
            return expired
        }

        // MARK: Housekeeping

        // MARK: Alerts

        func alertKinds(user: String, org: String) throws -> [Int] {
            try db.query("SELECT kind FROM alert_preferences WHERE user_id = ? AND org_id = ? ORDER BY kind", user, org).compactMap { $0.int("kind").map(Int.init) }
        }

        func setAlertKinds(_ kinds: [Int], user: String, org: String) throws {
            try db.execute("DELETE FROM alert_preferences WHERE user_id = ? AND org_id = ?", user, org)
            for kind in Set(kinds) {
                try db.execute("INSERT INTO alert_preferences (user_id, org_id, kind) VALUES (?, ?, ?)", user, org, kind)
            }
        }

        func alertRecipients(org: String, kind: Int) throws -> [UserRecord] {
            try db.query("""
                SELECT u.id, u.email, u.display_name, u.role, u.status, u.totp_confirmed, u.created_at_unix_ms
                FROM alert_preferences p JOIN users u ON u.id = p.user_id
                WHERE p.org_id = ? AND p.kind = ? AND u.org_id = ? AND u.status = 'active' ORDER BY u.created_at_unix_ms, u.id
                """, org, kind, org).compactMap { row in
                guard let id = row.text("id"), let email = row.blob("email"), let name = row.blob("display_name") else { return nil }
                return UserRecord(id: id, sealedEmail: email, sealedName: name, role: Int(row.int("role") ?? 0), status: row.text("status") ?? "",
                                  twoFactorConfirmed: row.int("totp_confirmed") == 1, createdAt: row.int("created_at_unix_ms") ?? 0)
            }
        }

        func alertSent(org: String, key: String) throws -> Int? {
            try db.query("SELECT recipients FROM alerts_sent WHERE org_id = ? AND idempotency_key = ?", org, key).first?.int("recipients").map(Int.init)
        }

        func recordAlertSent(org: String, key: String, kind: Int, recipients: Int, at now: Int64) throws {
            try db.execute("INSERT INTO alerts_sent (org_id, idempotency_key, kind, recipients, sent_at_unix_ms) VALUES (?, ?, ?, ?, ?)",
                           org, key, kind, recipients, now)
        }

        func purge(now: Int64, idleBefore: Int64, failuresBefore: Int64, apiTokensEndedBefore: Int64, alertsSentBefore: Int64) throws -> Int {
            try db.execute("DELETE FROM alerts_sent WHERE sent_at_unix_ms <= ?", alertsSentBefore)
                + db.execute("DELETE FROM sessions WHERE expires_at_unix_ms <= ? OR last_used_at_unix_ms <= ?", now, idleBefore)
                + db.execute("DELETE FROM login_failures WHERE window_started_at_unix_ms <= ?", failuresBefore)
                + db.execute("DELETE FROM invitations WHERE redeemed_at_unix_ms IS NOT NULL OR expires_at_unix_ms <= ?", now)
                + db.execute("DELETE FROM api_tokens WHERE expires_at_unix_ms <= ? OR revoked_at_unix_ms <= ?", apiTokensEndedBefore, apiTokensEndedBefore)
        }
    }
}
