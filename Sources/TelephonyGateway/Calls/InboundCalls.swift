import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import Foundation
import Logging
import Twilio

/// What the gateway answers one webhook: TwiML for Twilio to follow, or nothing (204), for the
/// firm it concerns (its answer is kept sealed under that firm's key, for retries).
struct WebhookAnswer: Sendable {
    let twiml: TwiML?
    /// Empty when the webhook concerns no firm (a refusal, an unknown call).
    let org: String

    static let nothing = WebhookAnswer(twiml: nil, org: "")
}

/// A webhook whose parameters are not what Twilio documents: logged without values and counted,
/// answered 400; never a crash.
struct UnexpectedWebhook: Error, CustomStringConvertible {
    let description: String
}

/// Inbound calls through Twilio's webhooks (issue 31): each webhook is one step of a call's life,
/// turned into transcript's `StartCall`/`CompleteCall` and the TwiML of `CallPlan`. The gateway
/// acts as itself (`gateway:telephony`): it is the gateway the ingest RPCs are limited to.
struct InboundCalls: Sendable {
    let repository: any TelephonyRepository
    let transcript: Calltrace_Transcript_V1_CallServiceClient
    let jobs: JobQueue
    let plan: CallPlan
    let clock: any WallClock
    let counters: TelephonyCounters
    let logger: Logger

    /// How long a webhook waits for transcript: Twilio waits about 15 s for TwiML in all.
    static let timeout: Duration = .seconds(5)

    /// The voice webhook: a call arrived on a tracking number.
    func arrived(_ parameters: FormParameters) async throws -> WebhookAnswer {
        let sid = try Self.callSID(parameters)
        let caller = parameters["From"] ?? ""
        let called = parameters["To"] ?? ""
        // Whose number it is at Twilio, when this gateway bought or imported it: transcript takes
        // the call only for that firm.
        let holder = try await repository.read { tx in try PhoneNumber.e164(called).flatMap(tx.number)?.org } ?? ""
        let started: Calltrace_Transcript_V1_StartCallResponse
        do {
            started = try await transcript.startCall(.with {
                $0.callID = sid; $0.trackingNumber = called; $0.callerNumber = caller; $0.direction = .inbound; $0.expectedOrgID = holder
            }, options: CallOptions(timeout: Self.timeout))
        } catch let error as RPCError where error.code == .notFound || error.code == .invalidArgument {
            // A number no firm holds (or a caller with no usable number): nothing to connect to.
            counters.add(.unknownNumber)
            logger.warning("call refused: transcript knows no firm for it", metadata: ["call": "\(sid)", "code": "\(error.code)"])
            return WebhookAnswer(twiml: TwiML([.reject(.rejected)]), org: "")
        }
        if started.blocked {
            counters.add(.blockedCaller)
            logger.info("call rejected: the caller is on the firm's block list", metadata: ["call": "\(sid)", "org": "\(started.orgID)"])
            return WebhookAnswer(twiml: plan.answer(started, call: sid, caller: caller), org: started.orgID)
        }
        let rung = started.officeOpen && !started.routing.destinations.isEmpty
        let call = CallInFlight(sid: sid, org: started.orgID, inbound: true, recorded: started.record, voicemailOn: started.routing.voicemail,
                                whisper: CallPlan.whisperText(started), startedAt: clock.nowUnixMs, dialStatus: rung ? "" : CallPlan.notRung)
        try await repository.write { tx in try tx.insert(call) }
        logger.info("call answered", metadata: ["call": "\(sid)", "org": "\(started.orgID)", "record": "\(started.record)", "rung": "\(rung)"])
        return WebhookAnswer(twiml: plan.answer(started, call: sid, caller: caller), org: started.orgID)
    }

    /// The dialled phones stopped ringing (answered and ended, busy, unanswered): voicemail or goodbye.
    func dialEnded(_ parameters: FormParameters) async throws -> WebhookAnswer {
        let sid = try Self.callSID(parameters)
        let status = parameters["DialCallStatus"] ?? ""
        guard let call = try await repository.write({ tx -> CallInFlight? in
            try tx.setDialStatus(status, call: sid)
            return try tx.call(sid)
        }) else { return try unknown(sid, hangingUp: true) }
        guard call.inbound else { return WebhookAnswer(twiml: plan.afterCallback(status: status), org: call.org) }
        return WebhookAnswer(twiml: plan.afterDial(status: status, voicemail: call.voicemailOn, recorded: call.recorded), org: call.org)
    }

    /// Whoever answered hears the source before the caller is put through.
    func whisper(_ parameters: FormParameters, call sid: String) async throws -> WebhookAnswer {
        guard TwilioSID.isValid(sid, prefix: "CA") else { throw UnexpectedWebhook(description: "a whisper without a well-formed call") }
        guard let call = try await repository.read({ tx in try tx.call(sid) }) else { return try unknown(sid, hangingUp: false) }
        return WebhookAnswer(twiml: plan.whisper(call.whisper), org: call.org)
    }

    /// A voicemail was left (the `<Record>` ended): the call's outcome is a voicemail.
    func voicemailLeft(_ parameters: FormParameters) async throws -> WebhookAnswer {
        let sid = try Self.callSID(parameters)
        guard let call = try await repository.write({ tx -> CallInFlight? in
            try tx.markVoicemail(call: sid)
            return try tx.call(sid)
        }) else { return try unknown(sid, hangingUp: true) }
        return WebhookAnswer(twiml: TwiML([.hangup]), org: call.org)
    }

    /// The call's status changed: once it ended, transcript hears how (a durable job, so an
    /// outage of transcript delays it and loses nothing).
    func statusChanged(_ parameters: FormParameters) async throws -> WebhookAnswer {
        let sid = try Self.callSID(parameters)
        let status = parameters["CallStatus"] ?? ""
        guard Self.finalStatuses.contains(status) else { return .nothing }
        let duration = min(UInt64(parameters["CallDuration"] ?? "") ?? 0, Self.longestCallSeconds)
        let now = clock.nowUnixMs
        let org = try await repository.write { [jobs] tx -> String? in
            guard let call = try tx.call(sid) else { return nil }
            guard try tx.markCompleted(call: sid, at: now) else { return call.org }  // told already
            let outcome = CallPlan.outcome(dialStatus: call.dialStatus, voicemailTaken: call.voicemailTaken, callStatus: status)
            try jobs.enqueue(CompleteCall(call: sid, org: call.org, outcome: outcome.rawValue, durationMs: duration * 1000, endedAt: now),
                             idempotencyKey: "\(CompleteCall.kind):\(sid)", in: tx.connection)
            return call.org
        }
        if let org { return WebhookAnswer(twiml: nil, org: org) }
        // A call back whose member of staff never answered: there was no call to complete.
        if let org = try await repository.write({ tx -> String? in
            guard let pending = try tx.callback(callSID: sid) else { return nil }
            try tx.endCallback(pending.token)
            return pending.org
        }) {
            logger.info("call back not answered by staff", metadata: ["call": "\(sid)", "org": "\(org)", "status": "\(status)"])
            return WebhookAnswer(twiml: nil, org: org)
        }
        return try unknown(sid, hangingUp: false)
    }

    /// A recording is ready at Twilio: a durable job moves it into media, then deletes it there.
    func recordingReady(_ parameters: FormParameters) async throws -> WebhookAnswer {
        let sid = try Self.callSID(parameters)
        guard let recording = parameters["RecordingSid"], TwilioSID.isValid(recording, prefix: "RE") else {
            throw UnexpectedWebhook(description: "a recording callback without a RecordingSid")
        }
        let status = parameters["RecordingStatus"] ?? ""
        guard status == "completed" else {
            guard Self.recordingFailures.contains(status) else {
                throw UnexpectedWebhook(description: "a recording callback with an unknown RecordingStatus")
            }
            counters.add(.recordingFailed)
            logger.error("Twilio could not make a recording", metadata: ["call": "\(sid)", "recording": "\(recording)", "status": "\(status)"])
            return .nothing
        }
        let seconds = min(UInt64(parameters["RecordingDuration"] ?? "") ?? 0, Self.longestCallSeconds)
        let now = clock.nowUnixMs
        let org = try await repository.write { [jobs] tx -> String? in
            guard let call = try tx.call(sid) else { return nil }
            if try tx.insert(RecordingTransferRow(sid: recording, callSID: sid, org: call.org, receivedAt: now)) {
                try jobs.enqueue(TransferRecording(recording: recording, durationMs: seconds * 1000),
                                 idempotencyKey: "\(TransferRecording.kind):\(recording)", in: tx.connection)
            }
            return call.org
        }
        guard let org else { return try unknown(sid, hangingUp: false) }
        logger.info("recording to fetch", metadata: ["call": "\(sid)", "recording": "\(recording)", "org": "\(org)"])
        return WebhookAnswer(twiml: nil, org: org)
    }

    /// Twilio ends a call after 4 hours; a longer duration in a callback is not believed.
    static let longestCallSeconds: UInt64 = 4 * 3600

    /// Twilio's `RecordingStatus` of a recording it could not make.
    static let recordingFailures: Set<String> = ["failed", "absent"]

    /// Call statuses after which nothing more happens to a call.
    static let finalStatuses: Set<String> = ["completed", "busy", "no-answer", "failed", "canceled"]

    static func callSID(_ parameters: FormParameters) throws -> String {
        guard let sid = parameters["CallSid"], TwilioSID.isValid(sid, prefix: "CA") else {
            throw UnexpectedWebhook(description: "a webhook without a well-formed CallSid")
        }
        return sid
    }

    /// A webhook about a call this gateway never answered (or forgot): counted, and ended politely.
    private func unknown(_ sid: String, hangingUp: Bool) throws -> WebhookAnswer {
        counters.add(.unknownCall)
        logger.warning("a webhook about a call this gateway does not know", metadata: ["call": "\(sid)"])
        return WebhookAnswer(twiml: hangingUp ? TwiML([.hangup]) : nil, org: "")
    }
}

/// Tells transcript how a call ended.
struct CompleteCall: DurableJob {
    static let kind = "telephony.call_complete"
    let call: String
    let org: String
    /// `Calltrace_Transcript_V1_Outcome`'s raw value.
    let outcome: Int
    let durationMs: UInt64
    let endedAt: Int64
}

struct CompleteCallHandler: DurableJobHandler {
    let transcript: Calltrace_Transcript_V1_CallServiceClient

    func run(_ work: CompleteCall, job: Job) async throws -> JobOutcome {
        do {
            _ = try await transcript.completeCall(.with {
                $0.callID = work.call; $0.orgID = work.org; $0.endedAtUnixMs = work.endedAt; $0.durationMs = work.durationMs
                $0.outcome = Calltrace_Transcript_V1_Outcome(rawValue: work.outcome) ?? .missed
            }, options: CallOptions(timeout: .seconds(10)))
        } catch let error as RPCError where error.code == .notFound {
            throw PermanentJobFailure("transcript does not know call \(work.call) (deleted since?)")
        }
        return .done
    }
}
