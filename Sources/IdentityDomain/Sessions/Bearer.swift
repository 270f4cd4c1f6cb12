import CallTraceProto

/// Whom a bearer token speaks for, once checked: a user of an organisation, through a session
/// or through one of the user's API tokens.
struct Bearer: Sendable, Equatable {
    typealias Permission = Calltrace_Identity_V1_Permission

    enum Credential: Sendable, Equatable {
        /// From a login.
        case session
        /// A user's API token: it acts only within its scopes.
        case apiToken(id: String, scopes: Set<Permission>)
    }

    /// Which credentials a call accepts.
    enum Accepted: Sendable {
        case sessionOrApiToken
        /// Credential calls (two-factor, creating API tokens): an API token is refused.
        case sessionOnly
    }

    let org: String
    let user: String
    let role: Calltrace_Identity_V1_Role
    let credential: Credential
    /// The organisation's two-factor requirement is met (or there is none).
    let twoFactorSatisfied: Bool

    /// What the credential lets the user do: their role's permissions, and for an API token only
    /// those in its scopes too.
    var permissions: Set<Permission> {
        let role = RoleTable.permissions(of: role)
        guard case .apiToken(_, let scopes) = credential else { return role }
        return role.intersection(scopes)
    }

    /// Whether the call may use `permission`: the credential allows it and the organisation's
    /// two-factor requirement is met.
    func may(_ permission: Permission) -> Bool { twoFactorSatisfied && permissions.contains(permission) }

    /// For audit records: `user:<id>`, whichever credential it used.
    var actor: String { "user:\(user)" }

    /// The answer to `Authorize`.
    var principal: Calltrace_Identity_V1_Principal {
        .with {
            $0.orgID = org; $0.userID = user; $0.role = role
            if case .apiToken(let id, _) = credential { $0.apiTokenID = id }
        }
    }
}
