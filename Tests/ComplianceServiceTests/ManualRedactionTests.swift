import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Testing

/// P16 on the path where nobody transcribes: a transcript given by hand (a gateway's, a user's)
/// that holds card details has them muted in the call's audio too, by media, as the
/// transcription job does.
@Suite("P16: card details in a transcript given by hand are muted in the audio")
struct ManualRedactionTests {
    @Test("A hand-given transcript reading a card number: the recording's samples where it was said become silence")
    func handGivenTranscriptMutesTheAudio() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let recording = try await deployment.call("call-1", org: org, tracking: "01184960000", caller: "07700 900123", at: CallDataDeployment.start)
        let original = try await play(recording, org: org, admin: admin, in: deployment)
        #expect(original.dropFirst(44).contains { $0 != 0 }, "the ramp is audible before")
        // The gateway gave the call's first transcript; the firm's admin corrects it by hand (a
        // replacement needs records.delete).
        let stored = try await Calltrace_Transcript_V1_TranscriptServiceClient(try deployment.transcript.client()).submitTranscript(.with {
            $0.orgID = org; $0.callID = "call-1"
            $0.segments = [
                .with { $0.speaker = "caller"; $0.startMs = 0; $0.endMs = 600; $0.text = "It's 4111 1111" },
                .with { $0.speaker = "firm"; $0.startMs = 600; $0.endMs = 700; $0.text = "OK" },
                .with { $0.speaker = "caller"; $0.startMs = 700; $0.endMs = 1000; $0.text = "1111 1111." },
            ]
        }, options: try bearer(admin))
        #expect(stored.transcript.segments.map(\.text) == ["It's [card number]", "OK", "[card number]."])
        // Muted by a durable job: the caller's samples (0–600 ms, 700–1000 ms; 16 bytes a
        // millisecond at 8 kHz, 16-bit) are digital silence; the firm's "OK" and the header stay.
        let bytes = { (ms: Int) in 44 + ms * 16 }
        #expect(try await eventually {
            let audio = try await play(recording, org: org, admin: admin, in: deployment)
            return audio.count == original.count && audio.prefix(44) == original.prefix(44)
                && audio[bytes(0)..<bytes(600)].allSatisfy { $0 == 0 } && audio[bytes(700)..<bytes(1000)].allSatisfy { $0 == 0 }
                && audio[bytes(600)..<bytes(700)] == original[bytes(600)..<bytes(700)]
        })
    }

    @Test("A transcript of 1,200 card numbers, more than media mutes in one call: every one muted in one version, the narrowest gaps between them with them; what was said in the others stays")
    func moreRangesThanOneCallTakes() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let recording = try await deployment.call("call-1", org: org, tracking: "01184960000", caller: "07700 900123", at: CallDataDeployment.start,
                                                  seconds: 4)
        let original = try await play(recording, org: org, admin: admin, in: deployment)
        // Each card read in 1 ms; the firm's answer after it in the next 1 ms for the first 200
        // (closed: 1,200 ranges become 1,000), 2 ms for the rest.
        var segments: [Calltrace_Transcript_V1_Segment] = [], cards: [Range<Int>] = [], closed: [Range<Int>] = [], kept: [Range<Int>] = []
        var time = 0
        for n in 0..<1_200 {
            let gap = n < 200 ? 1 : 2
            segments += [
                .with { $0.speaker = "caller"; $0.startMs = UInt64(time); $0.endMs = UInt64(time + 1); $0.text = "4111 1111 1111 1111" },
                .with { $0.speaker = "firm"; $0.startMs = UInt64(time + 1); $0.endMs = UInt64(time + 1 + gap); $0.text = "Understood, carry on with the next" },
            ]
            cards.append(time..<(time + 1))
            if n < 200 { closed.append((time + 1)..<(time + 2)) } else if n < 1_199 { kept.append((time + 1)..<(time + 3)) }
            time += 1 + gap
        }
        _ = try await Calltrace_Transcript_V1_TranscriptServiceClient(try deployment.transcript.client()).submitTranscript(.with {
            $0.orgID = org; $0.callID = "call-1"; $0.segments = segments
        }, options: try bearer(admin))
        let bytes = { (ms: Range<Int>) in (44 + ms.lowerBound * 16)..<(44 + ms.upperBound * 16) }
        #expect(try await eventually {
            let audio = try await play(recording, org: org, admin: admin, in: deployment)
            return audio.count == original.count
                && (cards + closed).allSatisfy { audio[bytes($0)].allSatisfy { $0 == 0 } }
                && kept.allSatisfy { audio[bytes($0)] == original[bytes($0)] }
                && audio[bytes(time..<4_000)] == original[bytes(time..<4_000)]
        })
        // One redaction: one version, one record in the firm's trail (forwarded to compliance
        // after the muting, as every audit record is).
        var redactions = 0
        #expect(try await eventually {
            redactions = try await Calltrace_Compliance_V1_AuditServiceClient(try deployment.compliance.client())
                .listAuditEvents(.with { $0.orgID = org; $0.action = "recording.redacted" }, options: try bearer(admin)).events.count
            return redactions > 0
        })
        #expect(redactions == 1)
    }

    @Test("A recording media cannot mute (MP3) is reported to the firm at once, not retried for a day and a half")
    func unmuteableRecording() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        _ = try await deployment.calls(as: TemporaryPKI.telephony).startCall(.with {
            $0.callID = "call-mp3"; $0.trackingNumber = "01184960000"; $0.callerNumber = "07700 900123"; $0.direction = .inbound
        })
        let mp3 = Data([0xFF, 0xFB, 0x90, 0x64] + [UInt8](repeating: 0x55, count: 4000))
        let recording = try await deployment.recordings(as: TemporaryPKI.telephony).uploadRecording { writer in
            try await writer.send(.with { $0.header = .with { $0.orgID = org; $0.callID = "call-mp3"; $0.format = .mp3; $0.channels = 1; $0.sha256 = sha256(mp3) } })
            try await writer.send(.with { $0.chunk = mp3 })
        }.recording
        _ = try await deployment.calls(as: TemporaryPKI.telephony).completeCall(.with {
            $0.callID = "call-mp3"; $0.orgID = org; $0.outcome = .answered; $0.recordingID = recording.recordingID
        })
        _ = try await Calltrace_Transcript_V1_TranscriptServiceClient(try deployment.transcript.client(identity: TemporaryPKI.telephony)).submitTranscript(.with {
            $0.orgID = org; $0.callID = "call-mp3"
            $0.segments = [.with { $0.speaker = "caller"; $0.startMs = 0; $0.endMs = 900; $0.text = "my card is 4111 1111 1111 1111" }]
        })
        #expect(try await eventually {
            try await Calltrace_Compliance_V1_AuditServiceClient(try deployment.compliance.client())
                .listAuditEvents(.with { $0.orgID = org; $0.action = "recording.mute_failed" }, options: try bearer(admin))
                .events.contains { $0.event.resource == "call:call-mp3" && $0.event.detail.contains("media cannot mute this recording") }
        })
    }

    func play(_ recording: String, org: String, admin: String, in deployment: CallDataDeployment) async throws -> Data {
        try await deployment.recordings().playRecording(.with { $0.orgID = org; $0.recordingID = recording }, options: try bearer(admin)) { stream in
            var audio = Data()
            for try await piece in stream { audio += piece.data }
            return audio
        }
    }
}
