import CallTraceKeys
import CallTraceOutbound
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import Foundation

/// User and organisation lifecycle.
extension IdentityRules {
    func suspendUser(_ user: String, org: String, by actor: String) async throws {
        try await changeUser(user, org: org, .suspend, endSessions: true, endTokens: true, action: .userSuspended, by: actor)
    }

    func changeRole(_ user: String, org: String, to role: Calltrace_Identity_V1_Role, by actor: String) async throws {
        guard role != .unspecified, !RoleTable.permissions(of: role).isEmpty else { throw DomainError.invalid("name a role") }
        try await changeUser(user, org: org, .role(role.rawValue), endSessions: false, action: .userRoleChanged, by: actor)
    }

    func revokeSessions(_ user: String, org: String, by actor: String) async throws -> Int {
        try await repository.write { [self] tx in
            guard try tx.userExists(user, org: org) else { throw DomainError.notFound("user \(user) not found in organisation \(org)") }
            let ended = try tx.deleteSessions(user: user)
            try audit(org: org, actor: actor, action: .sessionsRevoked, resource: .user(user), in: tx)
            return ended
        }
    }

    func suspendOrganization(_ org: String, by actor: String) async throws {
        try await repository.write { [self] tx in
            guard try tx.setOrganizationStatus(org, to: "suspended", from: ["active"]) else {
                throw DomainError.notFound("active organisation \(org) not found")
            }
            try tx.deleteSessions(org: org)
            try audit(org: org, actor: actor, action: .organisationSuspended, resource: .organisation(org), in: tx)
        }
    }

    /// The last step of offboarding (P11): the organisation is marked offboarded, its people are
    /// deleted (users with their sealed names and e-mails, password hashes and two-factor
    /// secrets, invitations, sessions, API tokens, support grants), then identity's key for it
    /// is shredded.
    /// Idempotent: a repeat (compliance retrying after a lost answer, or a crash between the
    /// steps) deletes what is left and answers everything deleted so far, as the first did.
    func markOffboarded(_ org: String, by actor: String) async throws -> OffboardedPeople {
        let deleted = try await repository.write { [self] tx -> OffboardedPeople in
            guard let status = try tx.organizationStatus(org) else { throw DomainError.notFound("organisation \(org) not found") }
            if status != "offboarded" { _ = try tx.setOrganizationStatus(org, to: "offboarded", from: nil) }
            let total = try tx.offboardingReceipt(org: org) + tx.deletePeople(org: org)
            try tx.setOffboardingReceipt(org: org, total)
            if status != "offboarded" {
                try audit(org: org, actor: actor, action: .organisationOffboarded, resource: .organisation(org), in: tx)
            }
            return total
        }
        try keys.shred(org: org)
        return deleted
    }

    /// Organisations offboarded before offboarding deleted their people: deleted now, and their
    /// keys shredded (the hourly housekeeping). Returns how many organisations it cleared.
    func clearOffboarded() async throws -> Int {
        let orgs = try await repository.read { tx in try tx.offboardedWithPeople() }
        for org in orgs { _ = try await markOffboarded(org, by: IdentityService.actor) }
        return orgs.count
    }

    /// Applies an admin's change to a user.
    /// - Parameters:
    ///   - endTokens: also void the user's outstanding invitation and reset tokens.
    ///   - endApiTokens: also revoke the user's API tokens (each revocation audited).
    func changeUser(_ user: String, org: String, _ change: UserChange, endSessions: Bool, endTokens: Bool = false,
                    endApiTokens: Bool = false, action: IdentityAuditAction, by actor: String) async throws {
        try await repository.write { [self] tx in
            guard try tx.change(user, org: org, change) else { throw DomainError.notFound("user \(user) not found in organisation \(org)") }
            // An organisation always keeps an active admin: the last one cannot be removed,
            // suspended or demoted (the change rolls back).
            guard try tx.activeAdminCount(org: org) > 0 else {
                throw DomainError.wrongState("the organisation's last active admin cannot be removed, suspended or demoted")
            }
            if endSessions { try tx.deleteSessions(user: user) }
            if endTokens { try tx.deleteTokens(user: user) }
            try audit(org: org, actor: actor, action: action, resource: .user(user), in: tx)
            if endApiTokens { try revokeApiTokens(of: user, org: org, by: actor, in: tx) }
        }
    }

    /// Removes a user of `org`; their sessions end and their API tokens are revoked at once.
    func removeUser(_ user: String, org: String, by actor: String) async throws {
        // The e-mail's index is replaced by one naming the removed user, so the address can be invited again.
        try await changeUser(user, org: org, .remove(freedIndex: Data("removed:\(user)".utf8)), endSessions: true, endTokens: true,
                             endApiTokens: true, action: .userRemoved, by: actor)
    }
}
