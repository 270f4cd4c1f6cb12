import CallTraceProto
import CallTraceRPC

/// Whom a bearer token speaks for, once checked: a user of an organisation, through a session
/// or through one of the user's API tokens.
struct Bearer: Sendable, Equatable {
    typealias Permission = Calltrace_Identity_V1_Permission

    enum Credential: Sendable, Equatable {
        /// From a login.
        case session
        /// A user's API token: it acts only within its scopes, until it expires; `heldBy` names
        /// the gateway that keeps it for the firm (a webhook's), nil for a person's own.
        case apiToken(id: String, scopes: Set<Permission>, expiresAt: Int64, heldBy: String?)
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
        guard case .apiToken(_, let scopes, _, _) = credential else { return role }
        return role.intersection(scopes)
    }

    /// Whether the call may use `permission`: the credential allows it and the organisation's
    /// two-factor requirement is met.
    func may(_ permission: Permission) -> Bool { twoFactorSatisfied && permissions.contains(permission) }

    /// For audit records: `user:<id>`, whichever credential it used.
    var actor: String { "user:\(user)" }

    /// The API token it presented; nil for a session.
    var apiTokenID: String? {
        if case .apiToken(let id, _, _, _) = credential { return id }
        return nil
    }
}

/// How a token reached identity: the gateway that carried it (its certificate's name; nil when
/// no gateway did) and the end user's address that gateway vouched for (nil when it did not
/// say, or is not trusted to; `ServerContext.actingForNobody` when it said it acts for nobody at
/// an address). The organisation's address allow-list applies to a person's credential; a token
/// a gateway holds works only when that gateway presents it saying it acts for nobody.
struct Presentation: Sendable, Equatable {
    var gateway: String?
    var clientAddress: String?

    /// The gateway said, and the service trusted it to say, that it acts for nobody at an address.
    var actsForNobody: Bool { clientAddress == ServerContext.actingForNobody }

    init(gateway: String?, clientAddress: String?) {
        self.gateway = gateway.flatMap { $0.isEmpty ? nil : $0 }
        self.clientAddress = clientAddress.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Called directly, by no gateway for nobody at an address (the rules' own tests).
    static let direct = Presentation(gateway: nil, clientAddress: nil)
}
