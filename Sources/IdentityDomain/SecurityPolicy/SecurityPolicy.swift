import CallTraceKeys
import CallTraceOutbound
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import Foundation

/// Security policy.
extension IdentityRules {
    func policy(org: String) async throws -> SecurityPolicy {
        guard let policy = try await repository.read({ tx in try tx.securityPolicy(of: org) }) else {
            throw DomainError.notFound("organisation \(org) not found")
        }
        return policy
    }

    /// Replaces the policy; the audit event says what changed from what to what.
    @discardableResult
    func setPolicy(ranges: [String], idleSeconds: UInt32, maxSeconds: UInt32, requireTwoFactor: Bool, org: String,
                   by actor: String) async throws -> SecurityPolicy {
        for range in ranges where AddressRange(range) == nil {
            throw DomainError.invalid("\(range) is not a CIDR range")
        }
        let idle = idleSeconds == 0 ? Self.defaultIdleSeconds : Int(idleSeconds)
        let maximum = maxSeconds == 0 ? Self.defaultMaxSeconds : Int(maxSeconds)
        guard idle <= 86_400, maximum <= 30 * 86_400 else {
            throw DomainError.invalid("sessions last at most a day idle and 30 days in all")
        }
        let changed = SecurityPolicy(ranges: ranges, idleSeconds: idle, maxSeconds: maximum, requireTwoFactor: requireTwoFactor)
        try await repository.write { [self] tx in
            guard let before = try tx.securityPolicy(of: org),
                  try tx.setSecurityPolicy(org, ranges: ranges.joined(separator: " "), idleSeconds: idle, maxSeconds: maximum,
                                           requireTwoFactor: requireTwoFactor) else {
                throw DomainError.notFound("organisation \(org) not found")
            }
            try audit(org: org, actor: actor, action: .securityPolicyChanged, resource: .organisation(org),
                      detail: String(before.changes(to: changed).prefix(900)), in: tx)
        }
        return changed
    }

    /// Refuses an address outside the organisation's allow-list (or none, when it has one).
    func checkClientAddress(_ address: String?, org: String) async throws {
        let text = try await repository.read { tx in try tx.allowedClientRanges(of: org) ?? "" }
        let ranges = text.split(separator: " ").compactMap { AddressRange(String($0)) }
        guard !ranges.isEmpty else { return }
        guard let address, ranges.contains(where: { $0.contains(address) }) else {
            throw DomainError.notAllowed("the organisation does not allow access from this network address")
        }
    }
}
