import CallTraceDeploymentSupport
import CallTraceTestSupport
import FakeTwilio
import Foundation
import Testing
@testable import TelephonyGateway
import Twilio

@Suite("Issue 31: Twilio's error webhooks and callbacks of unexpected shapes")
struct TwilioWebhookTests {
    @Test("Twilio's debugger webhook is counted (in the gateway's metrics) and answered 204, its error code logged and never the numbers its payload quotes, even in the wrong field")
    func twilioErrors() async throws {
        let rig = try await TelephonyRig()
        func report(level: String, code: String) -> FormParameters {
            let payload = #"{"resource_sid":"\#(FakeTwilio.newSID("CA"))","error_code":"\#(code)","more_info":{"msg":"An attempt to retrieve content returned the HTTP status code 500","From":"\#(TelephonyRig.caller)","To":"\#(rig.number)"}}"#
            return ["AccountSid": rig.fake.account.sid, "Sid": FakeTwilio.newSID("NO"), "Level": level, "PayloadType": "application/json",
                    "Timestamp": "2026-12-06T10:00:00Z", "Payload": payload]
        }
        #expect(try await rig.post(TwilioWebhooks.errorsPath, report(level: "ERROR", code: "11200")) == 204)
        #expect(rig.telephony.log.text.contains("twilio_error=11200"))
        // A number where the code and level should be: counted all the same, neither logged.
        #expect(try await rig.post(TwilioWebhooks.errorsPath, report(level: TelephonyRig.caller, code: TelephonyRig.caller)) == 204)
        #expect(try await rig.post(TwilioWebhooks.errorsPath, ["AccountSid": rig.fake.account.sid, "Payload": "not JSON"]) == 204)
        #expect(await rig.gauge(TelephonyCounters.Counter.twilioError.rawValue) == 3)
        #expect(rig.telephony.log.text.components(separatedBy: "twilio_error=unknown").count - 1 == 2)
        expectNoNumbers(rig)
        await rig.stop()
    }

    @Test("Signed callbacks of unexpected shapes get the documented answers — 400 for a malformed call, recording or status, 204 or a hang-up for a call the gateway does not know — counted, logged without numbers, and the gateway keeps serving calls")
    func unexpectedShapes() async throws {
        let rig = try await TelephonyRig()
        let account = rig.fake.account.sid, stranger = FakeTwilio.newSID("CA")
        let number = TelephonyRig.caller, encoded = "%2B" + TelephonyRig.caller.dropFirst()
        let shapes: [(path: String, parameters: FormParameters, answer: Int)] = [
            (WebhookURLs.statusPath, ["AccountSid": account, "CallSid": number, "CallStatus": "completed", "From": number], 400),
            (WebhookURLs.statusPath, ["AccountSid": account, "CallStatus": "completed"], 400),
            (WebhookURLs.statusPath, ["AccountSid": account, "CallSid": stranger, "CallStatus": number, "From": number], 204),
            (WebhookURLs.statusPath, ["AccountSid": account, "CallSid": stranger, "CallStatus": "completed", "CallDuration": "-1e99"], 204),
            (WebhookURLs.recordingPath, ["AccountSid": account, "CallSid": stranger, "RecordingStatus": "completed"], 400),
            (WebhookURLs.recordingPath, ["AccountSid": account, "CallSid": stranger, "RecordingSid": FakeTwilio.newSID("RE"), "RecordingStatus": number], 400),
            (WebhookURLs.recordingPath, ["AccountSid": account, "CallSid": stranger, "RecordingSid": FakeTwilio.newSID("RE"), "RecordingStatus": "failed"], 204),
            (WebhookURLs.whisperPath + "?call=" + encoded, ["AccountSid": account, "CallSid": stranger, "To": number], 400),
            (WebhookURLs.dialPath, ["AccountSid": account, "CallSid": stranger, "DialCallStatus": number], 200),
            (WebhookURLs.voicePath, ["AccountSid": account, "CallSid": "CA" + number, "From": number, "To": rig.number], 400),
        ]
        for shape in shapes {
            #expect(try await rig.post(shape.path, shape.parameters) == shape.answer, "\(shape.path) \(shape.parameters.pairs.map(\.name))")
        }
        #expect(rig.counters.value(.webhookUnexpected) == shapes.filter { $0.answer == 400 }.count)
        #expect(rig.counters.value(.unknownCall) == 2)
        #expect(rig.counters.value(.recordingFailed) == 1)
        #expect(await rig.gauge(TelephonyCounters.Counter.webhookUnexpected.rawValue) == 6)
        let played = try await rig.call()
        #expect(played.rejected == nil && played.dialled == [TelephonyRig.office], "still answering calls")
        #expect(try await rig.settle { try await rig.recordings(of: played.callSid).count == 1 && rig.fake.recordingSIDs.isEmpty })
        expectNoNumbers(rig)
        await rig.stop()
    }

    /// Nothing the gateway logged holds a phone number of the call, in any of the forms it came in.
    private func expectNoNumbers(_ rig: TelephonyRig) {
        let log = rig.telephony.log.text
        #expect(!log.isEmpty)
        for number in [TelephonyRig.caller, rig.number, TelephonyRig.office] {
            #expect(!log.contains(number.dropFirst(3)), "a number in the log")
        }
    }
}
