import CallTraceKeys
import CallTraceOutbound
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import Foundation

/// Users as the firm sees them.
extension IdentityRules {
    /// The organisation's users (`only`: that one), names and e-mails opened.
    func users(org: String, only user: String? = nil) async throws -> [Calltrace_Identity_V1_User] {
        let records = try await repository.read { tx in try tx.users(org: org, only: user) }
        return try records.map { record in
            let email = try keys.open(record.sealedEmail, org: org, table: "users", column: "email", row: record.id)
            let name = try keys.open(record.sealedName, org: org, table: "users", column: "display_name", row: record.id)
            return .with {
                $0.userID = record.id; $0.email = String(decoding: email, as: UTF8.self); $0.displayName = String(decoding: name, as: UTF8.self)
                $0.role = Calltrace_Identity_V1_Role(rawValue: record.role) ?? .unspecified; $0.status = record.status
                $0.twoFactorConfirmed = record.twoFactorConfirmed; $0.createdAtUnixMs = record.createdAt
            }
        }
    }

    /// How an authenticator app lists the account: the firm's name and the person's e-mail, never
    /// an id (`otpauth://totp/ISSUER:ACCOUNT?issuer=ISSUER`, each part percent-encoded).
    func totpLabel(user: String, org: String) async throws -> (issuer: String, account: String) {
        let firm = try await repository.read { tx in try tx.organizations(only: org) }.first
            .flatMap { try? keys.open($0.sealedName, org: org, table: "organizations", column: "name", row: org) }
            .map { String(decoding: $0, as: UTF8.self) }
        let email = try await users(org: org, only: user).first?.email ?? user
        return (firm.map { "CallTrace (\($0))" } ?? "CallTrace", email)
    }

    /// Every organisation for operators; an offboarded one's name is gone with its key.
    func organizations() async throws -> [Calltrace_Identity_V1_Organization] {
        try await repository.read { tx in try tx.organizations(only: nil) }.map { record in
            let name = (try? keys.open(record.sealedName, org: record.id, table: "organizations", column: "name", row: record.id))
                .map { String(decoding: $0, as: UTF8.self) } ?? "(unreadable: key shredded)"
            return .with { $0.orgID = record.id; $0.name = name; $0.status = record.status; $0.createdAtUnixMs = record.createdAt }
        }
    }

    /// The organisation's support grants, past and present, reasons opened.
    func grants(org: String) async throws -> [Calltrace_Identity_V1_SupportGrant] {
        try await repository.read { tx in try tx.grants(org: org) }.map { record in
            let reason = try keys.open(record.sealedReason, org: org, table: "support_grants", column: "reason", row: record.id)
            return .with {
                $0.grantID = record.id; $0.permissions = record.permissions.compactMap { Calltrace_Identity_V1_Permission(rawValue: $0) }
                $0.reason = String(decoding: reason, as: UTF8.self); $0.createdBy = record.createdBy; $0.createdAtUnixMs = record.createdAt
                $0.expiresAtUnixMs = record.expiresAt; $0.revokedAtUnixMs = record.revokedAt ?? 0
            }
        }
    }
}
