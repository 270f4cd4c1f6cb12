public import CallTraceOutbound
public import Foundation
public import Twilio

/// Plays a call's life against a gateway the way Twilio does: it POSTs the voice webhook, reads
/// the TwiML answer and follows it (notices, `<Dial>` with its whisper and recording, `<Record>`
/// for voicemail, `<Reject>`, `<Redirect>`), then the recording-status, action and call-status
/// callbacks, each signed with the account's auth token over the *public* URL (`TwilioSignature`)
/// and sent to the gateway's own address with Twilio's parameter names and a fresh
/// `I-Twilio-Idempotency-Token`. Recordings it makes are held by the `FakeTwilio`, serving the
/// WAV bytes the caller gave, until the gateway deletes them.
///
/// The order of callbacks for an answered, recorded `<Dial>`: the recording-status callback
/// (`RecordingStatus=completed`), then the `<Dial action>` (`DialCallStatus=completed`), then
/// the call's status callback (`CallStatus=completed`, `CallDuration`). Real Twilio may deliver
/// the recording callback later than the others; a gateway must not depend on this order.
public struct CallDriver: Sendable {
    /// What happens to the leg `<Dial>` rings.
    public enum DialledLeg: Sendable, Equatable {
        /// Picks up after ringing and talks for `talkSeconds`.
        case answers(talkSeconds: Int = 42)
        case noAnswer
        case busy
        case failed

        var dialStatus: String {
            switch self {
            case .answers: "completed"
            case .noAnswer: "no-answer"
            case .busy: "busy"
            case .failed: "failed"
            }
        }
    }

    /// A call to one of the account's numbers.
    public struct InboundCall: Sendable {
        public var from: String
        public var to: String
        public var dialledLeg: DialledLeg
        /// The WAV a recording of this call serves (a dual-channel `<Dial>` recording or a voicemail).
        public var recordingWAV: Data
        /// How long the caller speaks after the beep of `<Record>`.
        public var voicemailSeconds: Int
        /// The voice webhook; nil: the number's `voice_url` at the fake.
        public var voiceURL: String?
        /// The call-status callback; nil: the number's `status_callback` at the fake (none: not sent).
        public var statusCallback: String?

        public init(from: String, to: String, dialledLeg: DialledLeg = .answers(), recordingWAV: Data, voicemailSeconds: Int = 12,
                    voiceURL: String? = nil, statusCallback: String? = nil) {
            self.from = from
            self.to = to
            self.dialledLeg = dialledLeg
            self.recordingWAV = recordingWAV
            self.voicemailSeconds = voicemailSeconds
            self.voiceURL = voiceURL
            self.statusCallback = statusCallback
        }
    }

    /// One webhook as sent: enough to check it and to send it again.
    public struct Webhook: Sendable {
        /// The public URL that was signed.
        public let url: String
        /// Where it was sent (the gateway's own address).
        public let target: String
        public let parameters: FormParameters
        public let signature: String
        public let idempotencyToken: String
        /// The gateway's answer; 0 when it gave none.
        public let status: Int
        public let answer: Data
    }

    /// What one call did, as a test asserts on it.
    public struct PlayedCall: Sendable {
        public enum Heard: Sendable, Equatable {
            /// `<Say>` to the caller.
            case said(String)
            /// `<Play>` of a URL.
            case played(String)
            /// `<Say>` of a `<Number url>` whisper, heard by whoever answered.
            case whispered(String)
        }

        public var callSid: String
        public var heard: [Heard] = []
        /// The numbers `<Dial>` rang.
        public var dialled: [String] = []
        /// The `callerId` each `<Dial>` showed (nil: the caller's own number).
        public var callerIDs: [String?] = []
        public var rejected: TwiML.RejectReason?
        /// The recordings made (still at the fake until the gateway deletes them).
        public var recordingSIDs: [String] = []
        /// The call's final `CallStatus`: `completed`, `busy`, `no-answer` or `failed`.
        public var finalStatus = "completed"
        public var webhooks: [Webhook] = []

        /// The webhook whose signed URL's path ends in `suffix`.
        public func webhooks(to suffix: String) -> [Webhook] {
            webhooks.filter { (URL(string: $0.url)?.path ?? $0.url).hasSuffix(suffix) }
        }
    }

    public let fake: FakeTwilio
    /// Where the gateway listens (e.g. `http://127.0.0.1:8089`; nginx's place in production).
    public let gatewayURL: String
    /// The gateway's public base URL, as the numbers' webhooks name it (`https://telephony.example.test`).
    public let publicURL: String
    public let transport: any HTTPSTransport
    /// How long a webhook the gateway did not answer (no connection, cut off, or a 5xx) is sent
    /// again, with the same idempotency token, as Twilio does under its connection overrides
    /// (`#rc`, `#rp`); nil: sent once, as by default.
    public let retryFor: Duration?

    /// - Parameter transport: default: libcurl, plain `http://` allowed to loopback only.
    public init(fake: FakeTwilio, gatewayURL: String, publicURL: String,
                transport: any HTTPSTransport = CurlHTTPS(allowsLoopbackHTTP: true), retryFor: Duration? = nil) {
        self.fake = fake
        self.retryFor = retryFor
        self.gatewayURL = gatewayURL.hasSuffix("/") ? String(gatewayURL.dropLast()) : gatewayURL
        self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
        self.transport = transport
    }

    /// Plays an inbound call from its first ring to its status callback.
    public func play(_ call: InboundCall) async throws -> PlayedCall {
        let number = fake.incomingNumber(call.to)
        guard let voiceURL = call.voiceURL ?? number?.voiceUrl else { throw DriverError("the called number has no voice URL at the fake") }
        var run = Run(driver: self, callSid: FakeTwilio.newSID("CA"), from: call.from, to: call.to, direction: "inbound",
                      leg: call.dialledLeg, wav: call.recordingWAV, voicemailSeconds: call.voicemailSeconds)
        try await run.start(voiceURL: voiceURL, statusCallback: call.statusCallback ?? number?.statusCallback)
        return run.played
    }

    /// Plays a call placed through `POST Calls.json`: `to` answers, Twilio fetches the call's
    /// `Url` (or reads its `Twiml`) and follows it; its `StatusCallback` gets the final status.
    public func answerPlacedCall(sid: String, dialledLeg: DialledLeg = .answers(), recordingWAV: Data) async throws -> PlayedCall {
        guard let placed = fake.placedCalls.first(where: { $0.call.sid == sid }) else { throw DriverError("no call \(sid) was placed") }
        var run = Run(driver: self, callSid: sid, from: placed.call.from, to: placed.call.to, direction: "outbound-api",
                      leg: dialledLeg, wav: recordingWAV, voicemailSeconds: 0)
        if let twiml = placed.form["Twiml"] {
            try await run.start(document: try TwiMLReader.read(Data(twiml.utf8)), url: nil, statusCallback: placed.form["StatusCallback"])
        } else if let url = placed.form["Url"] {
            try await run.start(voiceURL: url, statusCallback: placed.form["StatusCallback"])
        }
        return run.played
    }

    /// Sends `webhook` again exactly as before (same body, signature and idempotency token), as
    /// Twilio retries one, and returns the new answer.
    public func resend(_ webhook: Webhook) async throws -> Webhook {
        try await post(url: webhook.url, parameters: webhook.parameters, token: webhook.idempotencyToken)
    }

    /// Signs `parameters` over `url` and POSTs them to the gateway's address for it.
    public func post(url: String, parameters: FormParameters, token: String = UUID().uuidString.lowercased()) async throws -> Webhook {
        guard url.hasPrefix(publicURL + "/") || url == publicURL else {
            throw DriverError("a webhook URL is outside the gateway's public address: \(url)")
        }
        let target = gatewayURL + url.dropFirst(publicURL.count)
        let signature = TwilioSignature(authToken: fake.account.authToken).signature(url: url, parameters: parameters)
        var request = HTTPSRequest(url: target, headers: [
            (TwilioSignature.header, signature), ("I-Twilio-Idempotency-Token", token),
            ("Content-Type", "application/x-www-form-urlencoded"), ("User-Agent", "TwilioProxy/1.1"), ("Accept", "*/*"),
        ], body: parameters.encoded, timeout: .seconds(30))
        request.method = "POST"
        let deadline = retryFor.map { ContinuousClock.now + $0 }
        var response: HTTPSResponse
        var pause = Duration.milliseconds(50)
        while true {
            do {
                response = try await transport.send(request)
                if response.status < 500 { break }
            } catch {
                guard let deadline, ContinuousClock.now < deadline else { throw error }
                try await Task.sleep(for: pause)  // Twilio's pause before it sends again, longer each time
                pause = min(pause * 2, .seconds(1))
                continue
            }
            guard let deadline, ContinuousClock.now < deadline else { break }
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(1))
        }
        return Webhook(url: url, target: target, parameters: parameters, signature: signature, idempotencyToken: token,
                       status: response.status, answer: response.body)
    }
}

public struct DriverError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One call being played: its parameters and what it has done so far.
private struct Run {
    let driver: CallDriver
    let callSid: String
    let from: String
    let to: String
    let direction: String
    let leg: CallDriver.DialledLeg
    let wav: Data
    let voicemailSeconds: Int
    var played: CallDriver.PlayedCall
    var answered = false
    var seconds = 0

    init(driver: CallDriver, callSid: String, from: String, to: String, direction: String, leg: CallDriver.DialledLeg, wav: Data,
         voicemailSeconds: Int) {
        self.driver = driver
        self.callSid = callSid
        self.from = from
        self.to = to
        self.direction = direction
        self.leg = leg
        self.wav = wav
        self.voicemailSeconds = voicemailSeconds
        played = CallDriver.PlayedCall(callSid: callSid)
    }

    /// Twilio's parameters of every request about this call.
    func parameters(status: String) -> FormParameters {
        ["AccountSid": driver.fake.account.sid, "ApiVersion": "2010-04-01", "CallSid": callSid, "CallStatus": status,
         "Called": to, "CalledCountry": "GB", "Caller": from, "CallerCountry": "GB", "Direction": direction,
         "From": from, "FromCountry": "GB", "To": to, "ToCountry": "GB"]
    }

    mutating func start(voiceURL: String, statusCallback: String?) async throws {
        let status = direction == "inbound" ? "ringing" : "in-progress"
        if direction != "inbound" { answered = true }
        guard let document = try await fetch(voiceURL, parameters(status: status)) else {
            played.finalStatus = "failed"
            try await finish(statusCallback)
            return
        }
        try await start(document: document, url: voiceURL, statusCallback: statusCallback)
    }

    mutating func start(document: TwiML, url: String?, statusCallback: String?) async throws {
        if direction != "inbound" { answered = true }
        try await follow(document, url: url)
        try await finish(statusCallback)
    }

    /// POSTs a TwiML webhook and reads its answer; nil when the gateway did not answer 200
    /// (Twilio would play its application-error message and hang up).
    mutating func fetch(_ url: String, _ parameters: FormParameters) async throws -> TwiML? {
        let sent = try await driver.post(url: url, parameters: parameters)
        played.webhooks.append(sent)
        guard sent.status == 200 else { return nil }
        return try TwiMLReader.read(sent.answer)
    }

    mutating func notify(_ url: String?, _ parameters: FormParameters) async throws {
        guard let url else { return }
        played.webhooks.append(try await driver.post(url: url, parameters: parameters))
    }

    /// Resolves a URL in a TwiML document against the document's own URL, as Twilio does.
    func resolve(_ url: String, against base: String?) -> String {
        guard let base, let resolved = URL(string: url, relativeTo: URL(string: base)) else { return url }
        return resolved.absoluteString
    }

    /// Follows a document's verbs until the call ends or control passes to another document.
    mutating func follow(_ document: TwiML, url documentURL: String?) async throws {
        for verb in document.verbs {
            switch verb {
            case .say(let say):
                answered = true
                played.heard.append(.said(say.text))
            case .play(let play):
                answered = true
                played.heard.append(.played(play.url))
            case .pause(let length):
                answered = true
                seconds += length
            case .reject(let reason):
                played.rejected = reason
                // Only a first <Reject> leaves the call unanswered; later it simply hangs up.
                played.finalStatus = answered ? "completed" : (reason == .busy ? "busy" : "no-answer")
                return
            case .hangup:
                return
            case .redirect(let url, _):
                let next = resolve(url, against: documentURL)
                guard let document = try await fetch(next, parameters(status: "in-progress")) else { return }
                try await follow(document, url: next)
                return
            case .record(let record):
                answered = true
                try await voicemail(record, documentURL: documentURL)
                return
            case .dial(let dial):
                answered = true
                if try await self.dial(dial, documentURL: documentURL) { return }
            }
        }
    }

    /// The caller leaves a message and hangs up: the `<Record action>` and the recording callback.
    mutating func voicemail(_ record: TwiML.Record, documentURL: String?) async throws {
        let duration = min(voicemailSeconds, record.maxLengthSeconds ?? 3600)
        let sid = driver.fake.addRecording(callSid: callSid, wav: wav, channels: 1, durationSeconds: duration)
        played.recordingSIDs.append(sid)
        seconds += duration
        if let action = record.action {
            var form = parameters(status: "completed")
            form.append("RecordingUrl", driver.fake.recordingURL(sid))
            form.append("RecordingSid", sid)
            form.append("RecordingDuration", String(duration))
            form.append("Digits", "hangup")
            // The caller has hung up: the action's answer is not played.
            played.webhooks.append(try await driver.post(url: resolve(action, against: documentURL), parameters: form))
        }
        try await recordingCallback(record.recordingStatusCallback.map { resolve($0, against: documentURL) }, sid: sid,
                                    duration: duration, channels: 1, source: "RecordVerb")
    }

    /// Rings the dialled leg: its whisper, its recording, the action. True when the call ends here.
    mutating func dial(_ dial: TwiML.Dial, documentURL: String?) async throws -> Bool {
        played.dialled += dial.numbers.map(\.number)
        played.callerIDs.append(dial.callerId)
        let childSid = FakeTwilio.newSID("CA")
        var recordingSid: String?
        var talk = 0
        if case .answers(let talkSeconds) = leg, let number = dial.numbers.first {
            talk = talkSeconds
            if let whisper = number.url {
                // The answering leg's own request: its SID, its parent, and the number it rang.
                var form = FormParameters(parameters(status: "in-progress").pairs.filter { !["CallSid", "Direction", "To", "Called"].contains($0.name) })
                form.append("CallSid", childSid)
                form.append("ParentCallSid", callSid)
                form.append("Direction", "outbound-dial")
                form.append("To", number.number)
                form.append("Called", number.number)
                if let heard = try await fetch(resolve(whisper, against: documentURL), form) {
                    for case .say(let say) in heard.verbs { played.heard.append(.whispered(say.text)) }
                }
            }
            if let record = dial.record, record != .doNotRecord {
                let channels = record.rawValue.hasSuffix("dual") ? 2 : 1
                let sid = driver.fake.addRecording(callSid: callSid, wav: wav, channels: channels, durationSeconds: talkSeconds)
                played.recordingSIDs.append(sid)
                recordingSid = sid
                try await recordingCallback(dial.recordingStatusCallback.map { resolve($0, against: documentURL) }, sid: sid,
                                            duration: talkSeconds, channels: channels, source: "DialVerb")
            }
            seconds += talkSeconds
        }
        guard let action = dial.action else { return false }  // no action: the next verb continues the call
        var form = parameters(status: "in-progress")
        form.append("DialCallStatus", leg.dialStatus)
        form.append("DialCallSid", childSid)
        form.append("DialCallDuration", String(talk))
        if let recordingSid {
            form.append("RecordingUrl", driver.fake.recordingURL(recordingSid))
            form.append("RecordingSid", recordingSid)
            form.append("RecordingDuration", String(talk))
        }
        let next = resolve(action, against: documentURL)
        if let document = try await fetch(next, form) { try await follow(document, url: next) }
        return true
    }

    mutating func recordingCallback(_ url: String?, sid: String, duration: Int, channels: Int, source: String) async throws {
        try await notify(url, [
            "AccountSid": driver.fake.account.sid, "CallSid": callSid, "RecordingSid": sid,
            "RecordingUrl": driver.fake.recordingURL(sid), "RecordingStatus": "completed", "RecordingDuration": String(duration),
            "RecordingChannels": String(channels), "RecordingSource": source, "RecordingStartTime": FakeTwilio.date(), "ErrorCode": "0",
        ])
    }

    /// The call-status callback with the final status and duration.
    mutating func finish(_ statusCallback: String?) async throws {
        var form = parameters(status: played.finalStatus)
        form.append("CallDuration", String(played.finalStatus == "completed" ? seconds : 0))
        form.append("Timestamp", FakeTwilio.date())
        form.append("CallbackSource", "call-progress-events")
        form.append("SequenceNumber", "0")
        try await notify(statusCallback, form)
    }
}
