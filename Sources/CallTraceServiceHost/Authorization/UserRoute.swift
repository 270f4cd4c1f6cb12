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
}

extension Principal {
    /// How a service acting as itself is named in the audit trail: `service:<name>`.
    public static func serviceActor(_ service: String) -> String { "service:\(service)" }
}

extension ServerContext {
    /// The route check of every user-facing RPC, before its handler does anything: the
    /// organisation id is well formed; the call is annotated with it; a gateway's call carries a
    /// user's bearer token that identity allows `permission` in `org` (from an address the
    /// organisation accepts); an operator's call is allowed only under a support grant naming
    /// `permission` (audited by identity). Services are refused: they act for nobody.
    public func principal(in org: String, may permission: Calltrace_Identity_V1_Permission,
                          via authorizer: any Authorizing) async throws -> Principal {
        try OrganizationID.validate(org)
        annotate(org: org)
        switch peer.kind {
        case .gateway:
            return try await authorizer.authorizeUser(token: try bearerToken(), org: org, permission: permission,
                                                      gateway: peer.name, clientAddress: clientAddress)
        case .operator:
            return try await authorizer.authorizeOperator(name: peer.name, org: org, permission: permission)
        case .service:
            throw RPCError(.permissionDenied, "\(peer) acts for no user; this call needs a user or an operator")
        }
    }

    /// The actor of a call that a service may make as itself (the method's policy names which
    /// peers reach it) and a user or operator only with `permission` in `org`: the service by
    /// name (`peerActor`), else the route check's principal.
    public func actor(in org: String, may permission: Calltrace_Identity_V1_Permission, via authorizer: any Authorizing) async throws -> String {
        guard peer.kind == .service else { return try await principal(in: org, may: permission, via: authorizer).actor }
        try OrganizationID.validate(org)
        annotate(org: org)
        return peerActor
    }

    /// How the calling peer, acting as itself (a service, a gateway reporting calls), is named in
    /// the audit trail: `service:<name>`, `gateway:<name>`.
    public var peerActor: String { "\(peer.kind.rawValue):\(peer.name)" }

    /// The user's token from `authorization: Bearer <token>`; UNAUTHENTICATED without one.
    public func bearerToken() throws -> String {
        guard let header = metadata["authorization"], header.hasPrefix("Bearer "), header.utf8.count > 7 else {
            throw RPCError(.unauthenticated, "this call needs a user's bearer token")
        }
        return String(header.dropFirst(7))
    }
}
