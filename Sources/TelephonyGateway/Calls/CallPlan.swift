import CallTraceKeys
import CallTraceProto
import Twilio

/// The gateway's webhook addresses, as Twilio is given them: the public base nginx serves, then
/// a fixed path per webhook. The signatures are over exactly these.
struct WebhookURLs: Sendable, Equatable {
    /// `https://hooks.calltrace.example`, no trailing slash.
    let base: String

    static let voicePath = "/twilio/voice"
    static let statusPath = "/twilio/status"
    static let dialPath = "/twilio/dial"
    static let whisperPath = "/twilio/whisper"
    static let recordingPath = "/twilio/recording"
    static let voicemailPath = "/twilio/voicemail"
    static let callbackPath = "/twilio/callback"

    var voice: String { base + Self.voicePath }
    var status: String { base + Self.statusPath }
    var dial: String { base + Self.dialPath }
    var recording: String { base + Self.recordingPath }
    var voicemail: String { base + Self.voicemailPath }
    /// What whoever answers hears first, for the call `sid` (Twilio requests it on the answering leg).
    func whisper(call sid: String) -> String { base + Self.whisperPath + "?call=" + sid }
    /// What a call back does once the member of staff answers.
    func callback(token: String) -> String { base + Self.callbackPath + "?cb=" + token }
    /// A number's webhooks, as bought or imported numbers are given them.
    var numberWebhooks: NumberWebhooks { NumberWebhooks(voiceURL: voice, statusCallback: status) }
}

/// What the gateway tells Twilio to do with an inbound call, decided from transcript's answer
/// to `StartCall` (issue 31): the firm's notice when it records and its switch is on, then its
/// phones rung with the caller's number passed through, a whisper to whoever answers, both legs
/// recorded from answer (dual channel); voicemail when nobody answers or the office is closed,
/// if the firm wants it and the call may be recorded; a blocked caller rejected. Kept apart
/// from HTTP and the database so the rules read (and are tested) alone.
struct CallPlan: Sendable {
    typealias Started = Calltrace_Transcript_V1_StartCallResponse

    let urls: WebhookURLs
    /// Twilio's `<Say voice>` for the gateway's own words.
    let voice: String

    static let ringSecondsDefault = 20
    static let voicemailMaxSeconds = 300
    static let closedDefault = "Thank you for calling. The office is closed just now."
    static let leaveMessage = "Please leave a message after the tone, and we will call you back."
    static let nobodyAnswered = "Sorry, nobody could answer just now."
    static let callAgain = "Please call again later. Goodbye."

    /// The dial's outcome as the call's row keeps it when nobody was rung (office closed, or no phones).
    static let notRung = "not-rung"

    /// The answer to the voice webhook for call `sid` from `caller`.
    func answer(_ started: Started, call sid: String, caller: String) -> TwiML {
        if started.blocked { return TwiML([.reject(.rejected)]) }
        var verbs: [TwiML.Verb] = []
        if started.record, !started.notice.isEmpty { verbs.append(say(started.notice)) }
        let routing = started.routing
        guard started.officeOpen, !routing.destinations.isEmpty else {
            let closed = routing.outOfHoursMessage.isEmpty ? Self.closedDefault : routing.outOfHoursMessage
            return TwiML(verbs + [say(closed)] + voicemailOrGoodbye(started))
        }
        let ring = routing.ringSeconds == 0 ? Self.ringSecondsDefault : Int(routing.ringSeconds)
        let dial = TwiML.Dial(
            routing.destinations.map { TwiML.Number($0, url: urls.whisper(call: sid), method: .post) },
            action: urls.dial, method: .post, callerId: Self.passedThrough(caller), timeoutSeconds: ring,
            record: started.record ? .recordFromAnswerDual : nil,
            recordingStatusCallback: started.record ? urls.recording : nil,
            recordingStatusCallbackMethod: started.record ? .post : nil,
            recordingStatusCallbackEvent: started.record ? [.completed] : [])
        return TwiML(verbs + [.dial(dial)])
    }

    /// After the dial: nothing more when someone answered or the caller hung up; otherwise
    /// voicemail, or an apology.
    func afterDial(status: String, voicemail: Bool, recorded: Bool) -> TwiML {
        switch status {
        case "completed", "answered", "canceled": return TwiML([.hangup])
        default:
            guard voicemail, recorded else { return TwiML([say(Self.nobodyAnswered + " " + Self.callAgain), .hangup]) }
            return TwiML([say(Self.nobodyAnswered)] + recordVoicemail())
        }
    }

    /// What whoever answers hears before the caller is connected.
    func whisper(_ text: String) -> TwiML { TwiML([say(text)]) }

    /// A call back, once the member of staff answered (call `sid`): they hear whom they are about
    /// to call and why, then the enquirer is dialled from the firm's number and hears the firm's
    /// returned-call greeting (which says the call is recorded) before they are connected; both
    /// legs recorded from answer.
    func callback(_ started: Started, call sid: String, plan: CallbackPlan) -> TwiML {
        let dial = TwiML.Dial(
            [TwiML.Number(plan.caller, url: started.record && !started.notice.isEmpty ? urls.whisper(call: sid) : nil, method: .post)],
            action: urls.dial, method: .post, callerId: plan.trackingNumber, timeoutSeconds: Self.callbackRingSeconds,
            record: started.record ? .recordFromAnswerDual : nil,
            recordingStatusCallback: started.record ? urls.recording : nil,
            recordingStatusCallbackMethod: started.record ? .post : nil,
            recordingStatusCallbackEvent: started.record ? [.completed] : [])
        return TwiML([say(Self.callbackWhisper(source: plan.source, caller: plan.caller, recorded: started.record)), .dial(dial)])
    }

    /// After a call back's dial: the member of staff hears when the enquirer did not answer.
    func afterCallback(status: String) -> TwiML {
        switch status {
        case "completed", "answered", "canceled": TwiML([.hangup])
        default: TwiML([say(Self.callbackUnanswered), .hangup])
        }
    }

    static let callbackRingSeconds = 30
    static let callbackUnanswered = "The caller did not answer. Goodbye."

    /// Who is called and why: the caller by the last three digits of their number (said one by
    /// one), and the enquiry's source.
    static func callbackWhisper(source: String, caller: String, recorded: Bool) -> String {
        let enquiry = source.isEmpty ? "an enquiry" : "a \(source) enquiry"
        let ending = caller.suffix(3).map(String.init).joined(separator: " ")
        return "Calling back the caller whose number ends \(ending), \(enquiry). "
            + (recorded ? "The call is recorded; the caller hears so first." : "This call is not recorded.")
    }

    /// The caller's number shown to whoever answers: theirs when it is one (a withheld caller's
    /// stand-in, such as Twilio's "+266696687", is not), else the tracking number Twilio shows.
    static func passedThrough(_ caller: String) -> String? {
        PhoneNumber.isWithheld(caller) ? nil : PhoneNumber.e164(caller)
    }

    /// The words of the whisper: the firm's own, else "<source> enquiry".
    static func whisperText(_ started: Started) -> String {
        if !started.routing.whisper.isEmpty { return started.routing.whisper }
        return started.source.isEmpty ? "CallTrace enquiry" : "\(started.source) enquiry"
    }

    /// How the call ended, for transcript: a voicemail, an answer, nobody answering (or the
    /// office closed), or the caller hanging up first.
    static func outcome(dialStatus: String, voicemailTaken: Bool, callStatus: String) -> Calltrace_Transcript_V1_Outcome {
        if voicemailTaken { return .voicemail }
        switch dialStatus {
        case "completed", "answered": return .answered
        case "busy", "no-answer", "failed", notRung: return .missed
        default:
            // Never dialled or dial cancelled: the caller hung up during the notice or the ringing.
            return ["busy", "no-answer", "failed"].contains(callStatus) ? .missed : .abandoned
        }
    }

    private func voicemailOrGoodbye(_ started: Started) -> [TwiML.Verb] {
        guard started.routing.voicemail, started.record else { return [say(Self.callAgain), .hangup] }
        return recordVoicemail()
    }

    private func recordVoicemail() -> [TwiML.Verb] {
        [say(Self.leaveMessage),
         .record(.init(action: urls.voicemail, method: .post, maxLengthSeconds: Self.voicemailMaxSeconds, playBeep: true,
                       recordingStatusCallback: urls.recording, recordingStatusCallbackMethod: .post,
                       recordingStatusCallbackEvent: [.completed])),
         .hangup]
    }

    private func say(_ text: String) -> TwiML.Verb { .say(.init(text, voice: voice, language: "en-GB")) }
}
