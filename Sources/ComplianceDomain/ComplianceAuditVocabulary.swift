import CallTraceServiceHost

/// Everything compliance records in the audit trail: its whole vocabulary, one case per action.
/// The raw values are what firms filter on (`calltrace audit list --action …`), listed in
/// services/compliance/README.md; a new action is a new case here.
public enum ComplianceAuditAction: String, AuditActionName {
    case retentionPolicySet = "retention.policy_set"
    /// A retention run finished; its detail is the receipt's counts.
    case retentionRun = "retention.run"
    case callDeletionRequested = "call.deletion_requested"
    /// Media and transcript both confirmed a call's deletion.
    case callDeleted = "call.deleted"
    case subjectRequestOpened = "subject_request.opened"
    case subjectRequestPaused = "subject_request.paused"
    case subjectRequestResumed = "subject_request.resumed"
    case subjectRequestExtended = "subject_request.extended"
    case subjectRequestIdentityChecked = "subject_request.identity_checked"
    case subjectRequestLocated = "subject_request.located"
    case subjectRequestErasureStarted = "subject_request.erasure_started"
    case subjectRequestErasureConfirmed = "subject_request.erasure_confirmed"
    case subjectRequestObjectionApplied = "subject_request.objection_applied"
    case subjectRequestBundleRequested = "subject_request.bundle_requested"
    case subjectRequestClosed = "subject_request.closed"
    case bundleRequested = "bundle.requested"
    case bundleReady = "bundle.ready"
    case bundleFailed = "bundle.failed"
    case bundleDownloaded = "bundle.downloaded"
    case bundleExpired = "bundle.expired"
    case noticesSettingsChanged = "notices.settings_changed"
    case agreementAccepted = "agreement.accepted"
    case offboardingStarted = "offboarding.started"
    case offboardingConfirmed = "offboarding.confirmed"
}

extension AuditRecord {
    /// Compliance's actions by name: `AuditRecord(…, action: .retentionRun, …)`.
    init(org: String, actor: String, action: ComplianceAuditAction, resource: AuditResource, outcome: AuditOutcome = .success, detail: String = "") {
        self.init(org: org, actor: actor, action: AuditAction(action), resource: resource, outcome: outcome, detail: detail)
    }
}
