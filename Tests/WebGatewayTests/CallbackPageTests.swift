import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceProto
import CallTraceTestSupport
import FakeTwilio
import Foundation
import Testing
@testable import WebGateway

@Suite("Issue 31: \"Call back\" on a missed call's page, through the telephony gateway")
struct CallbackPageTests {
    @Test("A member presses Call back on a missed call: the office's phone rings, then the caller, who hears the returned-call greeting; the returned call is recorded and linked. An analyst gets no button, and a post of theirs is refused")
    func callBackFromThePage() async throws {
        let d = try await WebDeployment(telephony: true)
        let telephony = try #require(d.telephony)
        let (org, admin) = try await d.firm()
        let transcript = Calltrace_Transcript_V1_TrackingNumberServiceClient(try d.services.calls.transcript.client())
        let number = try #require(try await transcript.listTrackingNumbers(.with { $0.orgID = org }, options: try bearer(admin)).trackingNumbers.first?.number)
        let office = "+441184960999"
        _ = try await transcript.setRouting(.with { $0.orgID = org; $0.number = number; $0.routing = .with { $0.destinations = [office] } },
                                            options: try bearer(admin))
        _ = telephony.stack.fake.addIncomingNumber(number, voiceURL: TelephonyStack.publicURL + "/twilio/voice",
                                                   statusCallback: TelephonyStack.publicURL + "/twilio/status")
        let caller = "+447700900123"
        let missed = try await telephony.driver.play(.init(from: caller, to: number, dialledLeg: .noAnswer, recordingWAV: wavFile(samples: 100)))
        let calls = Calltrace_Transcript_V1_CallServiceClient(try d.services.calls.transcript.client())
        #expect(try await eventually {
            _ = await telephony.gateway.instance.jobs.runDue()
            return try await calls.getCall(.with { $0.orgID = org; $0.callID = missed.callSid }, options: try bearer(admin)).call.outcome == .missed
        })

        let member = try await d.signedIn(.member, org: org, admin: admin)
        let page = try await member.get("/calls/\(missed.callSid)")
        #expect(page.text.contains("action=\"/calls/\(missed.callSid)/callback\""), "the Call back button")
        let pressed = try await member.post("/calls/\(missed.callSid)/callback", form: [("csrf", try #require(page.csrf)), ("phone", "")])
        #expect(pressed.status == 303)
        let placed = try #require(telephony.stack.fake.placedCalls.first)
        #expect(placed.call.to == office && placed.call.from == number)
        let done = try await member.get("/calls/\(missed.callSid)?done=callback")
        #expect(done.text.contains("Your phone will ring now"))

        let played = try await telephony.driver.answerPlacedCall(sid: placed.call.sid, dialledLeg: .answers(talkSeconds: 20),
                                                                 recordingWAV: wavFile(samples: 16_000, channels: 2))
        #expect(played.dialled == [caller])
        let whispered = played.heard.compactMap { heard -> String? in if case .whispered(let text) = heard { text } else { nil } }
        #expect(whispered.count == 1 && whispered[0].lowercased().contains("record"), "the greeting before connection: \(played.heard)")
        #expect(try await eventually {
            _ = await telephony.gateway.instance.jobs.runDue()
            let call = try await calls.getCall(.with { $0.orgID = org; $0.callID = placed.call.sid }, options: try bearer(admin)).call
            return call.outcome == .answered && call.callbackOf == missed.callSid && call.direction == .outbound && call.recorded
        })

        let analyst = try await d.signedIn(.analyst, org: org, admin: admin)
        let seen = try await analyst.get("/calls/\(missed.callSid)")
        #expect(seen.status == 200 && !seen.text.contains("/callback\""))
        let refused = try await analyst.post("/calls/\(missed.callSid)/callback", form: [("csrf", try #require(seen.csrf)), ("phone", "")])
        #expect(refused.status == 403)
        #expect(telephony.stack.fake.placedCalls.count == 1, "nothing placed for the analyst")
        await d.stop()
    }
}
