import CallTraceServiceHost

/// Everything media records in the audit trail: its whole vocabulary, one case per action.
/// The raw values are what firms filter on (`calltrace audit list --action …`), listed in
/// services/compliance/README.md; a new action is a new case here.
public enum MediaAuditAction: String, AuditActionName {
    case recordingStored = "recording.stored"
    case recordingPlayed = "recording.played"
    /// Compliance read the audio for an access bundle or a matter file.
    case recordingExported = "recording.exported"
    case recordingRedacted = "recording.redacted"
    case recordingRedactionFailed = "recording.redaction_failed"
    case recordingDeleted = "recording.deleted"
    /// Retention: a batch of recordings past the organisation's cutoff.
    case recordingsPurged = "recordings.purged"
    /// Offboarding: every recording and share link of the organisation.
    case organisationPurged = "organisation.purged"
    case shareLinkCreated = "share_link.created"
    case shareLinkOpened = "share_link.opened"
    case shareLinkRevoked = "share_link.revoked"
    case shareLinkPolicySet = "share_link.policy_set"
}

extension AuditRecord {
    /// Media's actions by name: `AuditRecord(…, action: .recordingPlayed, …)`.
    init(org: String, actor: String, action: MediaAuditAction, resource: AuditResource, outcome: AuditOutcome = .success, detail: String = "") {
        self.init(org: org, actor: actor, action: AuditAction(action), resource: resource, outcome: outcome, detail: detail)
    }
}
