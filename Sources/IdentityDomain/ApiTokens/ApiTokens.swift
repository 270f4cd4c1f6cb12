import CallTraceKeys
import CallTraceProto
import CallTraceServiceHost
import Foundation

/// API tokens: a user's own bearer tokens for their tools and CRM integrations (the web
/// gateway's `/api/v1`). A token acts for its user in its organisation, with only the
/// permissions both its scopes and the user's current role have; it never opens a session and
/// never makes a credential call. Only its hash is stored, its name sealed.
extension IdentityRules {
    typealias Permission = Calltrace_Identity_V1_Permission

    /// A token lasts 90 days unless asked otherwise, and at most 365.
    static let defaultApiTokenSeconds: UInt32 = 90 * 86_400
    static let maxApiTokenSeconds: UInt32 = 365 * 86_400
    /// A token's last use is written at most once a minute.
    static let apiTokenUseResolutionMS: Int64 = 60_000
    /// Tokens that expired or were revoked this long ago leave the listing (hourly housekeeping).
    static let endedApiTokenKeptMS: Int64 = 90 * 86_400_000

    /// A new token for the signed-in `owner`; the secret is in this answer only.
    ///
    /// Refused (PERMISSION_DENIED) to an API token (only a session makes tokens), to a user
    /// who has not met the organisation's two-factor requirement, and for a permission the
    /// user's role does not have.
    func createApiToken(_ request: ApiTokenRequest, for owner: Bearer) async throws -> (secret: String, token: ApiToken) {
        guard owner.credential == .session else { throw Self.sessionNeeded }
        guard owner.twoFactorSatisfied else { throw Self.twoFactorNeeded }
        let name = try DomainText.line(request.name, "name", max: 100, required: true)
        let scopes = Permission.allCases.filter { $0 != .unspecified && request.permissions.contains($0) }
        guard !scopes.isEmpty else { throw DomainError.invalid("an API token names at least one permission") }
        let beyond = scopes.filter { !RoleTable.permissions(of: owner.role).contains($0) }
        guard beyond.isEmpty else {
            throw DomainError.notAllowed("role \(owner.role) lacks \(beyond.map(RoleTable.name(of:)).joined(separator: ", ")): "
                                         + "an API token gets only permissions its user has")
        }
        let seconds = request.durationSeconds == 0 ? Self.defaultApiTokenSeconds : request.durationSeconds
        guard seconds <= Self.maxApiTokenSeconds else { throw DomainError.invalid("an API token lasts at most 365 days") }

        let secret = try ApiTokenSecret.generate()
        let id = Self.newID("api")
        let now = self.now()
        let record = ApiTokenRecord(id: id, user: owner.user, org: owner.org,
                                    sealedName: try keys.seal(Data(name.utf8), org: owner.org, table: "api_tokens", column: "name", row: id),
                                    prefix: ApiTokenSecret.shownPrefix(of: secret), permissions: scopes.map(\.rawValue),
                                    createdAt: now, expiresAt: now + Int64(seconds) * 1000, lastUsedAt: 0, revokedAt: nil)
        try await repository.write { [self] tx in
            try tx.insertApiToken(record, hash: OpaqueToken.storageHash(secret))
            try audit(org: owner.org, actor: owner.actor, action: .apiTokenCreated, resource: .apiToken(id),
                      detail: "permissions: \(scopes.map(RoleTable.name(of:)).joined(separator: ", ")); lasts \(seconds) s", in: tx)
        }
        return (secret, ApiToken(record: record, name: name))
    }

    /// The caller's own tokens, newest first; with `allUsers`, every user's (users.manage).
    func apiTokens(for caller: Bearer, allUsers: Bool) async throws -> [ApiToken] {
        if allUsers { try check(caller, may: .usersManage) }
        let records = try await repository.read { [caller] tx in try tx.apiTokens(org: caller.org, user: allUsers ? nil : caller.user) }
        return try records.map { record in
            let name = try keys.open(record.sealedName, org: record.org, table: "api_tokens", column: "name", row: record.id)
            return ApiToken(record: record, name: String(decoding: name, as: UTF8.self))
        }
    }

    /// Revokes a token of the caller's, or anyone's with users.manage; idempotent (a revoked
    /// token answers OK, audited once).
    func revokeApiToken(_ id: String, by caller: Bearer) async throws {
        guard !id.isEmpty else { throw DomainError.invalid("name the API token") }
        let now = self.now()
        let managesUsers = caller.may(.usersManage)
        try await repository.write { [self] tx in
            guard let token = try tx.apiToken(id, org: caller.org) else {
                throw DomainError.notFound("API token \(id) not found in organisation \(caller.org)")
            }
            guard token.user == caller.user || managesUsers else {
                throw DomainError.notAllowed("only the token's user, or a user with users.manage, may revoke it")
            }
            guard try tx.revokeApiToken(id, at: now) else { return }
            try audit(org: caller.org, actor: caller.actor, action: .apiTokenRevoked, resource: .apiToken(id), in: tx)
        }
    }

    /// Revokes every live token of a user (removed), each audited, in the caller's transaction.
    func revokeApiTokens(of user: String, org: String, by actor: String, in tx: any IdentityTransaction) throws {
        for id in try tx.revokeApiTokens(user: user, at: now()) {
            try audit(org: org, actor: actor, action: .apiTokenRevoked, resource: .apiToken(id), detail: "user removed", in: tx)
        }
    }

    /// The bearer of a known API token, checked as a session is (`bearer(_:org:may:accepting:)`):
    /// the same answers, and the same two-factor requirement, for every call.
    func apiTokenBearer(_ held: ApiTokenHolder, hash: Data, org: String, may permission: Permission?, accepting: Bearer.Accepted,
                        now: Int64) async throws -> Bearer {
        let token = held.token
        guard token.revokedAt == nil, token.expiresAt > now, held.account.isActive else { throw Self.noValidCredential }
        guard token.org == org else { throw Self.otherOrganisation(org) }
        guard accepting == .sessionOrApiToken else { throw Self.sessionNeeded }
        let bearer = Bearer(org: org, user: token.user, role: Calltrace_Identity_V1_Role(rawValue: held.account.role) ?? .unspecified,
                            credential: .apiToken(id: token.id, scopes: Set(token.permissions.compactMap(Permission.init(rawValue:)))),
                            twoFactorSatisfied: held.account.twoFactorSatisfied)
        if let permission {
            try check(bearer, may: permission)
        } else if !bearer.twoFactorSatisfied {
            throw Self.twoFactorNeeded
        }
        // Last use to the minute: at most one write a minute per token, not one per call.
        let since = now - Self.apiTokenUseResolutionMS
        if token.lastUsedAt < since {
            try await repository.write { tx in try tx.touchApiToken(hash: hash, at: now, unlessUsedSince: since) }
        }
        return bearer
    }

    static let sessionNeeded = DomainError.notAllowed("this call needs a signed-in session; an API token cannot make it")
}
