import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceOutbound
import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import FakeTwilio
import Foundation
import Testing
@testable import TelephonyGateway
import Twilio

@Suite("Issue 31: inbound calls through Twilio's webhooks")
struct InboundCallTests {
    @Test("An answered call: the office rung with the caller's number and a whisper, both legs recorded, the recording moved into media and deleted at Twilio, the call completed as answered, its transcript redacted and analysed")
    func answered() async throws {
        let rig = try await TelephonyRig()
        // The firm transcribes its calls: the text handed in for the call (the manual engine, as
        // `make demo`'s stand-in for speech-to-text) is redacted and analysed here, locally.
        let transcripts = Calltrace_Transcript_V1_TranscriptServiceClient(try rig.services.calls.transcript.client())
        _ = try await transcripts.setTranscriptionSettings(.with {
            $0.orgID = rig.org; $0.settings = .with { $0.enabled = true; $0.engine = "manual"; $0.analysisEngine = "local" }
        }, options: try bearer(rig.admin))
        let wav = wavFile(samples: 16_000, channels: 2)
        let played = try await rig.call(wav: wav)
        #expect(played.rejected == nil && played.dialled == [TelephonyRig.office])
        #expect(played.callerIDs == [TelephonyRig.caller], "the caller's number is passed through")
        #expect(played.heard.contains(.whispered("Google Ads enquiry")), "\(played.heard)")
        let dial = try #require(played.webhooks(to: WebhookURLs.voicePath).first)
        let answer = String(decoding: dial.answer, as: UTF8.self)
        #expect(answer.contains(#"record="record-from-answer-dual""#) && answer.contains(#"recordingStatusCallback="\#(TelephonyRig.publicURL)/twilio/recording""#), "\(answer)")
        #expect(played.recordingSIDs.count == 1)

        // The durable job: into media with its SHA-256, then gone from Twilio.
        #expect(try await rig.settle { try await rig.recordings(of: played.callSid).count == 1 && rig.fake.recordingSIDs.isEmpty })
        let stored = try #require(try await rig.recordings(of: played.callSid).first)
        #expect(stored.channels == 2 && stored.sampleRateHz == 8000)
        let audio = try await rig.services.gateway.play(stored.recordingID, org: rig.org, reason: "check", options: try bearer(rig.admin))
        #expect(audio == wav, "the very file Twilio served")
        #expect(try await rig.settle { try await rig.record(of: played.callSid).outcome == .answered })
        let record = try await rig.record(of: played.callSid)
        #expect(record.durationMs == 42_000 && record.source == "Google Ads")

        _ = try await Calltrace_Transcript_V1_TranscriptServiceClient(try rig.services.calls.transcript.client(identity: TemporaryPKI.identity("gateway", "telephony")))
            .submitTranscript(.with {
                $0.orgID = rig.org; $0.callID = played.callSid
                $0.segments = [.with { $0.speaker = "caller"; $0.text = "I was hurt at work and need a solicitor. My card is 4111 1111 1111 1111." }]
            })
        #expect(try await eventually {
            let read = try await transcripts.getTranscript(.with { $0.orgID = rig.org; $0.callID = played.callSid }, options: try bearer(rig.admin))
            return read.state == .done && read.hasAnalysis && !read.transcript.segments.contains { $0.text.contains("4111") }
        })
        await rig.stop()
    }

    @Test("Nobody answers: a voicemail after the notice, stored and deleted at Twilio like any call, the outcome a voicemail; with voicemail off, an apology and a missed call")
    func voicemailAndMissed() async throws {
        let rig = try await TelephonyRig()
        let voicemail = try await rig.call(.noAnswer)
        let after = String(decoding: try #require(voicemail.webhooks(to: WebhookURLs.dialPath).first).answer, as: UTF8.self)
        #expect(after.contains("<Record") && after.contains("leave a message"), "\(after)")
        #expect(try await rig.settle { try await rig.record(of: voicemail.callSid).outcome == .voicemail })
        #expect(try await rig.settle { try await rig.recordings(of: voicemail.callSid).count == 1 && rig.fake.recordingSIDs.isEmpty })

        var routing = TelephonyRig.alwaysOpen
        routing.voicemail = false
        try await rig.route(routing)
        let missed = try await rig.call(.busy)
        #expect(missed.recordingSIDs.isEmpty)
        #expect(missed.heard.contains { if case .said(let text) = $0 { text.contains("nobody could answer") } else { false } }, "\(missed.heard)")
        #expect(try await rig.settle { try await rig.record(of: missed.callSid).outcome == .missed })
        await rig.stop()
    }

    @Test("Out of hours: the firm's message, then voicemail; nobody is rung")
    func outOfHours() async throws {
        // Open for one minute at midnight on Sundays only: closed whenever this test runs but then.
        var routing = TelephonyRig.alwaysOpen
        routing.officeHours = [.with { $0.weekday = 7; $0.opensMinute = 0; $0.closesMinute = 1 }]
        routing.outOfHoursMessage = "Smith and Co are closed. Our hours are nine to half past five."
        let rig = try await TelephonyRig(routing: routing)
        let played = try await rig.call()
        #expect(played.dialled.isEmpty)
        #expect(played.heard.first == .said(routing.outOfHoursMessage) || played.heard.contains(.said(routing.outOfHoursMessage)), "\(played.heard)")
        #expect(try await rig.settle { try await rig.record(of: played.callSid).outcome == .voicemail })
        await rig.stop()
    }

    @Test("The firm's notice is played before anything is recorded; a suppressed caller is connected and nothing is recorded, at Twilio or here")
    func noticeAndSuppression() async throws {
        let rig = try await TelephonyRig()
        _ = try await Calltrace_Compliance_V1_NoticeServiceClient(try rig.services.calls.compliance.client()).setNoticeSettings(.with {
            $0.orgID = rig.org; $0.settings = .with { $0.firmName = "Smith and Co"; $0.inboundGreeting = true }
        }, options: try bearer(rig.admin))
        let noticed = try await rig.call()
        guard case .said(let notice)? = noticed.heard.first else { Issue.record("no notice: \(noticed.heard)"); return }
        #expect(notice.lowercased().contains("record"), "\(notice)")

        try await rig.suppress("07700900456")
        let suppressed = try await rig.call(from: "+447700900456")
        #expect(suppressed.dialled == [TelephonyRig.office], "connected")
        #expect(suppressed.recordingSIDs.isEmpty, "nothing recorded at Twilio")
        let answer = String(decoding: try #require(suppressed.webhooks(to: WebhookURLs.voicePath).first).answer, as: UTF8.self)
        #expect(!answer.contains("record="), "\(answer)")
        #expect(try await rig.settle { try await rig.record(of: suppressed.callSid).outcome == .answered })
        #expect(try await rig.recordings(of: suppressed.callSid).isEmpty)
        await rig.stop()
    }

    @Test("A caller who withholds their number is connected and recorded like any other, and is no one else's caller: never matched by the block list, nor shown as a number")
    func withheldCaller() async throws {
        let rig = try await TelephonyRig()
        // Twilio's stand-in for an anonymous caller, blocked by a careless admin: it blocks nobody.
        _ = try await Calltrace_Transcript_V1_BlockListServiceClient(try rig.services.calls.transcript.client()).blockCaller(.with {
            $0.orgID = rig.org; $0.phoneNumber = "+266696687"
        }, options: try bearer(rig.admin))
        for from in ["anonymous", "+266696687"] {
            let played = try await rig.call(from: from)
            #expect(played.rejected == nil && played.dialled == [TelephonyRig.office], "\(from)")
            #expect(played.callerIDs == [nil], "no stand-in number is shown to the office: \(played.callerIDs)")
            #expect(try await rig.settle { try await rig.record(of: played.callSid).outcome == .answered })
            let record = try await rig.record(of: played.callSid)
            #expect(record.callerNumber.isEmpty && record.callerNumberMasked == "withheld")
            #expect(try await rig.settle { try await rig.recordings(of: played.callSid).count == 1 })
        }
        await rig.stop()
    }

    @Test("A blocked caller is rejected and nothing of the call is kept; a number no firm holds is rejected too")
    func rejected() async throws {
        let rig = try await TelephonyRig()
        _ = try await Calltrace_Transcript_V1_BlockListServiceClient(try rig.services.calls.transcript.client()).blockCaller(.with {
            $0.orgID = rig.org; $0.phoneNumber = "07700900666"; $0.reason = "nuisance calls"
        }, options: try bearer(rig.admin))
        let blocked = try await rig.call(from: "+447700900666")
        #expect(blocked.rejected == .rejected && blocked.dialled.isEmpty)
        #expect(await code { _ = try await rig.record(of: blocked.callSid) } == .notFound, "no call record")
        #expect(rig.counters.value(.blockedCaller) == 1)

        _ = rig.fake.addIncomingNumber("+441184969999", voiceURL: TelephonyRig.publicURL + WebhookURLs.voicePath)
        let nobodys = try await rig.driver.play(.init(from: TelephonyRig.caller, to: "+441184969999", recordingWAV: wavFile(samples: 100)))
        #expect(nobodys.rejected == .rejected)
        #expect(rig.counters.value(.unknownNumber) == 1)
        await rig.stop()
    }

    @Test("Webhooks are refused (403) without a valid signature — a changed parameter, URL or port, another account's token, none — and a retry is answered once")
    func signaturesAndRetries() async throws {
        let rig = try await TelephonyRig()
        let played = try await rig.call()
        let voice = try #require(played.webhooks(to: WebhookURLs.voicePath).first)
        // A retry (Twilio's, with the same idempotency token): the same answer, nothing done again.
        let again = try await rig.driver.resend(voice)
        #expect(again.status == 200 && again.answer == voice.answer)
        #expect(rig.counters.value(.webhookRepeated) == 1)

        let transport = CurlHTTPS(allowsLoopbackHTTP: true)
        func post(_ path: String, _ parameters: FormParameters, signature: String?) async throws -> Int {
            var headers = [("Content-Type", "application/x-www-form-urlencoded")]
            if let signature { headers.append((TwilioSignature.header, signature)) }
            return try await transport.send(HTTPSRequest(url: rig.driver.gatewayURL + path, headers: headers, body: parameters.encoded)).status
        }
        let signer = TwilioSignature(authToken: rig.fake.account.authToken)
        var changed = voice.parameters
        changed.pairs[changed.pairs.firstIndex { $0.name == "From" }!].value = "+447700900999"
        #expect(try await post(WebhookURLs.voicePath, changed, signature: voice.signature) == 403, "a changed parameter")
        #expect(try await post(WebhookURLs.voicePath, voice.parameters, signature: nil) == 403, "no signature")
        let otherURL = signer.signature(url: "https://hooks.calltrace.test:8443/twilio/voice", parameters: voice.parameters)
        #expect(try await post(WebhookURLs.voicePath, voice.parameters, signature: otherURL) == 403, "another port")
        let otherPath = signer.signature(url: TelephonyRig.publicURL + "/twilio/status", parameters: voice.parameters)
        #expect(try await post(WebhookURLs.voicePath, voice.parameters, signature: otherPath) == 403, "another URL")
        let otherToken = TwilioSignature(authToken: TelephonyStack.hex(32)).signature(url: voice.url, parameters: voice.parameters)
        #expect(try await post(WebhookURLs.voicePath, voice.parameters, signature: otherToken) == 403, "another account's token")
        var otherAccount = voice.parameters
        otherAccount.pairs[otherAccount.pairs.firstIndex { $0.name == "AccountSid" }!].value = FakeTwilio.newSID("AC")
        #expect(try await post(WebhookURLs.voicePath, otherAccount, signature: signer.signature(url: voice.url, parameters: otherAccount)) == 403,
                "signed, but for another account")
        #expect(rig.counters.value(.webhookRefused) == 6)
        // Properly signed, but not Twilio's shape: 400, and the gateway keeps serving.
        let odd: FormParameters = ["AccountSid": rig.fake.account.sid, "CallSid": "not-a-sid"]
        #expect(try await post(WebhookURLs.statusPath, odd, signature: signer.signature(url: TelephonyRig.publicURL + WebhookURLs.statusPath, parameters: odd)) == 400)
        #expect(try await rig.call().rejected == nil, "still answering calls")
        await rig.stop()
    }
}

@Suite("Issue 31: the telephony gateway killed with SIGKILL while it moves a recording")
struct RecordingCrashTests {
    @Test("kill -9 of the gateway while its delete at Twilio is in flight: after restart the recording is in media exactly once and gone from Twilio")
    func killedBeforeTheDelete() async throws {
        let rig = try await TelephonyRig(killable: true)
        rig.fake.holdDeletes()
        let played = try await rig.call()
        #expect(played.recordingSIDs.count == 1)
        // The job stored the recording in media, and now waits for Twilio's answer to its delete.
        #expect(await eventually { rig.fake.deletesHeld == 1 })
        #expect(try await rig.recordings(of: played.callSid).count == 1)
        await rig.kill()
        try await rig.restart()
        rig.fake.releaseDeletes()  // the dead process's delete goes through too, or not: either way
        #expect(try await rig.settle { rig.fake.recordingSIDs.isEmpty })
        #expect(try await rig.settle { try await rig.record(of: played.callSid).outcome == .answered })
        // Exactly once in media, and the gateway finished its job (nothing left to retry).
        #expect(try await rig.recordings(of: played.callSid).count == 1)
        #expect(await rig.process!.waitForOutput(containing: "recording deleted at Twilio"), "\(rig.process!.stderr.suffix(2000))")
        await rig.stop()
    }

    @Test("kill -9 of the gateway in the middle of the upload (media holding part of the file): after restart the recording is in media exactly once and gone from Twilio")
    func killedDuringTheUpload() async throws {
        let rig = try await TelephonyRig(killable: true)
        rig.fake.holdRecordingStreams(after: Self.heldBytes, fromFetch: 2)
        let played = try await rig.call(wav: Self.longWAV)
        #expect(await eventually { rig.heldMidUpload })
        await rig.kill()
        try await rig.restart()
        rig.fake.releaseRecordingStreams()
        #expect(try await rig.settle { rig.fake.recordingSIDs.isEmpty })
        let stored = try await rig.recordings(of: played.callSid)
        #expect(stored.count == 1)
        #expect(await eventually { rig.mediaFiles == stored.map(\.recordingID) }, "nothing of the broken upload kept: \(rig.mediaFiles)")
        #expect(await rig.process!.waitForOutput(containing: "recording deleted at Twilio"), "\(rig.process!.stderr.suffix(2000))")
        await rig.stop()
    }

    enum MediaKilled: String, CaseIterable, Sendable {
        /// The gateway has streamed part of the file into media, which is writing it.
        case midUpload
        /// Media confirmed the recording; the gateway's delete at Twilio is in flight.
        case beforeTheDelete
    }

    @Test("kill -9 of media between the recording callback and the delete at Twilio: after media's restart the recording is in media exactly once and plays whole, it is gone from Twilio, the call completed, and the gateway's job done",
          arguments: MediaKilled.allCases)
    func mediaKilled(_ moment: MediaKilled) async throws {
        let rig = try await TelephonyRig(mediaAsProcess: true)
        switch moment {
        case .midUpload: rig.fake.holdRecordingStreams(after: Self.heldBytes, fromFetch: 2)
        case .beforeTheDelete: rig.fake.holdDeletes()
        }
        let played = try await rig.call(wav: Self.longWAV)
        switch moment {
        case .midUpload:
            #expect(await eventually { rig.heldMidUpload })
        case .beforeTheDelete:
            #expect(await eventually { rig.fake.deletesHeld == 1 })
        }
        #expect(await rig.media.kill() == 128 + SIGKILL)
        try await rig.media.restart()
        rig.fake.releaseRecordingStreams()
        rig.fake.releaseDeletes()
        #expect(try await rig.settle { rig.fake.recordingSIDs.isEmpty })
        let stored = try await rig.recordings(of: played.callSid)
        #expect(stored.count == 1)
        #expect(rig.mediaFiles == stored.map(\.recordingID), "nothing of a broken upload kept")
        let audio = try await rig.services.gateway.play(try #require(stored.first).recordingID, org: rig.org, reason: "check",
                                                        options: try bearer(rig.admin))
        #expect(audio == Self.longWAV)
        #expect(try await rig.settle { try await rig.record(of: played.callSid).outcome == .answered })
        #expect(try await rig.settle { try await rig.transfersLeft().isEmpty }, "the gateway's job is done, none dead-lettered")
        await rig.stop()
    }

    /// Four megabytes of stereo audio, held after a quarter: enough that media has started writing it.
    static let longWAV = wavFile(samples: 1_000_000, channels: 2)
    static let heldBytes = 1 << 20
}
