import CallTraceProto
import CallTraceServiceHost

/// Everything identity records in the audit trail: its whole vocabulary, one case per action.
/// The raw values are what firms filter on (`calltrace audit list --action …`), listed in
/// services/compliance/README.md; a new action is a new case here.
public enum IdentityAuditAction: String, AuditActionName {
    case organisationCreated = "organisation.created"
    case organisationSuspended = "organisation.suspended"
    case organisationOffboarded = "organisation.offboarded"
    case securityPolicyChanged = "security_policy.changed"
    case invitationIssued = "invitation.issued"
    case invitationRedeemed = "invitation.redeemed"
    case passwordResetIssued = "password_reset.issued"
    case passwordResetRedeemed = "password_reset.redeemed"
    case loginSucceeded = "login.succeeded"
    case loginFailed = "login.failed"
    case loginLockedOut = "login.locked_out"
    case sessionEnded = "session.ended"
    case sessionsRevoked = "sessions.revoked"
    case twoFactorEnrolmentStarted = "two_factor.enrolment_started"
    case twoFactorConfirmed = "two_factor.confirmed"
    case twoFactorReset = "two_factor.reset"
    case userSuspended = "user.suspended"
    case userRoleChanged = "user.role_changed"
    case userRemoved = "user.removed"
    case supportGrantCreated = "support_grant.created"
    case supportGrantRevoked = "support_grant.revoked"
    case supportGrantExpired = "support_grant.expired"
    case apiTokenCreated = "api_token.created"
    case apiTokenRevoked = "api_token.revoked"
    /// A person changed which e-mail alerts they get.
    case alertsChanged = "alerts.changed"
    /// An alert was e-mailed: its kind and who got it (never its text).
    case alertSent = "alert.sent"
    /// A family: `operator.access.<permission>` (`operatorAccess(to:)`), one per permission an
    /// operator asked for, allowed or denied (P8).
    case operatorAccess = "operator.access"

    /// `operator.access.<permission>`, the permission as the trail has always spelt it (its
    /// Swift case name, e.g. `operator.access.recordingsPlay`), so older filters still match. A
    /// permission this build does not know (a newer peer's) is `unknown<number>`: still one word,
    /// so the refusal is audited rather than failing.
    static func operatorAccess(to permission: Calltrace_Identity_V1_Permission) -> AuditAction {
        if case .UNRECOGNIZED(let number) = permission { return AuditAction(IdentityAuditAction.operatorAccess, member: "unknown\(number)") }
        return AuditAction(IdentityAuditAction.operatorAccess, member: "\(permission)")
    }
}

extension AuditRecord {
    /// Identity's actions by name: `AuditRecord(…, action: .loginFailed, …)`.
    init(org: String, actor: String, action: IdentityAuditAction, resource: AuditResource, outcome: AuditOutcome = .success, detail: String = "") {
        self.init(org: org, actor: actor, action: AuditAction(action), resource: resource, outcome: outcome, detail: detail)
    }
}
