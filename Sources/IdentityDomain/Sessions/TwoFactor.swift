import CallTraceKeys
import CallTraceOutbound
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import Foundation

/// Two-factor.
extension IdentityRules {
    /// A new secret for a user who proved their password again (a stolen session alone cannot
    /// bind an attacker's authenticator).
    func enrollTotp(user: String, org: String, password: String) async throws -> Data {
        let stored = try await repository.read { tx in try tx.passwordHash(ofActiveUser: user, org: org) }
        let holds = try await blocking.run { stored.map { PasswordHasher.verify(password, against: $0) } ?? false }
        guard holds else { throw DomainError.notAllowed("enrolling two-factor needs the user's current password") }
        let secret = try TOTP.newSecret()
        let sealed = try keys.seal(secret, org: org, table: "users", column: "totp_secret", row: user)
        try await repository.write { [self] tx in
            guard try tx.setUnconfirmedTwoFactorSecret(sealed, user: user, org: org) else {
                throw DomainError.wrongState("two-factor is already confirmed")
            }
            try audit(org: org, actor: "user:\(user)", action: .twoFactorEnrolmentStarted, resource: .user(user), in: tx)
        }
        return secret
    }

    /// Clears a user's two-factor (a lost phone): they enrol again. Audited.
    func resetTwoFactor(_ user: String, org: String, by actor: String) async throws {
        try await changeUser(user, org: org, .resetTwoFactor, endSessions: true, action: .twoFactorReset, by: actor)
    }

    func confirmTotp(user: String, org: String, code: String) async throws {
        let now = self.now()
        try await repository.write { [self] tx in
            guard let pending = try tx.unconfirmedTwoFactor(user: user, org: org) else {
                throw DomainError.wrongState("start enrolment first")
            }
            let secret = try keys.open(pending.sealedSecret, org: org, table: "users", column: "totp_secret", row: user)
            guard let step = TOTP.acceptedStep(code, secret: secret, unixTime: now / 1000), step > pending.lastStep else {
                throw DomainError.invalid("that code does not match")
            }
            try tx.confirmTwoFactor(user: user, step: step)
            try audit(org: org, actor: "user:\(user)", action: .twoFactorConfirmed, resource: .user(user), in: tx)
        }
    }
}
