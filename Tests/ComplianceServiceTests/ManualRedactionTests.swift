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
        let stored = try await Calltrace_Transcript_V1_TranscriptServiceClient(try deployment.transcript.client()).submitTranscript(.with {
            $0.orgID = org; $0.callID = "call-1"
            $0.segments = [
                .with { $0.speaker = "caller"; $0.startMs = 0; $0.endMs = 600; $0.text = "It's 4111 1111" },
                .with { $0.speaker = "firm"; $0.startMs = 600; $0.endMs = 700; $0.text = "OK" },
                .with { $0.speaker = "caller"; $0.startMs = 700; $0.endMs = 1000; $0.text = "1111 1111." },
            ]
        })
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

    func play(_ recording: String, org: String, admin: String, in deployment: CallDataDeployment) async throws -> Data {
        try await deployment.recordings().playRecording(.with { $0.orgID = org; $0.recordingID = recording }, options: try bearer(admin)) { stream in
            var audio = Data()
            for try await piece in stream { audio += piece.data }
            return audio
        }
    }
}
