import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import Foundation
import Testing
import TranscriptDomain

/// A stored recording's way through transcription and analysis: media tells transcript (a
/// durable job), transcript fetches the audio as itself, Deepgram's adapter posts it to the fake
/// Deepgram, card details are taken out of the text and muted in the audio, and the analysis
/// comes from the fake Anthropic or the local engine. Jobs run on the services' own workers;
/// the tests wait for the results, and move the test clock for Retry-After.
@Suite("Transcript: transcription and analysis through the sub-processor adapters", .serialized)
struct TranscriptionTests {
    /// An organisation with transcription on, a tracking number, and a started call.
    func prepared(_ deployment: TranscriptDeployment, analysis: String = "anthropic", enabled: Bool = true, caller: String = "07700 900123",
                  tracking: String = "01184960000")
        async throws -> (org: String, admin: String) {
        let (org, admin) = try await deployment.organisation()
        _ = try await deployment.transcripts().setTranscriptionSettings(.with {
            $0.orgID = org
            $0.settings = .with { $0.enabled = enabled; $0.engine = "deepgram"; $0.analysisEngine = analysis }
        }, options: try bearer(admin))
        try await deployment.assign(tracking, org: org, admin: admin)
        try await deployment.start("call-1", tracking: tracking, caller: caller)
        return (org, admin)
    }

    func reading(_ deployment: TranscriptDeployment, org: String, admin: String) async throws -> Calltrace_Transcript_V1_GetTranscriptResponse {
        try await deployment.transcripts().getTranscript(.with { $0.orgID = org; $0.callID = "call-1" }, options: try bearer(admin))
    }

    @Test("A recording media cannot mute (a damaged MP3): the transcript is stored redacted after one request to Deepgram, and the firm's trail says the audio still holds the card (issue 27.3)")
    func unmutableRecording() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await prepared(deployment)
        let damaged = Data(repeating: 0x11, count: 20_000)
        _ = try await deployment.recordings(as: TemporaryPKI.telephony).uploadRecording { writer in
            try await writer.send(.with {
                $0.header = .with { $0.orgID = org; $0.callID = "call-1"; $0.format = .mp3; $0.sampleRateHz = 8000; $0.channels = 1; $0.sha256 = sha256(damaged) }
            })
            try await writer.send(.with { $0.chunk = damaged })
        }
        #expect(try await eventually { try await self.reading(deployment, org: org, admin: admin).state == .done })
        let text = try await reading(deployment, org: org, admin: admin).transcript.segments.map(\.text).joined(separator: "\n")
        #expect(text.contains("[card number]") && !text.contains("4111"))
        #expect(deployment.deepgram.requests.count == 1, "not sent again and again: \(deployment.deepgram.requests.count)")
        #expect(try await eventually {
            try await Calltrace_Compliance_V1_AuditServiceClient(try deployment.compliance.client())
                .listAuditEvents(.with { $0.orgID = org; $0.action = "recording.mute_failed" }, options: try bearer(admin))
                .events.contains { $0.event.resource == "call:call-1" && $0.event.detail.contains("media cannot mute this recording") }
        })
    }

    @Test("A mono recording is transcribed with mip_opt_out=true, card details are out of the text and muted in the audio, and Anthropic's analysis is stored")
    func monoPipeline() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await prepared(deployment)
        // 3.2 MB: the audio passes from media to Deepgram through a 1 MiB buffer, several times over.
        let audio = wavFile(seconds: 200)
        let recording = try await deployment.recordings(as: TemporaryPKI.telephony).upload(audio, org: org, call: "call-1")

        #expect(try await eventually {
            let reading = try await self.reading(deployment, org: org, admin: admin)
            return reading.state == .done && reading.hasAnalysis
        })
        let request = try #require(deployment.deepgram.requests.first)
        #expect(request.path == "/v1/listen" && request.method == "POST")
        #expect(request.query["mip_opt_out"] == "true" && request.query["diarize"] == "true" && request.query["multichannel"] == nil)
        #expect(request.query["punctuate"] == "true" && request.query["utterances"] == "true" && request.query["model"] == "nova-2-phonecall")
        #expect(request.headers["authorization"] == "Token dg-secret-key" && request.headers["content-type"] == "audio/wav")
        #expect(request.body == audio, "the audio media stored, whole and in order")

        let reading = try await self.reading(deployment, org: org, admin: admin)
        let text = reading.transcript.segments.map(\.text).joined(separator: "\n")
        #expect(text.contains("[card number]") && text.contains("[expiry date]") && text.contains("[security code]"))
        #expect(!text.contains("4111") && text.contains("07700 900123"), "the card goes; the callback number stays")
        #expect(reading.transcript.redactions == 3 && reading.transcript.engine == "deepgram")
        #expect(reading.analysis.practiceArea == .personalInjury && reading.analysis.urgency == .high && reading.analysis.callbackRequested)
        #expect(reading.analysis.engine == "anthropic")
        // The analysis suggests an outcome (issue 32): the report counts it apart until staff confirm it.
        let suggested = try await deployment.calls().getCall(.with { $0.orgID = org; $0.callID = "call-1" }, options: try bearer(admin)).call
        #expect(suggested.suggestedEnquiry == .new && suggested.suggestedPracticeArea == .personalInjury && suggested.enquiry == .unspecified)
        func totals() async throws -> Calltrace_Transcript_V1_AttributionRow {
            try await deployment.calls().attributionReport(.with {
                $0.orgID = org; $0.fromUnixMs = deployment.transcript.clock.nowUnixMs - 86_400_000; $0.beforeUnixMs = deployment.transcript.clock.nowUnixMs + 1
            }, options: try bearer(admin)).total
        }
        let before = try await totals()
        #expect(before.suggestedNewEnquiries == 1 && before.newEnquiries == 0)
        _ = try await deployment.calls().markCallOutcome(.with {
            $0.orgID = org; $0.callID = "call-1"; $0.enquiry = .new; $0.practiceArea = .personalInjury
        }, options: try bearer(admin))
        let after = try await totals()
        #expect(after.suggestedNewEnquiries == 0 && after.newEnquiries == 1, "confirmed, it counts as an enquiry once")
        let prompt = try #require(deployment.anthropic.requests.first)
        #expect(prompt.path == "/v1/messages" && !String(decoding: prompt.body, as: UTF8.self).contains("4111"),
                "the card number never reaches the analysis engine")

        // Media muted the words of the card (8.14–9.43 s), its expiry (9.75–10.07 s) and its security
        // code (11.68–12 s), each word's time from Deepgram: silent there, unchanged around them.
        let played = try await deployment.recordings(as: TemporaryPKI.identity("service", "transcript")).playRecording(.with {
            $0.orgID = org; $0.recordingID = recording.recordingID
        }) { stream in
            var data = Data()
            for try await message in stream { data += message.data }
            return data
        }
        let bytesPerMs = 16, header = 44
        func span(_ from: Int, _ to: Int) -> Range<Int> { (header + from * bytesPerMs)..<(header + to * bytesPerMs) }
        #expect(played.count == audio.count)
        for (from, to) in [(8200, 9400), (9760, 10_060), (11_700, 11_990)] {
            #expect(played[span(from, to)].allSatisfy { $0 == 0 }, "\(from)–\(to) ms, a card detail, is silent")
        }
        for (from, to) in [(0, 8100), (9450, 9740), (10_100, 11_650), (12_010, 200_000)] {
            #expect(played[span(from, to)] == audio[span(from, to)], "\(from)–\(to) ms, around the details, is unchanged")
        }

        // Nothing said about the card, and neither API key, is in transcript's database or log.
        // (The whole number, not "4111": four digits turn up by chance in a log's durations.)
        let written = try deployment.everythingTranscriptWrote()
        #expect(!written.contains("4111 1111") && !written.contains("4111111111111111") && !written.contains("09/27")
                && !written.contains("dg-secret-key") && !written.contains("sk-ant-secret-key"))
        #expect(!written.contains("car crash"), "transcripts are sealed")
    }

    @Test("A two-channel recording is sent multichannel=true and its parties are named caller and firm; the local engine analyses by default")
    func twoChannels() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await prepared(deployment, analysis: "local")
        _ = try await deployment.recordings(as: TemporaryPKI.telephony).upload(wavFile(seconds: 16, channels: 2), org: org, call: "call-1", channels: 2)
        #expect(try await eventually { try await self.reading(deployment, org: org, admin: admin).hasAnalysis })
        #expect(deployment.deepgram.requests.first?.query["multichannel"] == "true")
        #expect(deployment.deepgram.requests.first?.query["diarize"] == nil)
        let reading = try await self.reading(deployment, org: org, admin: admin)
        #expect(Set(reading.transcript.segments.map(\.speaker)) == ["caller", "firm"])
        #expect(reading.analysis.engine == "local" && reading.analysis.practiceArea == .personalInjury)
        #expect(deployment.anthropic.requests.isEmpty, "local analysis sends nothing anywhere")
    }

    @Test("429 with Retry-After is retried no sooner than it says; then the transcript is stored")
    func retryAfter() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await prepared(deployment, analysis: "local")
        deployment.deepgram.respond { _ in .json(#"{"err_code":"TOO_MANY_REQUESTS"}"#, status: 429, headers: ["retry-after": "30"]) }
        _ = try await deployment.recordings(as: TemporaryPKI.telephony).upload(wavFile(seconds: 2), org: org, call: "call-1")
        #expect(try await eventually { deployment.deepgram.requests.count == 1 })
        #expect(try await eventually { try await self.reading(deployment, org: org, admin: admin).failureReason.contains("429") })
        #expect(try await reading(deployment, org: org, admin: admin).state == .queued, "still queued: it will be retried")

        deployment.deepgram.respond(with: TranscriptDeployment.deepgramAnswer)
        deployment.transcript.clock.advance(by: .seconds(20))
        await deployment.transcript.instance.jobs.runDue(kinds: ["transcript.transcribe"])
        #expect(deployment.deepgram.requests.count == 1, "not before Retry-After")
        deployment.transcript.clock.advance(by: .seconds(20))
        // Now due: the worker runs it.
        #expect(try await eventually { try await self.reading(deployment, org: org, admin: admin).state == .done })
        #expect(deployment.deepgram.requests.count == 2)
    }

    @Test("A provider that refuses the audio before reading it ends the transfer and the stream from media: the job says why, and the next one runs")
    func refusedBeforeTheBody() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await prepared(deployment, analysis: "local")
        deployment.deepgram.answerBeforeReadingBodies(.json(#"{"err_code":"PAYLOAD_TOO_LARGE"}"#, status: 413))
        // 3.2 MB: three times the 1 MiB that waits between media and the transfer.
        _ = try await deployment.recordings(as: TemporaryPKI.telephony).upload(wavFile(seconds: 200), org: org, call: "call-1")
        #expect(try await eventually { !(try await self.reading(deployment, org: org, admin: admin).failureReason.isEmpty) })
        let reason = try await reading(deployment, org: org, admin: admin).failureReason
        #expect(reason.contains("deepgram") || reason.contains("localhost"), "\(reason)")

        // Nothing is stuck: with Deepgram answering again, the next call's recording is transcribed.
        deployment.deepgram.answerBeforeReadingBodies(nil)
        try await deployment.start("call-2", tracking: "01184960000", caller: "07700 900124")
        _ = try await deployment.recordings(as: TemporaryPKI.telephony).upload(wavFile(seconds: 2), org: org, call: "call-2")
        #expect(try await eventually {
            try await deployment.transcripts().getTranscript(.with { $0.orgID = org; $0.callID = "call-2" }, options: try bearer(admin)).state == .done
        })
    }

    @Test("A malformed answer or a 4xx fails the job cleanly with a visible reason, nothing stored", arguments: [
        (200, "{\"results\": \"not what Deepgram sends\"}", "not the JSON"),
        (400, #"{"err_code":"Bad Request","err_msg":"corrupt audio"}"#, "HTTP 400"),
    ])
    func permanentFailures(status: Int, body: String, reason: String) async throws {
        let deployment = try await TranscriptDeployment(deepgram: { _ in .json(body, status: status) })
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await prepared(deployment)
        _ = try await deployment.recordings(as: TemporaryPKI.telephony).upload(wavFile(seconds: 2), org: org, call: "call-1")
        // The job is dead-lettered after its handler has recorded the failure: waiting for that,
        // the last step, and not for the failure, which the queue has not yet seen.
        #expect(try await eventually { try await deployment.transcript.instance.jobs.list(state: "dead").count == 1 },
                "dead-lettered, listable by operators")
        let reading = try await self.reading(deployment, org: org, admin: admin)
        #expect(reading.state == .failed)
        #expect(reading.failureReason.contains(reason) && !reading.failureReason.contains("corrupt audio"), "the status, never the body")
        #expect(!reading.hasTranscript && deployment.deepgram.requests.count == 1, "permanent: not retried")
    }

    @Test("Anthropic answering without the JSON asked for fails the analysis with a reason; the transcript stays")
    func malformedAnalysis() async throws {
        let deployment = try await TranscriptDeployment(anthropic: { _ in
            .json(#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"I think it is a personal injury matter."}]}"#)
        })
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await prepared(deployment)
        _ = try await deployment.recordings(as: TemporaryPKI.telephony).upload(wavFile(seconds: 2), org: org, call: "call-1")
        #expect(try await eventually { try await deployment.transcript.instance.jobs.list(state: "dead").count == 1 })
        let dead = try await deployment.transcript.instance.jobs.list(state: "dead")
        #expect(dead.first?.kind == "transcript.analyse" && dead.first?.lastError?.contains("no JSON object") == true)
        let reading = try await self.reading(deployment, org: org, admin: admin)
        #expect(reading.hasTranscript && !reading.hasAnalysis)
    }

    @Test("A suppressed caller is not recorded, not transcribed and not analysed; an organisation without transcription sends nothing")
    func suppressedAndDisabled() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await prepared(deployment)
        // Analysed before the objection: the objection deletes the analysis.
        _ = try await deployment.transcripts(as: TemporaryPKI.telephony).submitTranscript(.with {
            $0.orgID = org; $0.callID = "call-1"; $0.segments = [.with { $0.speaker = "caller"; $0.text = "I slipped at work and broke my wrist, can you help?" }]
        })
        #expect(try await eventually { try await self.reading(deployment, org: org, admin: admin).hasAnalysis })
        let added = try await deployment.suppressions().addSuppression(.with { $0.orgID = org; $0.phoneNumber = "+44 7700 900123"; $0.reason = "objection" },
                                                                        options: try bearer(admin))
        #expect(added.analysesDeleted == 1)
        #expect(try await reading(deployment, org: org, admin: admin).hasAnalysis == false)

        let started = try await deployment.start("call-2", tracking: "01184960000", caller: "07700 900123")
        #expect(!started.record && started.notice.isEmpty, "not recorded")
        // A gateway that records anyway: transcript does not queue it.
        let stored = try await deployment.transcripts(as: TemporaryPKI.identity("service", "media")).recordingStored(.with {
            $0.orgID = org; $0.recordingID = "rec_x"; $0.callID = "call-2"; $0.channels = 1
        })
        #expect(!stored.queued, "not transcribed")
        #expect(await code {
            _ = try await deployment.transcripts(as: TemporaryPKI.telephony).submitTranscript(.with {
                $0.orgID = org; $0.callID = "call-2"; $0.segments = [.with { $0.speaker = "caller"; $0.text = "hello" }]
            })
        } == .failedPrecondition, "not transcribed by hand either")
        #expect(deployment.deepgram.requests.isEmpty)

        let (quiet, quietAdmin) = try await prepared(deployment, enabled: false, caller: "07700 900555", tracking: "01184960001")
        _ = quietAdmin
        let queued = try await deployment.transcripts(as: TemporaryPKI.identity("service", "media")).recordingStored(.with {
            $0.orgID = quiet; $0.recordingID = "rec_y"; $0.callID = "call-1"; $0.channels = 1
        })
        #expect(!queued.queued && deployment.deepgram.requests.isEmpty)
    }

    @Test("A gateway submits a transcript as itself: it is redacted before it is stored, and analysed by the local engine")
    func manualTranscript() async throws {
        let deployment = try await TranscriptDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await prepared(deployment, analysis: "local", caller: "07700 900777")
        let submitted = try await deployment.transcripts(as: TemporaryPKI.telephony).submitTranscript(.with {
            $0.orgID = org; $0.callID = "call-1"
            $0.segments = [.with { $0.speaker = "caller"; $0.startMs = 0; $0.endMs = 5000
                $0.text = "My landlord is evicting me next week, it's urgent. My sort code is 20-45-67 and account number 12345678." }]
        })
        #expect(submitted.transcript.engine == "manual" && submitted.transcript.redactions == 2)
        #expect(submitted.transcript.segments[0].text.contains("[sort code]") && !submitted.transcript.segments[0].text.contains("12345678"))
        #expect(try await eventually { try await self.reading(deployment, org: org, admin: admin).analysis.practiceArea == .housingAndLandlordTenant })
        let exported = try await deployment.calls(as: TemporaryPKI.identity("service", "compliance")).exportCall(.with { $0.orgID = org; $0.callID = "call-1" })
        #expect(exported.text.contains("[sort code]") && exported.text.contains("+447700900777"))
        #expect((try? JSONSerialization.jsonObject(with: Data(exported.json.utf8))) != nil)
        _ = try await deployment.transcripts().deleteTranscript(.with { $0.orgID = org; $0.callID = "call-1" }, options: try bearer(admin))
        let after = try await reading(deployment, org: org, admin: admin)
        #expect(!after.hasTranscript && !after.hasAnalysis)
    }
}

@Suite("Transcript: sub-processor keys")
struct ProviderKeyTests {
    @Test("An API key file that group or others can read refuses start-up, naming the file and the fix, never the key")
    func looseKeyFile() async throws {
        let folder = NSTemporaryDirectory() + "calltrace-loose-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let key = folder + "/deepgram.key"
        try #require(FileManager.default.createFile(atPath: key, contents: Data("dg-very-secret".utf8), attributes: [.posixPermissions: 0o644]))
        let error = await #expect(throws: (any Error).self) {
            _ = try await InProcessService.start(TranscriptService.self) { $0[TranscriptSettings.self].deepgramKeyFile = key }
        }
        let message = "\(error.map { "\($0)" } ?? "")"
        #expect(message.contains(key) && message.contains("chmod 600") && !message.contains("dg-very-secret"), "\(message)")
    }
}
