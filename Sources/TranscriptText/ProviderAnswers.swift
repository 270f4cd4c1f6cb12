import Foundation

/// One stretch of a call's speech: who spoke, on which channel, when, and what they said.
public struct Segment: Sendable, Equatable {
    /// "caller", "firm", or the engine's label ("speaker 0").
    public var speaker: String
    public var channel: UInt32
    public var startMs: UInt64
    public var endMs: UInt64
    public var text: String

    public init(speaker: String = "", channel: UInt32 = 0, startMs: UInt64 = 0, endMs: UInt64 = 0, text: String = "") {
        (self.speaker, self.channel, self.startMs, self.endMs, self.text) = (speaker, channel, startMs, endMs, text)
    }
}

/// One word as heard, with its time: kept only while the transcript is redacted, so the audio
/// is muted word by word, never stored.
public struct TimedWord: Sendable, Equatable {
    public let startMs: UInt64
    public let endMs: UInt64
    /// As it appears in the segment's text (punctuated and formatted).
    public let text: String

    public init(startMs: UInt64, endMs: UInt64, text: String) {
        (self.startMs, self.endMs, self.text) = (startMs, endMs, text)
    }
}

/// A transcript segment and, when the engine gave them, the times of its words.
public struct HeardSegment: Sendable {
    public var segment: Segment
    public var words: [TimedWord]

    public init(segment: Segment, words: [TimedWord] = []) {
        (self.segment, self.words) = (segment, words)
    }
}

/// What Deepgram's `POST /v1/listen` answers, read as outside bytes: any JSON at all gives
/// segments or nil, never a trap (a time of 1e300 seconds, a channel past UInt32, a negative
/// one). Fuzzed by `make fuzz` (`Tests/Fuzz/InputFuzzer.swift`).
public enum DeepgramAnswer {
    struct Body: Decodable {
        struct Results: Decodable {
            struct Channel: Decodable {
                struct Alternative: Decodable { let transcript: String }
                let alternatives: [Alternative]
            }
            struct Utterance: Decodable {
                struct Word: Decodable {
                    let word: String
                    let start: Double
                    let end: Double
                    let punctuated_word: String?  // swiftlint:disable:this identifier_name
                }
                let start: Double
                let end: Double
                let channel: Int?
                let speaker: Int?
                let transcript: String
                let words: [Word]?
            }
            let channels: [Channel]?
            let utterances: [Utterance]?
        }
        let results: Results
    }

    /// Utterances in time order, with their words' times (or each channel's whole transcript when
    /// Deepgram sent no utterances); nil when `body` is not the JSON of /v1/listen.
    public static func segments(_ body: Data, channels: Int) -> [HeardSegment]? {
        guard let answer = try? JSONDecoder().decode(Body.self, from: body) else { return nil }
        func speaker(channel: Int, speaker: Int?) -> String {
            if channels == 2 { return channel == 0 ? "caller" : "firm" }
            return "speaker \(speaker ?? 0)"
        }
        if let utterances = answer.results.utterances, !utterances.isEmpty {
            return utterances.sorted { $0.start < $1.start }.map { utterance in
                HeardSegment(segment: Segment(speaker: speaker(channel: utterance.channel ?? 0, speaker: utterance.speaker),
                                              channel: UInt32(clamping: max(0, utterance.channel ?? 0)), startMs: milliseconds(utterance.start),
                                              endMs: milliseconds(utterance.end), text: utterance.transcript),
                             words: (utterance.words ?? []).map {
                    TimedWord(startMs: milliseconds($0.start), endMs: milliseconds($0.end), text: $0.punctuated_word ?? $0.word)
                })
            }
        }
        return (answer.results.channels ?? []).enumerated().compactMap { index, channel in
            guard let text = channel.alternatives.first?.transcript, !text.isEmpty else { return nil }
            return HeardSegment(segment: Segment(speaker: speaker(channel: index, speaker: nil), channel: UInt32(clamping: index), text: text))
        }
    }

    /// Seconds as whole milliseconds: negative as 0, and anything past a million years (where a
    /// Double's milliseconds would overflow UInt64 and trap) as a million years.
    static func milliseconds(_ seconds: Double) -> UInt64 {
        let milliseconds = seconds * 1000
        guard milliseconds > 0 else { return 0 }  // and NaN
        return UInt64(min(milliseconds, 3.2e16).rounded())
    }
}

/// What Anthropic's `POST /v1/messages` answers, read as outside bytes: the analysis object
/// the model wrote (even wrapped in a code fence or a sentence), checked, or why not.
public enum AnthropicAnswer {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// Not the JSON of /v1/messages.
        case notMessages
        /// Its text holds no JSON object.
        case noObject
        /// The object is not a valid analysis.
        case invalid(String)

        public var description: String {
            switch self {
            case .notMessages: "answer is not the JSON of /v1/messages"
            case .noObject: "answer holds no JSON object"
            case .invalid(let reason): "answer: \(reason)"
            }
        }
    }

    struct Body: Decodable {
        struct Block: Decodable {
            let type: String
            let text: String?
        }
        let content: [Block]
    }

    public static func analysis(_ body: Data) throws(Failure) -> CallAnalysis {
        guard let answer = try? JSONDecoder().decode(Body.self, from: body) else { throw .notMessages }
        let text = answer.content.filter { $0.type == "text" }.compactMap(\.text).joined()
        guard let open = text.firstIndex(of: "{"), let close = text.lastIndex(of: "}"), open < close else { throw .noObject }
        do {
            return try CallAnalysis.validated(json: Data(text[open...close].utf8))
        } catch {
            throw .invalid("\(error)")
        }
    }
}
