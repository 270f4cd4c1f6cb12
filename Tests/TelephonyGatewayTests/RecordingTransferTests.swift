import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import FakeTwilio
import Foundation
import Testing
@testable import TelephonyGateway
import Twilio

@Suite("Issue 31: recordings media will not take")
struct RecordingTransferTests {
    @Test("P10: a recording of a call deleted before the gateway moved it is refused by media, deleted at Twilio, kept nowhere, and counted as discarded")
    func callDeletedMeanwhile() async throws {
        let rig = try await TelephonyRig()
        rig.fake.holdRecordingStreams(after: 0)  // the job's first read waits: nothing has reached media
        let played = try await rig.call()
        #expect(await eventually { rig.fake.recordingStreamsHeld == 1 })
        _ = try await Calltrace_Compliance_V1_DeletionServiceClient(try rig.services.calls.compliance.client()).deleteCall(.with {
            $0.orgID = rig.org; $0.callID = played.callSid; $0.reason = "the client asked"
        }, options: try bearer(rig.admin))
        #expect(await eventually { await code { _ = try await rig.record(of: played.callSid) } == .notFound })
        rig.fake.releaseRecordingStreams()
        try await expectDiscarded(rig)
        await rig.stop()
    }

    @Test("A recording of a call not to be recorded (the caller objected), sent by Twilio all the same, is refused by media, deleted at Twilio and counted as discarded")
    func callerObjected() async throws {
        let rig = try await TelephonyRig()
        try await rig.suppress("07700900456")
        let played = try await rig.call(from: "+447700900456")
        #expect(played.recordingSIDs.isEmpty)
        // Twilio records it anyway (an old TwiML, a change in its console) and says so, signed.
        let recording = rig.fake.addRecording(callSid: played.callSid, wav: wavFile(samples: 16_000, channels: 2), channels: 2, durationSeconds: 42)
        #expect(try await rig.post(WebhookURLs.recordingPath, [
            "AccountSid": rig.fake.account.sid, "CallSid": played.callSid, "RecordingSid": recording, "RecordingStatus": "completed",
            "RecordingDuration": "42", "RecordingUrl": rig.fake.recordingURL(recording),
        ]) == 204)
        try await expectDiscarded(rig)
        await rig.stop()
    }

    /// Gone from Twilio, nothing in media, counted once as discarded (in the gateway's metrics), the job done.
    private func expectDiscarded(_ rig: TelephonyRig) async throws {
        #expect(try await rig.settle { rig.fake.recordingSIDs.isEmpty && rig.fake.requestLog.contains { $0.hasPrefix("DELETE") } })
        #expect(rig.mediaFiles.isEmpty, "\(rig.mediaFiles)")
        #expect(await rig.gauge(TelephonyCounters.Counter.recordingDiscarded.rawValue) == 1)
        #expect(try await rig.settle { try await rig.transfersLeft().isEmpty })
        #expect(rig.telephony.log.text.contains("media refuses it; deleting it at Twilio"))
    }

    @Test("L7: a recording Twilio serves as something media does not take (an MP3, a WAV of 32-bit floats) is never deleted unread: left at Twilio, counted, its job dead-lettered, and in the day-old alert gauge")
    func unreadableRecording() async throws {
        let rig = try await TelephonyRig()
        let mp3 = Data("ID3".utf8) + Data([4, 0, 0, 0, 0, 0]) + Data(repeating: 0xFB, count: 4000)
        var left: Set<String> = []
        for file in [mp3, wavFile(samples: 8000, encoding: 3, bits: 32)] {
            left.formUnion(try await rig.call(wav: file).recordingSIDs)
        }
        #expect(left.count == 2)
        #expect(try await rig.settle { try await rig.transfersLeft().map(\.state) == ["dead", "dead"] })
        #expect(rig.fake.recordingSIDs == left, "still at Twilio: the only copy")
        #expect(rig.mediaFiles.isEmpty)
        #expect(await rig.gauge(TelephonyCounters.Counter.recordingUnreadable.rawValue) == 2)
        #expect(await rig.gauge(Self.dayOldGauge) == 0)
        rig.telephony.clock.advance(by: .seconds(86_400 + 60))
        #expect(await rig.gauge(Self.dayOldGauge) == 2, "an operator is alerted")
        #expect(rig.telephony.log.text.contains("recording left at Twilio: not a WAV file media takes"))
        await rig.stop()
    }

    static let dayOldGauge = "telephony_recordings_at_twilio_over_a_day"
}
