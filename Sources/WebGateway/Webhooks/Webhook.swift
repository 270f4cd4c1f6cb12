import Foundation

/// What a firm's webhook tells its CRM about: a call completed, a call's transcript ready
/// (transcript's `ListCallEvents`), or the test event a firm admin sends from the page.
enum WebhookEvent: String, CaseIterable, Sendable {
    case callCompleted = "call.completed"
    case transcriptReady = "transcript.ready"
    /// Sent by hand ("Send a test event"): no call, no data.
    case test = "webhook.test"

    /// The events a firm may subscribe to.
    static let subscribable: [WebhookEvent] = [.callCompleted, .transcriptReady]

    var label: String {
        switch self {
        case .callCompleted: "A call completed"
        case .transcriptReady: "A call's transcript is ready"
        case .test: "Test event"
        }
    }
}

/// What a delivery may carry of a call, beside its id: only what the firm ticked. The caller's
/// number, the matter reference and the AI summary are personal data or content: unticked by
/// default, and fetched with transcripts.read; transcript text is never sent.
enum WebhookField: String, CaseIterable, Sendable {
    case source, direction
    case startedAt = "started_at"
    case durationSeconds = "duration_seconds"
    case outcome
    case matterReference = "matter_reference"
    case callerNumber = "caller_number"
    case summary

    /// Ticked on a new subscription's form.
    static let defaults: Set<WebhookField> = [.source, .direction, .startedAt, .durationSeconds, .outcome]

    /// Whether GetCall shows it only to a token with transcripts.read (or it comes from GetTranscript).
    var needsTranscriptsRead: Bool { [.matterReference, .callerNumber, .summary].contains(self) }

    var label: String {
        switch self {
        case .source: "Marketing source"
        case .direction: "Direction (inbound or callback)"
        case .startedAt: "When it started"
        case .durationSeconds: "Duration"
        case .outcome: "Outcome (answered, missed…)"
        case .matterReference: "Matter reference"
        case .callerNumber: "Caller's phone number (personal data)"
        case .summary: "AI summary of the call (content)"
        }
    }
}

/// A firm's subscription, as stored: the URL, secret and API token sealed under the firm's key
/// (`WebhookRules` opens them); `cursor` is the last event sequence handed to a delivery.
struct WebhookSubscription: Sendable, Equatable {
    let id: String
    let org: String
    /// The URL's host, for logs and the list (the full URL, which may hold a key in its query, is sealed).
    let host: String
    let sealedURL: Data
    let events: Set<WebhookEvent>
    let fields: Set<WebhookField>
    let sealedSecret: Data
    let sealedToken: Data
    /// Identity's id of the API token, to revoke it when the subscription goes.
    let tokenID: String
    var cursor: Int64
    /// The user who made it (the token is theirs).
    let createdBy: String
    let createdAt: Int64
    /// Nil while active; why it stopped (set by a person, or because its token stopped working).
    var pausedReason: String?

    var isActive: Bool { pausedReason == nil }
}

/// One event's delivery to one subscription (no call content: the event's kind, the call's id,
/// and how sending it went).
struct WebhookDelivery: Sendable, Equatable {
    enum State: String, Sendable {
        /// Queued, or waiting to try again.
        case pending
        case delivered
        /// Every attempt failed (about a day of them).
        case failed
        /// The subscription was paused before it went: sent again on resume.
        case held
        /// The call was deleted before it went: nothing to send.
        case skipped
    }

    let id: String
    let subscription: String
    let org: String
    /// The event's sequence in transcript's feed (0 for a test event).
    let sequence: Int64
    let event: WebhookEvent
    let callID: String
    let occurredAt: Int64
    var state: State
    var attempts: Int
    /// The receiver's last HTTP status (0: no answer).
    var lastStatus: Int
    var lastAttemptAt: Int64
    var deliveredAt: Int64?
    let createdAt: Int64
}
