import CallTraceKeys
import CallTraceOutbound
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import Foundation

/// Identity's rules: organisations, named users, invitations and sessions, lockout, two-factor,
/// support grants. They decide; `repository` reads and writes (all SQL is there), and every
/// state change commits in one transaction with its audit record (and any job). E-mails and names
/// are sealed per organisation before they reach the repository; an e-mail is found through its
/// blind index.
struct IdentityRules: Sendable {
    /// Invitations last 72 hours. Sessions end after the org's idle time (default 30 minutes)
    /// or its maximum (default 12 hours), whichever comes first.
    static let invitationLifetimeMS: Int64 = 72 * 3_600_000
    static let resetLifetimeMS: Int64 = 3_600_000
    static let defaultIdleSeconds = 1800, defaultMaxSeconds = 43_200
    /// Lockout: 5 failed logins per account, or 20 per client address, within 15 minutes.
    static let failureWindowMS: Int64 = 15 * 60_000
    static let accountFailureLimit = 5
    static let addressFailureLimit = 20
    /// Password-reset e-mails: per account and per client address, in an hour.
    static let resetWindowMS: Int64 = 60 * 60_000, resetAccountLimit = 3, resetAddressLimit = 20

    let repository: any IdentityRepository
    let keys: KeyRing
    let outbox: AuditOutbox
    /// Where invitation and reset tokens go: to the user, never back to the caller.
    let delivery: any TokenDelivery
    /// Every expiry here reads this clock (tests move it instead of sleeping).
    let clock: any WallClock
    /// scrypt at the deployment's cost (`PasswordHasher.standard`).
    var hasher = PasswordHasher.standard
    /// Where scrypt runs: never on the connection's I/O thread.
    var blocking = BlockingPool.shared
    /// The web app's address, where e-mailed links point (`mail_link_base`); alerts give paths
    /// alone without it (development).
    var mailLinkBase: String? = nil

    func now() -> Int64 { clock.nowUnixMs }
    static func newID(_ prefix: String) -> String { "\(prefix)_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))" }

    static func normalisedEmail(_ raw: String) throws -> String {
        let email = raw.trimmingCharacters(in: .whitespaces).lowercased()
        let parts = email.split(separator: "@")
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), MailAddress.isPlain(email) else {
            throw DomainError.invalid("not an e-mail address")
        }
        return email
    }

    /// Records `record` in the same transaction as the change it describes.
    func audit(_ record: AuditRecord, in tx: any IdentityTransaction) throws {
        try outbox.record(record, in: tx.connection)
    }

    func audit(org: String, actor: String, action: IdentityAuditAction, resource: AuditResource, outcome: AuditOutcome = .success,
                       detail: String = "", in tx: any IdentityTransaction) throws {
        try audit(AuditRecord(org: org, actor: actor, action: action, resource: resource, outcome: outcome, detail: detail), in: tx)
    }

    /// An audit record on its own (a refusal changes nothing else).
    func audit(org: String, actor: String, action: IdentityAuditAction, resource: AuditResource, outcome: AuditOutcome) async throws {
        try await repository.write { [self] tx in try audit(org: org, actor: actor, action: action, resource: resource, outcome: outcome, in: tx) }
    }
}
