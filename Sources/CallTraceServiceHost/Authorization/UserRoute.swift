public import CallTraceAPI
public import CallTraceProto
public import CallTraceRPC

extension Principal {
    /// How a service acting as itself is named in the audit trail: `service:<name>`.
    public static func serviceActor(_ service: String) -> String { "service:\(service)" }
}

extension Authorizing {
    /// The route check below, as the generated registration runs it before a handler whose method
    /// declares a permission (`(calltrace.rpc.v1.access)`): every authoriser checks the same way.
    public func principal(of context: ServerContext, in org: String, may permission: Calltrace_Identity_V1_Permission) async throws -> Principal {
        try await context.principal(in: org, may: permission, via: self)
    }

    public func actor(of context: ServerContext, in org: String, may permission: Calltrace_Identity_V1_Permission) async throws -> String {
        try await context.actor(in: org, may: permission, via: self)
    }
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
