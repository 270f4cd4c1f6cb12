import Foundation
import Testing
@testable import TranscriptText

/// Deepgram's and Anthropic's answers are outside bytes: whatever they hold, reading them gives
/// segments, an analysis or a reason, never a trap that would take the transcript service down
/// (the fuzzer's inputs, `make fuzz`, run the same functions).
@Suite("Sub-processors' answers, read as outside bytes")
struct ProviderAnswerTests {
    @Test("Deepgram: times past UInt64's milliseconds, channels past UInt32 or below zero are clamped, not trapped on")
    func deepgramExtremes() throws {
        let body = Data(#"""
            {"results": {"utterances": [
              {"start": 1e300, "end": 1.8e16, "channel": 1099511627776, "speaker": -1, "transcript": "late",
               "words": [{"word": "late", "start": -5, "end": 1e308}]},
              {"start": -3, "end": 0.0015, "channel": -4, "transcript": "early"}
            ]}}
            """#.utf8)
        let segments = try #require(DeepgramAnswer.segments(body, channels: 2))
        #expect(segments.map(\.segment.text) == ["early", "late"])
        #expect(segments[0].segment.channel == 0 && segments[0].segment.startMs == 0 && segments[0].segment.endMs == 2)
        #expect(segments[1].segment.channel == UInt32.max && segments[1].segment.startMs == 32_000_000_000_000_000)
        #expect(segments[1].words == [TimedWord(startMs: 0, endMs: 32_000_000_000_000_000, text: "late")])
    }

    @Test("Deepgram: anything but the JSON of /v1/listen is nil")
    func deepgramNotTheAnswer() {
        for body in ["", "null", "[]", #"{"results": 7}"#, #"{"results": {"utterances": [{"start": "x"}]}}"#, "{\"results\": {}} trailing"] {
            #expect(DeepgramAnswer.segments(Data(body.utf8), channels: 1) == nil, "\(body)")
        }
        #expect(DeepgramAnswer.segments(Data(#"{"results": {}}"#.utf8), channels: 1)?.isEmpty == true)
    }

    @Test("Anthropic: the analysis inside the text, or which part of the answer was wrong")
    func anthropic() throws {
        let analysis = #"{"practice_area": "family", "new_enquiry": true, "urgency": "high", "callback_requested": false, "summary": "A divorce."}"#
        func answer(_ text: String) -> Data {
            Data(#"{"content": [{"type": "text", "text": \#(String(decoding: try! JSONEncoder().encode(text), as: UTF8.self))}]}"#.utf8)
        }
        #expect(try AnthropicAnswer.analysis(answer("Here it is: ```\(analysis)```")).practiceArea == "family")
        #expect(throws: AnthropicAnswer.Failure.notMessages) { try AnthropicAnswer.analysis(Data("<html>".utf8)) }
        #expect(throws: AnthropicAnswer.Failure.noObject) { try AnthropicAnswer.analysis(answer("} no object {")) }
        #expect(throws: AnthropicAnswer.Failure.self) { try AnthropicAnswer.analysis(answer(#"{"practice_area": "astrology"}"#)) }
    }
}
