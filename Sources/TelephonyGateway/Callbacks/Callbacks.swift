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

/// Call backs (issue 31, P3): a person allowed calls.place asks (`PlaceCallback`, their token
/// passed on); transcript says whom to ring and dial (and refuses a withheld, objecting or
/// premium-rate caller); at most one rings per call, ten a minute per firm; Twilio rings the member
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
    /// People only, through a gateway: an operator has no business ringing a firm's clients.
    let policies = Calltrace_Telephony_V1_CallbackServicePolicies(placeCallback: .gateways)

    /// A call back's row is forgotten after this (its plan goes when it is answered or ends).
    static let pendingKeptMs: Int64 = 3_600_000
    /// Call backs a firm may place a minute: a stolen token must not ring phones by the thousand.
    static let perMinute = 10

    func placeCallback(_ request: Calltrace_Telephony_V1_PlaceCallbackRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Telephony_V1_PlaceCallbackResponse {
        let now = clock.nowUnixMs
        let (lastMinute, ringing) = try await repository.read { tx in
            (try tx.callbacks(org: request.orgID, placedSince: now - 60_000), try tx.callbackRinging(org: request.orgID, returning: request.callID))
        }
        guard lastMinute < Self.perMinute else { throw RPCError(.resourceExhausted, "the firm placed \(Self.perMinute) call backs in the last minute: wait a minute") }
        guard !ringing else { throw RPCError(.failedPrecondition, "a call back to this call is ringing already") }
        // Transcript decides, under the person's token: whom to ring and dial, or not at all.
        let prepared = try await transcript.prepareCallback(.with {
            $0.orgID = request.orgID; $0.callID = request.callID; $0.staffNumber = request.staffNumber
        }, options: context.passedOn(timeout: InboundCalls.timeout))
        let plan = CallbackPlan(caller: prepared.callerNumber, trackingNumber: prepared.trackingNumber, staff: prepared.staffNumber,
                                source: prepared.source)
        let token = try SecretBytes.random(16).hexString
        try keys.createKeys(for: request.orgID)
        let sealed = try keys.seal(try JSONEncoder().encode(plan), org: request.orgID, table: "pending_callbacks", column: "plan", row: token)
        try await repository.write { tx in
            try tx.insert(PendingCallback(token: token, org: request.orgID, callbackOf: request.callID, sealedPlan: sealed, placedAt: now))
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
        // A token answered already (or never placed) is not a call back: a replay rings nobody.
        guard let pending = try await repository.read({ tx in try tx.callback(token: token) }), let sealedPlan = pending.sealedPlan,
              pending.callSID == nil || pending.callSID == sid else {
            logger.warning("a call back webhook for no call back waiting", metadata: ["call": "\(sid)"])
            return WebhookAnswer(twiml: TwiML([.hangup]), org: "")
        }
        let plan = try JSONDecoder().decode(CallbackPlan.self, from: try keys.open(sealedPlan, org: pending.org, table: "pending_callbacks",
                                                                                   column: "plan", row: token))
        let started = try await transcript.startCall(.with {
            $0.callID = sid; $0.trackingNumber = plan.trackingNumber; $0.callerNumber = plan.caller; $0.direction = .outbound
            $0.callbackOf = pending.callbackOf; $0.expectedOrgID = pending.org
        }, options: CallOptions(timeout: InboundCalls.timeout))
        // The enquirer's greeting is the "whisper" of this call: what the answering leg hears first.
        let call = CallInFlight(sid: sid, org: pending.org, inbound: false, recorded: started.record, voicemailOn: false,
                                whisper: started.record ? started.notice : "", startedAt: clock.nowUnixMs)
        try await repository.write { tx in
            try tx.insert(call)
            try tx.endCallback(token)
        }
        logger.info("call back answered by staff", metadata: ["call": "\(sid)", "org": "\(pending.org)", "record": "\(started.record)"])
        return WebhookAnswer(twiml: self.plan.callback(started, call: sid, plan: plan), org: pending.org)
    }
}

extension ServerContext {
    /// Options that pass on, to a service, the person this call acts for: their token, and the
    /// address the web app saw (only when it is a gateway the server trusts for it).
    func passedOn(timeout: Duration) -> CallOptions {
        var metadata = Metadata()
        if let token = self.metadata["authorization"] { try? metadata.add("authorization", token) }
        if let clientAddress { try? metadata.add(ServerContext.clientAddressKey, clientAddress) }
        return CallOptions(timeout: timeout, metadata: metadata)
    }
}
