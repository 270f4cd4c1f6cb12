import CallTraceOutbound
import CallTraceProto
import CallTraceServiceHost
import Foundation
import TranscriptText

/// Audio to transcribe, as media stores it: `size` bytes arriving in `body` while the engine
/// sends them on (never whole in memory).
struct AudioInput: Sendable {
    let size: Int
    let body: StreamedBody
    /// e.g. `audio/wav`, `audio/mpeg`, `audio/ogg`.
    let contentType: String
    /// 2: one party per channel.
    let channels: Int
}

/// A speech-to-text sub-processor.
protocol TranscriptionEngine: Sendable {
    var name: String { get }
    func transcribe(_ audio: AudioInput, model: String, language: String) async throws -> [HeardSegment]
}

/// An analysis engine: the transcript's text in, the checked JSON answer out.
protocol AnalysisEngine: Sendable {
    var name: String { get }
    func analyse(_ transcript: String) async throws -> CallAnalysis
}

/// How an HTTPS answer becomes a job's outcome: 429, 529 and 5xx are retried (no sooner than
/// Retry-After says); any other 4xx is permanent. The reason names the provider and the status,
/// never the body (it may quote what was said).
enum ProviderAnswer {
    static func check(_ response: HTTPSResponse, provider: String) throws {
        switch response.status {
        case 200..<300:
            return
        case 429, 529, 500...599:
            let seconds = response.headers["retry-after"].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? 0
            throw RetryLater("\(provider) answered \(response.status)\(seconds > 0 ? ", retry after \(seconds) s" : "")",
                             after: .seconds(min(max(seconds, 0), 3600)))
        default:
            throw PermanentJobFailure("\(provider) refused the request: HTTP \(response.status)")
        }
    }
}

/// Deepgram's pre-recorded API, `POST /v1/listen`, with the audio as the body. Always sends
/// `mip_opt_out=true`: without it Deepgram may keep the audio to improve its models, which
/// would break P5. Two-channel calls are sent `multichannel=true` (channel 0 is the caller,
/// channel 1 the firm); mono calls are diarised.
struct DeepgramEngine: TranscriptionEngine {
    let name = "deepgram"
    /// e.g. `https://api.deepgram.com` or `https://api.eu.deepgram.com`.
    let endpoint: String
    let apiKey: String
    let transport: any HTTPSTransport
    static let defaultModel = "nova-2-phonecall"

    func url(channels: Int, model: String, language: String) -> String {
        var query = [("model", model.isEmpty ? Self.defaultModel : model), ("punctuate", "true"), ("utterances", "true"),
                     ("smart_format", "true"), ("mip_opt_out", "true")]
        if !language.isEmpty { query.append(("language", language)) }
        query.append(channels == 2 ? ("multichannel", "true") : ("diarize", "true"))
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        return endpoint.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/v1/listen?"
            + query.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&")
    }

    func transcribe(_ audio: AudioInput, model: String, language: String) async throws -> [HeardSegment] {
        let response = try await transport.send(HTTPSRequest(
            url: url(channels: audio.channels, model: model, language: language),
            headers: [("Authorization", "Token \(apiKey)"), ("Content-Type", audio.contentType)], body: .stream(length: audio.size, audio.body),
            timeout: .seconds(600)))
        try ProviderAnswer.check(response, provider: "deepgram")
        return try Self.segments(response.body, channels: audio.channels)
    }

    /// Utterances in time order, with their words' times (`DeepgramAnswer`, fuzzed).
    static func segments(_ body: Data, channels: Int) throws -> [HeardSegment] {
        guard let segments = DeepgramAnswer.segments(body, channels: channels) else {
            throw PermanentJobFailure("deepgram's answer is not the JSON of /v1/listen")
        }
        return segments
    }
}

/// Anthropic's Messages API, `POST /v1/messages`, asked for the analysis as one JSON object.
/// A malformed answer fails the job with a reason; it is never stored half-checked.
struct AnthropicEngine: AnalysisEngine {
    let name = "anthropic"
    let endpoint: String
    let apiKey: String
    let model: String
    let transport: any HTTPSTransport
    static let version = "2023-06-01"
    static let defaultModel = "claude-sonnet-4-5"

    static let instructions = """
        You analyse the transcript of a phone call to a UK law firm. Answer with one JSON object and nothing else:
        {"practice_area": one of \(CallAnalysis.practiceAreas.map { "\"\($0)\"" }.joined(separator: ", ")),
         "new_enquiry": true if the caller is not an existing client, "urgency": "low", "normal" or "high",
         "callback_requested": true if the caller asked to be called back,
         "summary": two or three sentences on what the caller needs, without card or bank details}.
        """

    struct Request: Encodable {
        struct Message: Encodable {
            let role: String
            let content: String
        }
        let model: String
        let max_tokens: Int
        let system: String
        let messages: [Message]
    }

    func analyse(_ transcript: String) async throws -> CallAnalysis {
        let body = try JSONEncoder().encode(Request(model: model.isEmpty ? Self.defaultModel : model, max_tokens: 1024, system: Self.instructions,
                                                    messages: [.init(role: "user", content: transcript)]))
        let response = try await transport.send(HTTPSRequest(
            url: endpoint.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/v1/messages",
            headers: [("x-api-key", apiKey), ("anthropic-version", Self.version), ("content-type", "application/json")], body: body))
        try ProviderAnswer.check(response, provider: "anthropic")
        do {
            return try AnthropicAnswer.analysis(response.body)
        } catch {
            throw PermanentJobFailure("anthropic's \(error)")
        }
    }
}

/// The `local` engine as an `AnalysisEngine`.
struct LocalEngine: AnalysisEngine {
    let name = "local"
    func analyse(_ transcript: String) async throws -> CallAnalysis { LocalAnalyser.analyse(transcript) }
}
