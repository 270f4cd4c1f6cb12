import CallTraceServiceHost

/// Everything the telephony gateway records in the audit trail: the changes it makes to a firm's
/// numbers at Twilio (which source a number counts for is transcript's, and audited there).
/// Listed in services/compliance/README.md.
enum TelephonyAuditAction: String, AuditActionName {
    /// Bought at Twilio for the firm, its webhooks pointed here.
    case numberBought = "number.bought"
    /// Already on the Twilio account; its webhooks pointed here for the firm.
    case numberImported = "number.imported"
    /// Released at Twilio: the account no longer has it.
    case numberReleased = "number.released"
    /// Its webhooks cleared: it stays on the Twilio account, no longer answered here.
    case numberDetached = "number.detached"
}

extension AuditRecord {
    init(org: String, actor: String, action: TelephonyAuditAction, resource: AuditResource, detail: String = "") {
        self.init(org: org, actor: actor, action: AuditAction(action), resource: resource, outcome: .success, detail: detail)
    }
}
