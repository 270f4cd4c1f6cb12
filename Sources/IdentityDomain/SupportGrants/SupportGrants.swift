import CallTraceKeys
import CallTraceOutbound
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import Foundation

/// Support grants (P8).
extension IdentityRules {
    /// Grants last at most 14 days.
    static let maxGrantSeconds: UInt32 = 14 * 86_400

    func createGrant(org: String, permissions: [Calltrace_Identity_V1_Permission], seconds: UInt32, reason: String,
                     by actor: String) async throws -> (id: String, expires: Int64) {
        let permissions = Set(permissions.filter { $0 != .unspecified })
        guard !permissions.isEmpty else { throw DomainError.invalid("a grant names at least one permission") }
        guard (1...Self.maxGrantSeconds).contains(seconds) else {
            throw DomainError.invalid("a grant lasts from 1 second to 14 days")
        }
        guard !reason.isEmpty else { throw DomainError.invalid("a grant needs a reason or ticket reference") }
        let id = Self.newID("grt")
        let now = self.now()
        let grant = NewGrant(id: id, org: org, permissions: permissions.map(\.rawValue),
                             sealedReason: try keys.seal(Data(reason.utf8), org: org, table: "support_grants", column: "reason", row: id),
                             createdBy: actor, createdAt: now, expiresAt: now + Int64(seconds) * 1000)
        try await repository.write { [self] tx in
            try tx.insertGrant(grant)
            try audit(org: org, actor: actor, action: .supportGrantCreated, resource: .grant(id), in: tx)
        }
        return (id, grant.expiresAt)
    }

    func revokeGrant(_ id: String, org: String, by actor: String) async throws {
        let now = self.now()
        try await repository.write { [self] tx in
            guard try tx.revokeGrant(id, org: org, at: now) else { throw DomainError.notFound("grant \(id) not found or already revoked") }
            try audit(org: org, actor: actor, action: .supportGrantRevoked, resource: .grant(id), in: tx)
        }
    }

    /// An operator may act only under an active grant naming the permission; audited either way.
    /// The grant's id.
    func authorizeOperator(_ name: String, org: String, permission: Calltrace_Identity_V1_Permission) async throws -> String {
        let now = self.now()
        // The audit event commits whether or not access is allowed; the refusal comes after.
        let grantID = try await repository.write { [self] tx -> String? in
            let grant = try tx.activeGrants(org: org, now: now).first { $0.permissions.contains(permission.rawValue) }
            // Grants that ran out become an audit event of their own, once.
            for expired in try tx.takeNewlyExpiredGrants(org: org, now: now) {
                try audit(org: org, actor: "system", action: .supportGrantExpired, resource: .grant(expired), in: tx)
            }
            try audit(AuditRecord(org: org, actor: "operator:\(name)", action: IdentityAuditAction.operatorAccess(to: permission),
                                  resource: grant.map { AuditResource.grant($0.id) } ?? .organisation(org), outcome: grant == nil ? .denied : .success), in: tx)
            return grant?.id
        }
        guard let grantID else {
            throw DomainError.notAllowed("no active support grant lets operators use \(RoleTable.name(of: permission)) in \(org)")
        }
        return grantID
    }
}
