import CallTraceOutbound
import CallTraceTestSupport
import FakeTwilio
import Foundation
import Testing
import Twilio

/// A stand-in for the telephony gateway, just enough to receive a call: it checks every
/// webhook's signature over the public URL (403 otherwise) and answers the TwiML a firm's
/// routing would: the notice, a recorded `<Dial>` with a whisper, voicemail when nobody answers,
/// `<Reject>` for a blocked caller.
struct ReceivingGateway {
    static let publicURL = "https://telephony.example.test"
    static let notice = "This call may be recorded."
    static let blocked = "+447700900666"
    let server: FakeHTTPSServer

    init(pki: TemporaryPKI, authToken: String) throws {
        let signer = TwilioSignature(authToken: authToken)
        let base = Self.publicURL
        server = try FakeHTTPSServer(credentials: try pki.credentials(for: TemporaryPKI.identity("gateway", "telephony"))) { request in
            let form: FormParameters
            do {
                form = try signer.verify(signature: request.headers["x-twilio-signature"], url: base + request.target, body: request.body,
                                         contentType: request.headers["content-type"])
            } catch {
                return .init(status: 403, headers: ["content-type": "text/plain"], body: Data("\(error)".utf8))
            }
            let twiml: TwiML
            switch request.path {
            case "/twilio/voice" where form["From"] == Self.blocked:
                twiml = TwiML([.reject(.busy)])
            case "/twilio/voice", "/twilio/callback/answered":
                twiml = TwiML([
                    .say(TwiML.Say(Self.notice, voice: "Polly.Amy", language: "en-GB")),
                    .dial(TwiML.Dial([TwiML.Number("+441615550123", url: "/twilio/whisper?source=google")], action: "/twilio/dial-ended",
                                     callerId: form["From"], timeoutSeconds: 20, record: .recordFromAnswerDual,
                                     recordingStatusCallback: "\(base)/twilio/recording", recordingStatusCallbackEvent: [.completed])),
                ])
            case "/twilio/whisper":
                twiml = TwiML([.say(TwiML.Say("Google Ads enquiry"))])
            case "/twilio/dial-ended" where form["DialCallStatus"] != "completed":
                twiml = TwiML([
                    .say(TwiML.Say("Please leave a message.")),
                    .record(TwiML.Record(action: "\(base)/twilio/voicemail-ended", maxLengthSeconds: 120, playBeep: true,
                                         recordingStatusCallback: "\(base)/twilio/recording", recordingStatusCallbackEvent: [.completed])),
                ])
            case "/twilio/dial-ended":
                twiml = TwiML([.hangup])
            default:
                return .init(status: 204, headers: [:], body: Data())
            }
            return .init(status: 200, headers: ["content-type": TwiML.contentType], body: Data(twiml.rendered.utf8))
        }
    }

    /// The form of each request received at `path`, in order.
    func forms(at path: String) throws -> [FormParameters] {
        try server.requests.filter { $0.path == path }.map { try FormParameters(parsing: $0.body) }
    }
}

/// A fake Twilio holding the called number, a receiving gateway, and a driver between them.
struct CallWorld {
    static let wav = Data("RIFF....WAVEfmt ".utf8) + Data((0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
    static let caller = "+447700900123"
    static let tracking = "+441615550100"
    let world: TwilioWorld
    let gateway: ReceivingGateway
    let driver: CallDriver

    init() throws {
        world = try TwilioWorld()
        gateway = try ReceivingGateway(pki: world.pki, authToken: world.fake.account.authToken)
        world.fake.addIncomingNumber(Self.tracking, voiceURL: ReceivingGateway.publicURL + "/twilio/voice",
                                     statusCallback: ReceivingGateway.publicURL + "/twilio/status")
        driver = CallDriver(fake: world.fake, gatewayURL: gateway.server.url, publicURL: ReceivingGateway.publicURL,
                            transport: CurlHTTPS(caFile: world.pki.caPath))
    }

    func stop() {
        gateway.server.stop()
        world.fake.stop()
    }
}

@Suite("Twilio: the fake's call driver, signed webhooks to a gateway", .timeLimit(.minutes(2)))
struct CallDriverTests {
    @Test("An answered call: voice webhook, notice, whisper, dual-channel recording callback, Dial action, status completed; every webhook signed over the public URL")
    func answeredCall() async throws {
        let call = try CallWorld()
        defer { call.stop() }
        let played = try await call.driver.play(.init(from: CallWorld.caller, to: CallWorld.tracking, dialledLeg: .answers(talkSeconds: 42),
                                                      recordingWAV: CallWorld.wav))
        #expect(played.webhooks.map { URL(string: $0.url)!.path } == ["/twilio/voice", "/twilio/whisper", "/twilio/recording", "/twilio/dial-ended",
                                                                       "/twilio/status"])
        #expect(played.webhooks.allSatisfy { $0.status == 200 || $0.status == 204 }, "the gateway accepted every signature")
        #expect(played.heard == [.said(ReceivingGateway.notice), .whispered("Google Ads enquiry")])
        #expect(played.dialled == ["+441615550123"] && played.callerIDs == [CallWorld.caller] && played.finalStatus == "completed")

        let voice = try #require(try call.gateway.forms(at: "/twilio/voice").first)
        for (name, value) in [("AccountSid", call.world.fake.account.sid), ("CallSid", played.callSid), ("From", CallWorld.caller),
                              ("Caller", CallWorld.caller), ("To", CallWorld.tracking), ("Called", CallWorld.tracking),
                              ("Direction", "inbound"), ("CallStatus", "ringing"), ("ApiVersion", "2010-04-01")] {
            #expect(voice[name] == value, "\(name)")
        }
        let whisper = try #require(try call.gateway.forms(at: "/twilio/whisper").first)
        #expect(whisper["ParentCallSid"] == played.callSid && whisper["Direction"] == "outbound-dial" && whisper["To"] == "+441615550123")
        #expect(call.gateway.server.requests.first { $0.path == "/twilio/whisper" }?.query["source"] == "google",
                "a relative URL resolved against the document's URL, query kept")

        let recording = try #require(try call.gateway.forms(at: "/twilio/recording").first)
        let sid = try #require(recording["RecordingSid"])
        #expect(played.recordingSIDs == [sid] && recording["CallSid"] == played.callSid)
        #expect(recording["RecordingStatus"] == "completed" && recording["RecordingDuration"] == "42" && recording["RecordingChannels"] == "2")
        #expect(recording["RecordingUrl"] == call.world.fake.recordingURL(sid) && recording["RecordingSource"] == "DialVerb")
        let ended = try #require(try call.gateway.forms(at: "/twilio/dial-ended").first)
        #expect(ended["DialCallStatus"] == "completed" && ended["RecordingSid"] == sid && ended["DialCallDuration"] == "42")
        let status = try #require(try call.gateway.forms(at: "/twilio/status").first)
        #expect(status["CallStatus"] == "completed" && status["CallDuration"] == "42")

        // The recording the callback names is there at the fake, serving the caller's WAV bytes.
        let sink = CollectingSink()
        _ = try await call.world.client.fetchRecordingWAV(sid: sid, into: sink)
        #expect(sink.collected.data == CallWorld.wav && call.world.fake.recording(sid)?.channels == 2)

        // Each webhook carried its own idempotency token; the signature is over the public URL, not the gateway's own.
        let tokens = call.gateway.server.requests.compactMap { $0.headers["i-twilio-idempotency-token"] }
        #expect(tokens.count == 5 && Set(tokens).count == 5)
        let first = played.webhooks[0]
        let signer = TwilioSignature(authToken: call.world.fake.account.authToken)
        #expect(signer.isValid(first.signature, url: first.url, parameters: first.parameters))
        #expect(!signer.isValid(first.signature, url: first.target, parameters: first.parameters))
    }

    @Test("A retry is the same webhook again: same body, signature and I-Twilio-Idempotency-Token")
    func retry() async throws {
        let call = try CallWorld()
        defer { call.stop() }
        let played = try await call.driver.play(.init(from: CallWorld.caller, to: CallWorld.tracking, recordingWAV: CallWorld.wav))
        let recording = try #require(played.webhooks(to: "/recording").first)
        let again = try await call.driver.resend(recording)
        #expect(again.status == 204 && again.idempotencyToken == recording.idempotencyToken && again.signature == recording.signature)
        let received = call.gateway.server.requests.filter { $0.path == "/twilio/recording" }
        #expect(received.count == 2 && received[0].body == received[1].body)
        #expect(received[0].headers["i-twilio-idempotency-token"] == received[1].headers["i-twilio-idempotency-token"])
        #expect(received[0].headers["x-twilio-signature"] == received[1].headers["x-twilio-signature"])
    }

    @Test("Nobody answers: Dial action with DialCallStatus=no-answer, the voicemail prompt, <Record>: its action and a one-channel recording callback")
    func voicemail() async throws {
        let call = try CallWorld()
        defer { call.stop() }
        let played = try await call.driver.play(.init(from: CallWorld.caller, to: CallWorld.tracking, dialledLeg: .noAnswer,
                                                      recordingWAV: CallWorld.wav, voicemailSeconds: 12))
        #expect(played.webhooks.map { URL(string: $0.url)!.path } == ["/twilio/voice", "/twilio/dial-ended", "/twilio/voicemail-ended",
                                                                       "/twilio/recording", "/twilio/status"])
        #expect(played.heard == [.said(ReceivingGateway.notice), .said("Please leave a message.")])
        #expect(try call.gateway.forms(at: "/twilio/dial-ended").first?["DialCallStatus"] == "no-answer")
        let sid = try #require(played.recordingSIDs.first)
        let voicemail = try #require(try call.gateway.forms(at: "/twilio/voicemail-ended").first)
        #expect(voicemail["RecordingSid"] == sid && voicemail["RecordingDuration"] == "12" && voicemail["Digits"] == "hangup")
        let recording = try #require(try call.gateway.forms(at: "/twilio/recording").first)
        #expect(recording["RecordingChannels"] == "1" && recording["RecordingSource"] == "RecordVerb" && recording["RecordingSid"] == sid)
        #expect(try call.gateway.forms(at: "/twilio/status").first?["CallDuration"] == "12")
        #expect(call.world.fake.recordingSIDs == [sid])
    }

    @Test("A blocked caller is rejected busy: no recording at the fake, status callback busy with no duration")
    func rejected() async throws {
        let call = try CallWorld()
        defer { call.stop() }
        let played = try await call.driver.play(.init(from: ReceivingGateway.blocked, to: CallWorld.tracking, recordingWAV: CallWorld.wav))
        #expect(played.rejected == .busy && played.finalStatus == "busy" && played.heard.isEmpty && played.recordingSIDs.isEmpty)
        #expect(played.webhooks.map { URL(string: $0.url)!.path } == ["/twilio/voice", "/twilio/status"])
        let status = try #require(try call.gateway.forms(at: "/twilio/status").first)
        #expect(status["CallStatus"] == "busy" && status["CallDuration"] == "0")
        #expect(call.world.fake.recordingSIDs.isEmpty)
    }

    @Test("A gateway that holds another auth token refuses the voice webhook (403): the call fails and nothing is recorded")
    func otherToken() async throws {
        let world = try TwilioWorld()
        let gateway = try ReceivingGateway(pki: world.pki, authToken: "another-token")
        defer { gateway.server.stop(); world.fake.stop() }
        world.fake.addIncomingNumber(CallWorld.tracking, voiceURL: ReceivingGateway.publicURL + "/twilio/voice",
                                     statusCallback: ReceivingGateway.publicURL + "/twilio/status")
        let driver = CallDriver(fake: world.fake, gatewayURL: gateway.server.url, publicURL: ReceivingGateway.publicURL,
                                transport: CurlHTTPS(caFile: world.pki.caPath))
        let played = try await driver.play(.init(from: CallWorld.caller, to: CallWorld.tracking, recordingWAV: CallWorld.wav))
        #expect(played.webhooks.first?.status == 403 && played.finalStatus == "failed" && played.recordingSIDs.isEmpty)
        #expect(world.fake.recordingSIDs.isEmpty)
    }

    @Test("A placed call: the client places it, the driver answers it and follows its Url's TwiML, recorded like any call")
    func placedCall() async throws {
        let call = try CallWorld()
        defer { call.stop() }
        let placed = try await call.world.client.placeCall(OutboundCall(
            to: "+441615550777", from: CallWorld.tracking, instructions: .url(ReceivingGateway.publicURL + "/twilio/callback/answered"),
            statusCallback: ReceivingGateway.publicURL + "/twilio/status", statusCallbackEvents: [.completed]))
        let played = try await call.driver.answerPlacedCall(sid: placed.sid, recordingWAV: CallWorld.wav)
        #expect(played.callSid == placed.sid && played.heard.first == .said(ReceivingGateway.notice) && played.recordingSIDs.count == 1)
        let first = try #require(try call.gateway.forms(at: "/twilio/callback/answered").first)
        #expect(first["Direction"] == "outbound-api" && first["CallStatus"] == "in-progress" && first["To"] == "+441615550777")
        #expect(try call.gateway.forms(at: "/twilio/status").first?["CallStatus"] == "completed")
    }
}
