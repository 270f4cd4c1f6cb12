public import CallTraceProto
public import CallTraceRPC

/// Who acts in a user-facing call: a named user of the organisation, or an operator under a
/// support grant the organisation gave (P8). Handlers start from one (`ServerContext.principal`)
/// instead of re-deriving it.
public struct Principal: Sendable, Equatable {
    public enum Acting: Sendable, Equatable {
        case user(id: String, role: Calltrace_Identity_V1_Role)
        case `operator`(name: String, grant: String)
    }

    public let org: String
    public let acting: Acting

    public init(org: String, acting: Acting) {
        self.org = org
        self.acting = acting
    }

    /// From identity's answer.
    public init(_ principal: Calltrace_Identity_V1_Principal) {
        org = principal.orgID
        acting = principal.operatorName.isEmpty
            ? .user(id: principal.userID, role: principal.role)
            : .operator(name: principal.operatorName, grant: principal.supportGrantID)
    }

    /// For audit records: `user:<id>` or `operator:<name>`.
    public var actor: String {
        switch acting {
        case .user(let id, _): return "user:\(id)"
        case .operator(let name, _): return "operator:\(name)"
        }
    }

    /// The user's id; nil for an operator.
    public var userID: String? {
        if case .user(let id, _) = acting { return id }
        return nil
    }
}

/// How a service asks "may this caller do this, in this organisation?": other services ask
/// identity (`IdentityAuthorizer`, with its short allow cache); identity answers itself.
public protocol Authorizing: Sendable {
    /// The user behind `token`, allowed `permission` in `org`, as `gateway` presented it (a
    /// token a gateway keeps works only from that gateway), from `clientAddress` when the
    /// organisation restricts addresses; else UNAUTHENTICATED or PERMISSION_DENIED.
    func authorizeUser(token: String, org: String, permission: Calltrace_Identity_V1_Permission,
                       gateway: String, clientAddress: String?) async throws -> Principal
    /// The operator `name`, allowed `permission` in `org` only under an active support grant
    /// that names it; every answer is an audit event of the organisation.
    func authorizeOperator(name: String, org: String, permission: Calltrace_Identity_V1_Permission) async throws -> Principal

    /// The route check of a user-facing call, which the generated `register(with:)` runs before
    /// a handler whose method declares a permission in its proto (`(calltrace.rpc.v1.access)`):
    /// the organisation id well formed and annotated, then `authorizeUser` for a gateway's call,
    /// `authorizeOperator` for an operator's; a service is refused. CallTraceServiceHost gives
    /// every authoriser this one implementation (`ServerContext.principal(in:may:via:)`).
    func principal(of context: ServerContext, in org: String, may permission: Calltrace_Identity_V1_Permission) async throws -> Principal
    /// As `principal(of:in:may:)`, but a service acts as itself (`service:<name>`); the
    /// principal's `actor` otherwise (`ServerContext.actor(in:may:via:)`).
    func actor(of context: ServerContext, in org: String, may permission: Calltrace_Identity_V1_Permission) async throws -> String
}
