import CallTraceSync
/// What the gateway counts for operators (`GetMetrics`): webhooks refused or unexpected, calls
/// refused, recordings Twilio could not make. Counts only, never a number or a value.
final class TelephonyCounters: Sendable {
    enum Counter: String, CaseIterable, Sendable {
        /// A webhook without a valid signature, or for another account: 403.
        case webhookRefused = "telephony_webhooks_refused_total"
        /// A webhook whose shape is not Twilio's (missing or malformed parameters): 400.
        case webhookUnexpected = "telephony_webhooks_unexpected_total"
        /// A webhook that failed for another reason (a service refusing the gateway, storage): 500.
        case webhookFailed = "telephony_webhooks_failed_total"
        /// A retry answered from the stored answer.
        case webhookRepeated = "telephony_webhooks_repeated_total"
        case unknownNumber = "telephony_calls_unknown_number_total"
        case blockedCaller = "telephony_calls_blocked_total"
        /// A status or recording callback about a call this gateway does not know.
        case unknownCall = "telephony_callbacks_unknown_call_total"
        case recordingFailed = "telephony_recordings_failed_at_twilio_total"
        /// A recording media would not take (its call deleted, its firm offboarded, the caller
        /// objected): deleted at Twilio without being stored.
        case recordingDiscarded = "telephony_recordings_discarded_total"
        /// A recording Twilio served as something media does not take (not a WAV, or a WAV of
        /// another encoding): left at Twilio for an operator, its job dead-lettered, and counted
        /// by the day-old gauge until someone deals with it.
        case recordingUnreadable = "telephony_recordings_unreadable_total"
        /// A Twilio error webhook (its debugger's callback).
        case twilioError = "telephony_twilio_errors_total"
    }

    private let counts = Locked([Counter: Int]())

    func add(_ counter: Counter) { counts.withLock { $0[counter, default: 0] += 1 } }

    func value(_ counter: Counter) -> Int { counts.withLock { $0[counter] ?? 0 } }

    var gauges: [(name: String, value: Double)] {
        let now = counts.withLock { $0 }
        return Counter.allCases.map { ($0.rawValue, Double(now[$0] ?? 0)) }
    }
}
