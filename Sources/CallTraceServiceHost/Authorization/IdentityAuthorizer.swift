public import CallTraceProto
public import CallTraceRPC
import CallTraceAPI
import CallTraceKeys
import CallTraceSync
import Foundation

/// How every service asks identity "may this caller do this, in this organisation?".
///
/// Allows are cached briefly (default 5 s, at most `capacity` entries), so a removed user or an
/// ended session loses access everywhere within that time. Denials are never cached: the next
/// call asks again. The cache is keyed by the token's SHA-256, never the token itself.
public final class IdentityAuthorizer: Sendable {
    public struct Configuration: Sendable {
        /// How long an allow is reused. Default 5 s.
        public var allowTTL: Duration = .seconds(5)
        /// Cached allows at most; the oldest half is dropped when full. Default 10 000.
        public var capacity = 10_000
        /// Per-request timeout when no caller deadline applies. Default 2 s.
        public var timeout: Duration = .seconds(2)
        /// The clock the TTL is measured on. Default the system clock.
        public var clock: any WallClock = SystemClock()
        public init() {}
    }

    private struct Key: Hashable {
        let tokenHash: Data
        let org: String
        let permission: Int
        let gateway: String
        let clientAddress: String
    }
    private struct Entry {
        let principal: Calltrace_Identity_V1_Principal
        /// Unix milliseconds, on `Configuration.clock`.
        let expires: Int64
    }

    private let identity: Calltrace_Identity_V1_IdentityServiceClient
    private let configuration: Configuration
    private let cache = Locked<[Key: Entry]>([:])

    public init(identity: any RPCChannel, configuration: Configuration = Configuration()) {
        self.identity = Calltrace_Identity_V1_IdentityServiceClient(identity)
        self.configuration = configuration
    }

    /// The principal, or the error identity gave (UNAUTHENTICATED, PERMISSION_DENIED, …).
    ///
    /// - Parameters:
    ///   - gateway: the name of the gateway that presented the token (a token a gateway keeps for
    ///     the firm works only from that gateway).
    ///   - clientAddress: the end user's address from the gateway's call
    ///     (`ServerContext.clientAddress`), for organisations that restrict addresses.
    public func authorize(token: String, org: String, permission: Calltrace_Identity_V1_Permission,
                          gateway: String = "", clientAddress: String? = nil) async throws -> Calltrace_Identity_V1_Principal {
        let key = Key(tokenHash: OpaqueToken.storageHash(token), org: org, permission: permission.rawValue,
                      gateway: gateway, clientAddress: clientAddress ?? "")
        let now = configuration.clock.nowUnixMs
        if let hit = cache.withLock({ $0[key] }), hit.expires > now { return hit.principal }
        var request = Calltrace_Identity_V1_AuthorizeRequest()
        request.token = token
        request.orgID = org
        request.permission = permission
        request.clientAddress = clientAddress ?? ""
        request.gateway = gateway
        let principal: Calltrace_Identity_V1_Principal
        do {
            principal = try await identity.authorize(request, options: .init(timeout: configuration.timeout)).principal
        } catch {
            cache.withLock { $0[key] = nil }
            throw error
        }
        let capacity = configuration.capacity
        let entry = Entry(principal: principal, expires: now + configuration.allowTTL.wholeMilliseconds)
        cache.withLock { cache in
            if cache.count >= capacity {
                let live = cache.filter { $0.value.expires > now }
                cache = live.count >= capacity ? Dictionary(uniqueKeysWithValues: live.sorted { $0.value.expires > $1.value.expires }
                    .prefix(capacity / 2).map { ($0.key, $0.value) }) : live
            }
            cache[key] = entry
        }
        return principal
    }
}

extension IdentityAuthorizer: Authorizing {
    public func authorizeUser(token: String, org: String, permission: Calltrace_Identity_V1_Permission,
                              gateway: String, clientAddress: String?) async throws -> Principal {
        Principal(try await authorize(token: token, org: org, permission: permission, gateway: gateway, clientAddress: clientAddress))
    }

    /// Never cached: identity audits every operator access, allowed or denied.
    public func authorizeOperator(name: String, org: String, permission: Calltrace_Identity_V1_Permission) async throws -> Principal {
        var request = Calltrace_Identity_V1_AuthorizeOperatorRequest()
        request.operatorName = name
        request.orgID = org
        request.permission = permission
        return Principal(try await identity.authorizeOperator(request, options: .init(timeout: configuration.timeout)).principal)
    }
}
