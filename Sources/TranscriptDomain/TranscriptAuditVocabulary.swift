import CallTraceServiceHost

/// Everything transcript records in the audit trail: its whole vocabulary, one case per action.
/// The raw values are what firms filter on (`calltrace audit list --action …`), listed in
/// services/compliance/README.md; a new action is a new case here.
public enum TranscriptAuditAction: String, AuditActionName {
    case trackingNumberAssigned = "tracking_number.assigned"
    case trackingNumberReleased = "tracking_number.released"
    /// A number's routing was replaced; the detail says what changed (counts and switches, never a number).
    case trackingNumberRoutingSet = "tracking_number.routing_set"
    case callStarted = "call.started"
    case callCompleted = "call.completed"
    case callOutcomeMarked = "call.outcome_marked"
    case callMatterRecorded = "call.matter_recorded"
    /// A person asked for a call back to the caller of this call (the call back is a call of its own).
    case callCallbackPlaced = "call.callback_placed"
    /// Compliance read the call for an access bundle or a matter file.
    case callExported = "call.exported"
    case callDeleted = "call.deleted"
    case callerSuppressed = "caller.suppressed"
    case callerUnsuppressed = "caller.unsuppressed"
    case callerBlocked = "caller.blocked"
    case callerUnblocked = "caller.unblocked"
    /// Website attribution (issue 32): a website's settings, its pool, and conversions handed to an ad platform.
    case websiteCreated = "website.created"
    case websiteUpdated = "website.updated"
    case websiteDeleted = "website.deleted"
    case websitePoolSet = "website.pool_set"
    case conversionsExported = "conversions.exported"
    case transcriptionSettingsChanged = "transcription.settings_changed"
    case transcriptStored = "transcript.stored"
    case transcriptReplaced = "transcript.replaced"
    case transcriptDeleted = "transcript.deleted"
    case analysisStored = "analysis.stored"
    /// Card details found in the text could not be muted in the audio (media refused).
    case recordingMuteFailed = "recording.mute_failed"
    /// Retention: batches past the organisation's cutoffs.
    case transcriptsPurged = "transcripts.purged"
    case callsPurged = "calls.purged"
    /// Offboarding: every call, tracking number (and its routing), suppression, blocked caller, website and visit of the organisation.
    case organisationPurged = "organisation.purged"
}

extension AuditRecord {
    /// Transcript's actions by name: `AuditRecord(…, action: .callStarted, …)`.
    init(org: String, actor: String, action: TranscriptAuditAction, resource: AuditResource, outcome: AuditOutcome = .success, detail: String = "") {
        self.init(org: org, actor: actor, action: AuditAction(action), resource: resource, outcome: outcome, detail: detail)
    }
}
