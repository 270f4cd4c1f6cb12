import CallTraceStorage
import Foundation

/// Identity's storage, behind a protocol: the rules (`IdentityRules`) decide, a repository only
/// reads and writes. Each `read` or `write` is one transaction; everything its body does commits
/// together or not at all — audit records and jobs included, which the service host writes
/// through `connection`.
///
/// The SQLite implementation (`SQLiteIdentityRepository`) keeps to SQL that PostgreSQL also
/// accepts — ids chosen by the service, times as integer UTC milliseconds, no SQLite-only
/// functions or upserts — so a PostgreSQL repository can be added without touching the rules.
protocol IdentityRepository: Sendable {
    func read<T: Sendable>(_ body: @escaping @Sendable (any IdentityTransaction) throws -> T) async throws -> T
    func write<T: Sendable>(_ body: @escaping @Sendable (any IdentityTransaction) throws -> T) async throws -> T
}

/// The statements identity runs, inside one transaction. Sealed columns arrive sealed: a
/// repository never sees an e-mail, a name or a secret in clear, nor a token (only its hash).
protocol IdentityTransaction {
    /// For the service host's own tables in the same transaction (audit outbox, jobs).
    var connection: Connection { get }

    // Organisations
    func insertOrganization(id: String, sealedName: Data, at now: Int64) throws
    func organizationStatus(_ org: String) throws -> String?
    /// Moves `org` to `status` when it is in one of `from` (any state when `from` is nil);
    /// false when it is not there or not in such a state.
    func setOrganizationStatus(_ org: String, to status: String, from: [String]?) throws -> Bool
    /// Deletes the organisation's people: sessions, API tokens, invitation and reset tokens,
    /// support grants and users (names, e-mails, password hashes, two-factor secrets). The organisation's row
    /// stays, offboarded, its sealed name unreadable once its key is shredded.
    func deletePeople(org: String) throws -> OffboardedPeople
    /// What offboarding deleted so far (none before it ran), and its record.
    func offboardingReceipt(org: String) throws -> OffboardedPeople
    func setOffboardingReceipt(org: String, _ people: OffboardedPeople) throws
    /// Offboarded organisations that still have users or support grants (offboarded before
    /// offboarding deleted them).
    func offboardedWithPeople() throws -> [String]
    func allowedClientRanges(of org: String) throws -> String?
    func setSecurityPolicy(_ org: String, ranges: String, idleSeconds: Int, maxSeconds: Int, requireTwoFactor: Bool) throws -> Bool
    func securityPolicy(of org: String) throws -> SecurityPolicy?

    // Users
    func userExists(org: String, emailIndex: Data) throws -> Bool
    func userExists(_ user: String, org: String) throws -> Bool
    func insertUser(_ user: NewUser) throws
    func activeUser(org: String, emailIndex: Data) throws -> String?
    func loginCandidate(org: String, emailIndex: Data) throws -> LoginCandidate?
    func passwordHash(ofActiveUser user: String, org: String) throws -> String?
    func activate(_ user: String, passwordHash: String) throws
    /// Applies `change` to a user of `org` who is not removed; false when there is none.
    func change(_ user: String, org: String, _ change: UserChange) throws -> Bool
    func activeAdminCount(org: String) throws -> Int
    /// The organisation's users, oldest first (`user` alone: that one).
    func users(org: String, only user: String?) throws -> [UserRecord]

    // Two-factor
    /// Records `step` as the last two-factor step used, if it comes after it; false otherwise.
    func acceptTwoFactorStep(_ step: Int64, user: String) throws -> Bool
    /// Stores a new secret for a user not yet confirmed; false when confirmed already.
    func setUnconfirmedTwoFactorSecret(_ sealed: Data, user: String, org: String) throws -> Bool
    func unconfirmedTwoFactor(user: String, org: String) throws -> (sealedSecret: Data, lastStep: Int64)?
    func confirmTwoFactor(user: String, step: Int64) throws

    // Invitation and reset tokens (by hash)
    func insertToken(hash: Data, user: String, purpose: String, expiresAt: Int64) throws
    /// The user and org of a token of `purpose` that is unused, unexpired, whose user is in
    /// `userStatus` and whose organisation is active.
    func redeemableToken(hash: Data, purpose: String, userStatus: String, now: Int64) throws -> (user: String, org: String)?
    func markTokensUsed(user: String, purpose: String, at now: Int64) throws
    func deleteTokens(user: String) throws

    // Sessions
    func insertSession(tokenHash: Data, user: String, org: String, at now: Int64, expiresAt: Int64) throws
    func session(tokenHash: Data) throws -> SessionRecord?
    func touchSession(tokenHash: Data, at now: Int64) throws
    func deleteSession(tokenHash: Data) throws
    @discardableResult func deleteSessions(user: String) throws -> Int
    func deleteSessions(org: String) throws

    // API tokens (by hash)
    func insertApiToken(_ token: ApiTokenRecord, hash: Data) throws
    /// The token with this hash, whatever its state, with its user's and organisation's.
    func apiTokenHolder(hash: Data) throws -> ApiTokenHolder?
    func apiToken(_ id: String, org: String) throws -> ApiTokenRecord?
    /// The organisation's tokens (`user`: that user's only), newest first.
    func apiTokens(org: String, user: String?) throws -> [ApiTokenRecord]
    /// False when it was revoked already.
    func revokeApiToken(_ id: String, at now: Int64) throws -> Bool
    /// Revokes every token of `user` not yet revoked or expired; returns their ids.
    func revokeApiTokens(user: String, at now: Int64) throws -> [String]
    /// Revokes every live token the token `id` made; returns their ids.
    func revokeApiTokens(madeBy id: String, at now: Int64) throws -> [String]
    /// Records a use at `now` unless one was recorded since `since`.
    func touchApiToken(hash: Data, at now: Int64, unlessUsedSince since: Int64) throws

    // Lockout
    /// Counts one failed-login attempt for every subject and returns true; or, when any
    /// subject already reached its limit within the window, counts nothing and returns false.
    func reserveLoginAttempts(_ subjects: [LoginAttempts.Subject], now: Int64, window: Int64) throws -> Bool
    /// After a successful login: the account starts afresh; the address gets its attempt back.
    func loginSucceeded(account: LoginAttempts.Subject, address: LoginAttempts.Subject) throws

    // Support grants
    func insertGrant(_ grant: NewGrant) throws
    func revokeGrant(_ id: String, org: String, at now: Int64) throws -> Bool
    func activeGrants(org: String, now: Int64) throws -> [ActiveGrant]
    /// Every grant of the organisation, newest first.
    func grants(org: String) throws -> [GrantRecord]
    /// Every organisation, oldest first (`only`: that one).
    func organizations(only org: String?) throws -> [OrganizationRecord]
    /// Grants that ran out and whose expiry is not yet recorded; marks them recorded.
    func takeNewlyExpiredGrants(org: String, now: Int64) throws -> [String]

    // Alerts
    /// The alert kinds (their numbers) the user chose.
    func alertKinds(user: String, org: String) throws -> [Int]
    /// Replaces the user's choices.
    func setAlertKinds(_ kinds: [Int], user: String, org: String) throws
    /// The active users of `org` who chose `kind`, oldest first (whatever their role: the rules check it).
    func alertRecipients(org: String, kind: Int) throws -> [UserRecord]
    /// How many an alert with this key was sent to, when it was sent.
    func alertSent(org: String, key: String) throws -> Int?
    func recordAlertSent(org: String, key: String, kind: Int, recipients: Int, at now: Int64) throws

    // Housekeeping
    /// Deletes sessions past their maximum or idle since `idleBefore`, failed-login counts
    /// whose window started before `failuresBefore`, invitation and reset tokens used or expired,
    /// API tokens that expired or were revoked before `apiTokensEndedBefore`, and the record of
    /// alerts sent before `alertsSentBefore`.
    func purge(now: Int64, idleBefore: Int64, failuresBefore: Int64, apiTokensEndedBefore: Int64, alertsSentBefore: Int64) throws -> Int
}

/// A user as first stored: invited, sealed e-mail and name, the e-mail's blind index.
struct NewUser {
    let id: String
    let org: String
    let sealedEmail: Data
    let emailIndex: Data
    let sealedName: Data
    let role: Int
    let createdAt: Int64
}

/// What a login needs of an active user of an active organisation.
struct LoginCandidate: Sendable {
    let user: String
    let role: Int
    let passwordHash: String?
    let sealedTwoFactorSecret: Data?
    let twoFactorConfirmed: Bool
    let lastTwoFactorStep: Int64
    let sessionMaxSeconds: Int64
}

/// What a bearer token's checks need of its user and organisation, as they are now.
struct AccountState: Sendable {
    let role: Int
    let userStatus: String
    let orgStatus: String
    let requireTwoFactor: Bool
    let twoFactorConfirmed: Bool

    /// An active user of an active organisation.
    var isActive: Bool { userStatus == "active" && orgStatus == "active" }
    /// The organisation's two-factor requirement is met (or there is none).
    var twoFactorSatisfied: Bool { !requireTwoFactor || twoFactorConfirmed }
}

/// A session with its user's and organisation's state.
struct SessionRecord: Sendable {
    let user: String
    let org: String
    let lastUsedAt: Int64
    let expiresAt: Int64
    /// 0 for a session older than the column.
    let createdAt: Int64
    let idleSeconds: Int64
    let maxSeconds: Int64
    let account: AccountState
}

/// An API token as stored: its name sealed; its secret nowhere (only its hash, which stays in
/// the repository).
struct ApiTokenRecord: Sendable {
    let id: String
    let user: String
    let org: String
    let sealedName: Data
    /// "ctk_" and the next 8 characters of the secret.
    let prefix: String
    let permissions: [Int]
    let createdAt: Int64
    let expiresAt: Int64
    /// 0 when never used.
    let lastUsedAt: Int64
    let revokedAt: Int64?
    /// The gateway that keeps it for the firm (a webhook's); nil for a person's own.
    let heldBy: String?
    /// The API token that made it, when one did.
    let madeBy: String?
}

/// An API token with its user's and organisation's state.
struct ApiTokenHolder: Sendable {
    let token: ApiTokenRecord
    let account: AccountState
}

/// The changes an admin makes to a user.
enum UserChange {
    case suspend
    case role(Int)
    case resetTwoFactor
    /// Removed; the e-mail's index is replaced by `freedIndex` so the address can be invited again.
    case remove(freedIndex: Data)
}

struct NewGrant {
    let id: String
    let org: String
    let permissions: [Int]
    let sealedReason: Data
    let createdBy: String
    let createdAt: Int64
    let expiresAt: Int64
}

struct ActiveGrant: Sendable {
    let id: String
    let permissions: [Int]
    let expiresAt: Int64
}

/// What offboarding deleted of an organisation's people, for the deletion certificate.
struct OffboardedPeople: Sendable, Equatable {
    var users = 0
    var invitations = 0
    var sessions = 0
    var supportGrants = 0
    var apiTokens = 0

    static func + (a: OffboardedPeople, b: OffboardedPeople) -> OffboardedPeople {
        OffboardedPeople(users: a.users + b.users, invitations: a.invitations + b.invitations, sessions: a.sessions + b.sessions,
                         supportGrants: a.supportGrants + b.supportGrants, apiTokens: a.apiTokens + b.apiTokens)
    }
}

/// An organisation's security policy, as stored.
struct SecurityPolicy: Sendable, Equatable {
    var ranges: [String]
    var idleSeconds: Int
    var maxSeconds: Int
    var requireTwoFactor: Bool

    /// What `changed` changed of this policy, "field: old -> new" for each field, for the audit
    /// event (ranges and durations: no secret in them).
    func changes(to changed: SecurityPolicy) -> String {
        func described(_ list: [String]) -> String { list.isEmpty ? "(any address)" : list.joined(separator: " ") }
        var lines: [String] = []
        if ranges != changed.ranges { lines.append("allowed_client_ranges: \(described(ranges)) -> \(described(changed.ranges))") }
        if idleSeconds != changed.idleSeconds { lines.append("session_idle_seconds: \(idleSeconds) -> \(changed.idleSeconds)") }
        if maxSeconds != changed.maxSeconds { lines.append("session_max_seconds: \(maxSeconds) -> \(changed.maxSeconds)") }
        if requireTwoFactor != changed.requireTwoFactor { lines.append("require_two_factor: \(requireTwoFactor) -> \(changed.requireTwoFactor)") }
        return lines.isEmpty ? "no change" : lines.joined(separator: "; ")
    }
}

/// A user as stored: name and e-mail sealed.
struct UserRecord: Sendable {
    let id: String
    let sealedEmail: Data
    let sealedName: Data
    let role: Int
    let status: String
    let twoFactorConfirmed: Bool
    let createdAt: Int64
}

/// A support grant as stored: the reason sealed.
struct GrantRecord: Sendable {
    let id: String
    let permissions: [Int]
    let sealedReason: Data
    let createdBy: String
    let createdAt: Int64
    let expiresAt: Int64
    let revokedAt: Int64?
}

/// An organisation as stored: the name sealed.
struct OrganizationRecord: Sendable {
    let id: String
    let sealedName: Data
    let status: String
    let createdAt: Int64
}
