import CallTraceKeys
import CallTraceOutbound
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import Foundation

/// A user as the firm sees them: name and e-mail opened.
struct User: Sendable {
    let id: String
    let email: String
    let displayName: String
    let role: Calltrace_Identity_V1_Role
    let status: String
    let twoFactorConfirmed: Bool
    let createdAt: Int64
}

/// An organisation as operators see it: the name opened, or a placeholder once its key is shredded.
struct Organization: Sendable {
    let id: String
    let name: String
    let status: String
    let createdAt: Int64
}

/// A support grant as the firm sees it: the reason opened.
struct SupportGrant: Sendable {
    let id: String
    let permissions: [Calltrace_Identity_V1_Permission]
    let reason: String
    let createdBy: String
    let createdAt: Int64
    let expiresAt: Int64
    let revokedAt: Int64?
}

/// Users as the firm sees them.
extension IdentityRules {
    /// The organisation's users (`only`: that one), names and e-mails opened.
    func users(org: String, only user: String? = nil) async throws -> [User] {
        let records = try await repository.read { tx in try tx.users(org: org, only: user) }
        return try records.map { record in
            let email = try keys.open(record.sealedEmail, org: org, table: "users", column: "email", row: record.id)
            let name = try keys.open(record.sealedName, org: org, table: "users", column: "display_name", row: record.id)
            return User(id: record.id, email: String(decoding: email, as: UTF8.self), displayName: String(decoding: name, as: UTF8.self),
                        role: Calltrace_Identity_V1_Role(rawValue: record.role) ?? .unspecified, status: record.status,
                        twoFactorConfirmed: record.twoFactorConfirmed, createdAt: record.createdAt)
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
    func organizations() async throws -> [Organization] {
        try await repository.read { tx in try tx.organizations(only: nil) }.map { record in
            let name = (try? keys.open(record.sealedName, org: record.id, table: "organizations", column: "name", row: record.id))
                .map { String(decoding: $0, as: UTF8.self) } ?? "(unreadable: key shredded)"
            return Organization(id: record.id, name: name, status: record.status, createdAt: record.createdAt)
        }
    }

    /// The organisation's support grants, past and present, reasons opened.
    func grants(org: String) async throws -> [SupportGrant] {
        try await repository.read { tx in try tx.grants(org: org) }.map { record in
            let reason = try keys.open(record.sealedReason, org: org, table: "support_grants", column: "reason", row: record.id)
            return SupportGrant(id: record.id, permissions: record.permissions.compactMap { Calltrace_Identity_V1_Permission(rawValue: $0) },
                                reason: String(decoding: reason, as: UTF8.self), createdBy: record.createdBy, createdAt: record.createdAt,
                                expiresAt: record.expiresAt, revokedAt: record.revokedAt)
        }
    }
}
