import FakeTwilio
import Foundation
import Testing
import Twilio

@Suite("Twilio: TwiML answers")
struct TwiMLTests {
    static let declaration = #"<?xml version="1.0" encoding="UTF-8"?>"#

    @Test("An inbound call: the notice, then a dual-channel recorded <Dial> with its whisper and callbacks, exactly")
    func inboundAnswer() {
        let twiml = TwiML([
            .say(TwiML.Say("This call is recorded.", voice: "Polly.Amy", language: "en-GB")),
            .dial(TwiML.Dial([TwiML.Number("+441615550100", url: "https://tel.example.test/twilio/whisper?source=google")],
                             action: "https://tel.example.test/twilio/dial-ended", method: .post, callerId: "+447700900123",
                             timeoutSeconds: 20, record: .recordFromAnswerDual,
                             recordingStatusCallback: "https://tel.example.test/twilio/recording",
                             recordingStatusCallbackMethod: .post, recordingStatusCallbackEvent: [.completed, .absent])),
        ])
        #expect(twiml.rendered == Self.declaration + "<Response>"
            + #"<Say voice="Polly.Amy" language="en-GB">This call is recorded.</Say>"#
            + #"<Dial action="https://tel.example.test/twilio/dial-ended" method="POST" callerId="+447700900123" timeout="20" "#
            + #"record="record-from-answer-dual" recordingStatusCallback="https://tel.example.test/twilio/recording" "#
            + #"recordingStatusCallbackMethod="POST" recordingStatusCallbackEvent="completed absent">"#
            + #"<Number url="https://tel.example.test/twilio/whisper?source=google">+441615550100</Number></Dial>"#
            + "</Response>")
        #expect(TwiML.contentType == "application/xml")
    }

    @Test("Voicemail, rejection, pause, play, redirect and hangup, exactly; an empty answer is <Response/>")
    func otherVerbs() {
        let twiml = TwiML([
            .pause(seconds: 1),
            .play(TwiML.Play("https://tel.example.test/audio/closed.wav", loop: 1)),
            .record(TwiML.Record(action: "https://tel.example.test/twilio/voicemail-ended", maxLengthSeconds: 120, playBeep: true,
                                 recordingStatusCallback: "https://tel.example.test/twilio/recording",
                                 recordingStatusCallbackEvent: [.completed])),
            .redirect(url: "https://tel.example.test/twilio/next"),
            .hangup,
        ])
        #expect(twiml.rendered == Self.declaration + "<Response>" + #"<Pause length="1"/>"#
            + #"<Play loop="1">https://tel.example.test/audio/closed.wav</Play>"#
            + #"<Record action="https://tel.example.test/twilio/voicemail-ended" maxLength="120" playBeep="true" "#
            + #"recordingStatusCallback="https://tel.example.test/twilio/recording" recordingStatusCallbackEvent="completed"/>"#
            + #"<Redirect method="POST">https://tel.example.test/twilio/next</Redirect><Hangup/></Response>"#)
        #expect(TwiML([.reject(.busy)]).rendered == Self.declaration + #"<Response><Reject reason="busy"/></Response>"#)
        #expect(TwiML().rendered == Self.declaration + "<Response/>")
    }

    @Test("Hostile text stays text: markup, quotes and ampersands are escaped, control characters dropped, in text and attributes")
    func escaping() throws {
        let hostile = #"Smith & Co </Say><Dial>+449999</Dial> "quoted" 'single'"# + "\u{0}\u{7}\tend"
        let twiml = TwiML([
            .say(TwiML.Say(hostile, voice: #"Polly.Amy" evil="1"#)),
            .dial(TwiML.Dial([TwiML.Number("+441615550100", url: "https://tel.example.test/w?a=1&b=<2>")])),
        ])
        #expect(twiml.rendered == Self.declaration + "<Response>"
            + #"<Say voice="Polly.Amy&quot; evil=&quot;1">Smith &amp; Co &lt;/Say&gt;&lt;Dial&gt;+449999&lt;/Dial&gt; "quoted" 'single'"#
            + "\tend</Say>"
            + #"<Dial><Number url="https://tel.example.test/w?a=1&amp;b=&lt;2&gt;">+441615550100</Number></Dial></Response>"#)
        // Read back as Twilio would read it: the same verbs, the text intact but for the dropped controls.
        let read = try TwiMLReader.read(Data(twiml.rendered.utf8))
        guard case .say(let say) = read.verbs.first else { Issue.record("no <Say>"); return }
        #expect(say.text == #"Smith & Co </Say><Dial>+449999</Dial> "quoted" 'single'"# + "\tend")
        #expect(say.voice == #"Polly.Amy" evil="1"#)
        #expect(read.verbs.count == 2)
    }

    @Test("Every verb reads back as written (the fake's reader is the builder's inverse)")
    func readBack() throws {
        let twiml = TwiML([
            .say(TwiML.Say("Hello", voice: "Polly.Brian", language: "en-GB", loop: 2)),
            .dial(TwiML.Dial([TwiML.Number("+441615550100", url: "https://x.test/w", method: .post)], action: "https://x.test/a",
                             callerId: "+447700900123", timeoutSeconds: 25, record: .recordFromAnswerDual,
                             recordingStatusCallback: "https://x.test/r", recordingStatusCallbackEvent: [.inProgress, .completed],
                             answerOnBridge: true)),
            .record(TwiML.Record(action: "https://x.test/v", timeoutSeconds: 5, maxLengthSeconds: 60, playBeep: false, finishOnKey: "#")),
            .reject(.rejected), .hangup, .pause(seconds: 2), .redirect(url: "https://x.test/n", method: .get),
        ])
        #expect(try TwiMLReader.read(Data(twiml.rendered.utf8)) == twiml)
    }
}
