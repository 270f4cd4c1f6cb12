import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import Foundation
import Logging
import Twilio

/// Whom a call back rings and dials, as transcript's `PrepareCallback` said: kept sealed while
/// the member of staff's phone rings.
struct CallbackPlan: Codable, Sendable, Equatable {
    let caller: String
    let trackingNumber: String
    let staff: String
    let source: String
}

/// Call backs (issue 31, P3): a person allowed calls.place asks (`PlaceCallback`); transcript
/// says whom to ring and dial (and refuses a withheld or objecting caller); Twilio rings the member
/// of staff, and when they answer (`answered`, the call's `Url`) the returned call starts in
/// transcript as an outbound call linked to the one it returns, and the enquirer is dialled,
/// hearing the firm's returned-call greeting before they are connected. From there it is a call
/// like any other: its dial, status and recording webhooks are the inbound calls'.
struct Callbacks: Calltrace_Telephony_V1_CallbackServiceHandler {
    let repository: any TelephonyRepository
    let transcript: Calltrace_Transcript_V1_CallServiceClient
    let twilio: TwilioClient
    let authorizer: any Authorizing
    let keys: KeyRing
    let plan: CallPlan
    let clock: any WallClock
    let logger: Logger
    let policies = Calltrace_Telephony_V1_CallbackServicePolicies(placeCallback: .gateways | .operators)

    /// A call back whose member of staff never answered is forgotten after this (Twilio stops
    /// ringing within a minute).
    static let pendingKeptMs: Int64 = 3_600_000

    func placeCallback(_ request: Calltrace_Telephony_V1_PlaceCallbackRequest, context: ServerContext) async throws
        -> Calltrace_Telephony_V1_PlaceCallbackResponse {
        let who = try await context.principal(in: request.orgID, may: .callsPlace, via: authorizer)
        let prepared = try await transcript.prepareCallback(.with {
            $0.orgID = request.orgID; $0.callID = request.callID; $0.staffNumber = request.staffNumber; $0.actor = who.actor
        }, options: CallOptions(timeout: InboundCalls.timeout))
        let plan = CallbackPlan(caller: prepared.callerNumber, trackingNumber: prepared.trackingNumber, staff: prepared.staffNumber,
                                source: prepared.source)
        let token = try SecretBytes.random(16).hexString
        try keys.createKeys(for: request.orgID)
        let sealed = try keys.seal(try JSONEncoder().encode(plan), org: request.orgID, table: "pending_callbacks", column: "plan", row: token)
        try await repository.write { tx in
            try tx.insert(PendingCallback(token: token, org: request.orgID, callbackOf: request.callID, sealedPlan: sealed, placedAt: clock.nowUnixMs))
        }
        let placed: CallResource
        do {
            placed = try await twilio.placeCall(OutboundCall(to: plan.staff, from: plan.trackingNumber, instructions: .url(self.plan.urls.callback(token: token)),
                                                             statusCallback: self.plan.urls.status, statusCallbackEvents: [.completed],
                                                             timeoutSeconds: CallPlan.callbackRingSeconds))
        } catch {
            try await repository.write { tx in try tx.deleteCallback(token) }
            throw NumberHandler.rpcError(error)
        }
        try await repository.write { tx in try tx.setCallSID(placed.sid, callback: token) }
        logger.info("call back placed", metadata: ["call": "\(placed.sid)", "returns": "\(request.callID)", "org": "\(request.orgID)"])
        return .with { $0.callID = placed.sid }
    }

    /// The member of staff answered (Twilio fetched the call's `Url`): the returned call starts in
    /// transcript, and Twilio is told what they hear and whom it dials.
    func answered(_ parameters: FormParameters, token: String) async throws -> WebhookAnswer {
        let sid = try InboundCalls.callSID(parameters)
        guard let pending = try await repository.read({ tx in try tx.callback(token: token) }), pending.callSID == nil || pending.callSID == sid else {
            logger.warning("a call back webhook for no call back waiting", metadata: ["call": "\(sid)"])
            return WebhookAnswer(twiml: TwiML([.hangup]), org: "")
        }
        let plan = try JSONDecoder().decode(CallbackPlan.self, from: try keys.open(pending.sealedPlan, org: pending.org, table: "pending_callbacks",
                                                                                   column: "plan", row: token))
        let started = try await transcript.startCall(.with {
            $0.callID = sid; $0.trackingNumber = plan.trackingNumber; $0.callerNumber = plan.caller; $0.direction = .outbound
            $0.callbackOf = pending.callbackOf
        }, options: CallOptions(timeout: InboundCalls.timeout))
        // The enquirer's greeting is the "whisper" of this call: what the answering leg hears first.
        let call = CallInFlight(sid: sid, org: pending.org, inbound: false, recorded: started.record, voicemailOn: false,
                                whisper: started.record ? started.notice : "", startedAt: clock.nowUnixMs)
        try await repository.write { tx in
            try tx.insert(call)
            try tx.deleteCallback(token)
        }
        logger.info("call back answered by staff", metadata: ["call": "\(sid)", "org": "\(pending.org)", "record": "\(started.record)"])
        return WebhookAnswer(twiml: self.plan.callback(started, call: sid, plan: plan), org: pending.org)
    }
}
