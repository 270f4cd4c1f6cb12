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

    /// A new token for `owner`; the secret is in this answer only.
    ///
    /// A person's own token is made only from a session (PERMISSION_DENIED to an API token). A
    /// token a gateway keeps for the firm (`request.heldBy`) may also be made from the person's
    /// API token (a CRM adding a webhook through the API): then it has none of the permissions
    /// that token lacks, ends when that token would, and is revoked with it. Refused, too, to a
    /// user who has not met the organisation's two-factor requirement, for a permission the
    /// user's role does not have, and to a token a gateway holds (it makes nothing).
    func createApiToken(_ request: ApiTokenRequest, for owner: Bearer) async throws -> (secret: String, token: ApiToken) {
        var parent: (id: String, expiresAt: Int64)?
        switch owner.credential {
        case .session: break
        case .apiToken(let id, _, let expiresAt, let heldBy):
            guard request.heldBy != nil, heldBy == nil else { throw Self.sessionNeeded }
            parent = (id, expiresAt)
        }
        guard owner.twoFactorSatisfied else { throw Self.twoFactorNeeded }
        let name = try DomainText.line(request.name, "name", max: 100, required: true)
        let scopes = Permission.allCases.filter { $0 != .unspecified && request.permissions.contains($0) }
        guard !scopes.isEmpty else { throw DomainError.invalid("an API token names at least one permission") }
        let beyond = scopes.filter { !RoleTable.permissions(of: owner.role).contains($0) }
        guard beyond.isEmpty else {
            throw DomainError.notAllowed("role \(owner.role) lacks \(beyond.map(RoleTable.name(of:)).joined(separator: ", ")): "
                                         + "an API token gets only permissions its user has")
        }
        // A token the gateway keeps (a webhook's) is the firm's integration: made only by whoever
        // manages the firm's settings, whatever the gateway checked.
        if request.heldBy != nil { try check(owner, may: .settingsManage) }
        let unscoped = scopes.filter { !owner.permissions.contains($0) }
        guard unscoped.isEmpty else {
            throw DomainError.notAllowed("the API token making it is not scoped to \(unscoped.map(RoleTable.name(of:)).joined(separator: ", "))")
        }
        let seconds = request.durationSeconds == 0 ? Self.defaultApiTokenSeconds : request.durationSeconds
        guard seconds <= Self.maxApiTokenSeconds else { throw DomainError.invalid("an API token lasts at most 365 days") }

        let secret = try ApiTokenSecret.generate()
        let id = Self.newID("api")
        let now = self.now()
        let expiresAt = min(now + Int64(seconds) * 1000, parent?.expiresAt ?? .max)
        let record = ApiTokenRecord(id: id, user: owner.user, org: owner.org,
                                    sealedName: try keys.seal(Data(name.utf8), org: owner.org, table: "api_tokens", column: "name", row: id),
                                    prefix: ApiTokenSecret.shownPrefix(of: secret), permissions: scopes.map(\.rawValue),
                                    createdAt: now, expiresAt: expiresAt, lastUsedAt: 0, revokedAt: nil,
                                    heldBy: request.heldBy, madeBy: parent?.id)
        var detail = "permissions: \(scopes.map(RoleTable.name(of:)).joined(separator: ", ")); lasts \((expiresAt - now) / 1000) s"
        if let gateway = request.heldBy { detail += "; kept by gateway \(gateway)" }
        if let parent { detail += "; made by API token \(parent.id)" }
        try await repository.write { [self, detail] tx in
            try tx.insertApiToken(record, hash: OpaqueToken.storageHash(secret))
            try audit(org: owner.org, actor: owner.actor, action: .apiTokenCreated, resource: .apiToken(id), detail: detail, in: tx)
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
            // What it made (a webhook's token) goes with it.
            for made in try tx.revokeApiTokens(madeBy: id, at: now) {
                try audit(org: caller.org, actor: caller.actor, action: .apiTokenRevoked, resource: .apiToken(made),
                          detail: "the API token that made it was revoked", in: tx)
            }
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
                        from presentation: Presentation, now: Int64) async throws -> Bearer {
        let token = held.token
        guard token.revokedAt == nil, token.expiresAt > now, held.account.isActive else { throw Self.noValidCredential }
        guard token.org == org else { throw Self.otherOrganisation(org) }
        guard accepting == .sessionOrApiToken else { throw Self.sessionNeeded }
        let bearer = Bearer(org: org, user: token.user, role: Calltrace_Identity_V1_Role(rawValue: held.account.role) ?? .unspecified,
                            credential: .apiToken(id: token.id, scopes: Set(token.permissions.compactMap(Permission.init(rawValue:))),
                                                  expiresAt: token.expiresAt, heldBy: token.heldBy),
                            twoFactorSatisfied: held.account.twoFactorSatisfied)
        // Where it was presented from first, so a token used from the wrong place learns nothing
        // of its scopes.
        if let gateway = token.heldBy {
            // Kept by a gateway for the firm: only that gateway, saying it acts for nobody at an
            // address, may present it (a copy that leaked works nowhere, not even through that
            // gateway's own API, which always names the address it serves).
            guard presentation.gateway == gateway, presentation.actsForNobody else { throw Self.heldByGateway(gateway) }
        } else {
            try await checkClientAddress(presentation.clientAddress, org: org)
        }
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

    static func heldByGateway(_ gateway: String) -> DomainError {
        DomainError.notAllowed("this API token is kept by gateway \(gateway) for the firm's integrations; only that gateway may present it")
    }
}
