import CallTraceAPI
import CallTraceOutbound
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import Foundation
import SwiftProtobuf
import TranscriptText

/// `calltrace.transcript.v1.TranscriptService`.
struct TranscriptHandler: Calltrace_Transcript_V1_TranscriptServiceHandler {
    let rules: TranscriptRules
    let authorizer: any Authorizing
    /// The gateways that may give a call's first transcript as themselves (their own speech-to-text).
    let telephonyGateways: Set<String>
    let policies = Calltrace_Transcript_V1_TranscriptServicePolicies(
        getTranscript: .gateways | .operators, submitTranscript: .gateways | .operators, deleteTranscript: .gateways | .operators,
        recordingStored: .service("media"), setTranscriptionSettings: .gateways | .operators,
        getTranscriptionSettings: .gateways | .operators | .service("compliance"))

    init(rules: TranscriptRules, authorizer: any Authorizing, telephonyGateways: [String]) {
        self.rules = rules
        self.authorizer = authorizer
        self.telephonyGateways = Set(telephonyGateways)
    }

    func getTranscript(_ request: Calltrace_Transcript_V1_GetTranscriptRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_GetTranscriptResponse {
        let reading = try await rules.transcript(org: request.orgID, callID: request.callID)
        return .with {
            $0.state = reading.state
            $0.failureReason = reading.failureReason
            if let transcript = reading.transcript { $0.transcript = transcript.proto }
            if let analysis = reading.analysis { $0.analysis = analysis.proto }
        }
    }

    func submitTranscript(_ request: Calltrace_Transcript_V1_SubmitTranscriptRequest, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_SubmitTranscriptResponse {
        // A telephony gateway may give the first transcript as itself (its own speech-to-text);
        // a user (transcripts.read) gives one as themselves, and replaces a stored one only with
        // records.delete as well: the text it replaces is gone for good. (Checked here: the proto
        // declares `in_handler`.)
        let actor: String
        let mayReplace: Bool
        if context.peer.kind == .gateway && context.metadata["authorization"] == nil {
            guard telephonyGateways.contains(context.peer.name) else {
                throw RPCError(.permissionDenied, "\(context.peer) reports no calls (not one of telephony_gateways): a transcript needs a user's bearer token")
            }
            try OrganizationID.validate(request.orgID)
            context.annotate(org: request.orgID)
            actor = context.peerActor
            mayReplace = false
        } else {
            let who = try await context.principal(in: request.orgID, may: .transcriptsRead, via: authorizer)
            actor = who.actor
            if try await rules.hasTranscript(org: request.orgID, callID: request.callID) {
                _ = try await context.principal(in: request.orgID, may: .recordsDelete, via: authorizer)
                mayReplace = true
            } else {
                mayReplace = false
            }
        }
        let transcript = try await rules.submit(request.segments.map(Segment.init), org: request.orgID, callID: request.callID,
                                                replacing: mayReplace, by: actor)
        return .with { $0.transcript = transcript.proto }
    }

    func deleteTranscript(_ request: Calltrace_Transcript_V1_DeleteTranscriptRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_DeleteTranscriptResponse {
        try await rules.deleteTranscript(org: request.orgID, callID: request.callID, by: who.actor)
        return .init()
    }

    func recordingStored(_ request: Calltrace_Transcript_V1_RecordingStoredRequest, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_RecordingStoredResponse {
        try OrganizationID.validate(request.orgID)
        context.annotate(org: request.orgID)
        let queued = try await rules.recordingStored(org: request.orgID, recording: request.recordingID, callID: request.callID,
                                                     channels: request.channels)
        return .with { $0.queued = queued }
    }

    func setTranscriptionSettings(_ request: Calltrace_Transcript_V1_SetTranscriptionSettingsRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_SetTranscriptionSettingsResponse {
        let row = try await rules.setSettings(Self.change(request.settings), org: request.orgID, by: who.actor)
        return .with { $0.settings = Self.proto(row) }
    }

    func getTranscriptionSettings(_ request: Calltrace_Transcript_V1_GetTranscriptionSettingsRequest, actor _: String, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_GetTranscriptionSettingsResponse {
        // Compliance asks as itself, so that notices and documents claim transcription only when it is on.
        let settings = try await rules.settings(org: request.orgID)
        return .with { $0.settings = Self.proto(settings) }
    }

    static func change(_ settings: Calltrace_Transcript_V1_TranscriptionSettings) -> TranscriptionSettingsChange {
        TranscriptionSettingsChange(enabled: settings.enabled, engine: settings.engine, analysisEngine: settings.analysisEngine,
                                    model: settings.model, language: settings.language)
    }

    static func proto(_ row: SettingsRow) -> Calltrace_Transcript_V1_TranscriptionSettings {
        .with {
            $0.enabled = row.enabled; $0.engine = row.engine; $0.analysisEngine = row.analysisEngine; $0.model = row.model; $0.language = row.language
            $0.cardDetails = row.enabled
                ? "card and bank details spoken in calls are found in the transcript, replaced there and muted in the recording"
                : "transcription is off, so card and bank details spoken in calls cannot be found: they stay in the recordings"
        }
    }
}

/// `calltrace.transcript.v1.SuppressionService`: the firm's data-protection staff, or compliance.
struct SuppressionHandler: Calltrace_Transcript_V1_SuppressionServiceHandler {
    let rules: CallRules
    let authorizer: any Authorizing
    let policies = Calltrace_Transcript_V1_SuppressionServicePolicies(
        addSuppression: .gateways | .operators | .service("compliance"), removeSuppression: .gateways | .operators | .service("compliance"),
        listSuppressions: .gateways | .operators | .service("compliance"))

    func addSuppression(_ request: Calltrace_Transcript_V1_AddSuppressionRequest, actor: String, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_AddSuppressionResponse {
        let deleted = try await rules.suppress(org: request.orgID, number: request.phoneNumber, reason: request.reason, by: actor)
        return .with { $0.analysesDeleted = UInt32(deleted) }
    }

    func removeSuppression(_ request: Calltrace_Transcript_V1_RemoveSuppressionRequest, actor: String, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_RemoveSuppressionResponse {
        try await rules.unsuppress(org: request.orgID, number: request.phoneNumber, by: actor)
        return .init()
    }

    func listSuppressions(_ request: Calltrace_Transcript_V1_ListSuppressionsRequest, actor _: String, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_ListSuppressionsResponse {
        let rows = try await rules.listedCallers(.suppressions, org: request.orgID)
        return .with {
            $0.suppressions = rows.map { row in .with { $0.numberMasked = row.masked; $0.reason = row.reason; $0.addedAtUnixMs = row.addedAt } }
        }
    }
}

/// Media, as the transcript service reaches it: audio to transcribe, ranges to mute.
struct MediaRecordings: RecordingAccess {
    let client: Calltrace_Media_V1_RecordingServiceClient
    /// The largest recording sent for transcription (the engines take the file in one request).
    static let maxBytes: UInt64 = 512 << 20
    /// Audio waiting between media and the engine, at most.
    static let bufferedBytes = 1 << 20

    /// Media's playback goes straight on to the engine through a small buffer: the service never
    /// holds a recording whole. A failure of either side ends both, with the first cause.
    func withAudio<T: Sendable>(org: String, recording: String, _ use: @escaping @Sendable (AudioInput) async throws -> T) async throws -> T {
        try await client.playRecording(.with { $0.orgID = org; $0.recordingID = recording; $0.reason = "transcription" },
                                       options: CallOptions(timeout: .seconds(600), failFast: true)) { stream in
            var messages = stream.makeAsyncIterator()
            guard let first = try await messages.next(), first.hasRecording else {
                throw RetryLater("media sent recording \(recording) without its description", after: .seconds(60))
            }
            guard first.recording.sizeBytes <= Self.maxBytes else {
                throw PermanentJobFailure("recording \(recording) is larger than \(Self.maxBytes >> 20) MiB; it is not transcribed")
            }
            let type: String = switch first.recording.format {
            case .mp3: "audio/mpeg"
            case .opus: "audio/ogg"
            case .flac: "audio/flac"
            default: "audio/wav"
            }
            let body = StreamedBody(capacity: Self.bufferedBytes)
            let audio = AudioInput(size: Int(first.recording.sizeBytes), body: body, contentType: type, channels: Int(first.recording.channels))
            async let answer = Self.consume(audio, with: use)
            do {
                var reading = await body.write(first.data)
                while reading, let message = try await messages.next() { reading = await body.write(message.data) }
                body.finish()
            } catch {
                body.fail(error)
                _ = try? await answer
                throw error
            }
            return try await answer
        }
    }

    /// Runs `use`; when it returns or throws, the audio is read no more, whether or not it read it all.
    private static func consume<T: Sendable>(_ audio: AudioInput, with use: @Sendable (AudioInput) async throws -> T) async throws -> T {
        defer { audio.body.transferEnded() }
        return try await use(audio)
    }

    func redact(org: String, recording: String, ranges: [(UInt64, UInt64)], reason: String) async throws {
        let fitted = Self.fitted(ranges)
        guard !fitted.isEmpty else { return }
        _ = try await client.redactRecording(.with {
            $0.orgID = org; $0.recordingID = recording; $0.reason = reason
            $0.ranges = fitted.map { range in .with { $0.startMs = range.lowerBound; $0.endMs = range.upperBound } }
        }, options: CallOptions(timeout: .seconds(30), failFast: true))
    }

    /// What media takes in one call (`RedactionLimits`): at most a thousand ranges, none past
    /// 7 days of audio. Overlapping ranges are merged; past the limit (a call of more than a
    /// thousand details read) the narrowest gaps between ranges are closed, muting what little
    /// was said between two details close together, so that every detail is muted.
    static func fitted(_ ranges: [(UInt64, UInt64)]) -> [Range<UInt64>] {
        let merged = ranges.compactMap { range -> Range<UInt64>? in
            let end = Swift.min(range.1, RedactionLimits.maxAudioMs)
            return range.0 < end ? range.0..<end : nil
        }.merged()
        let maxRanges = RedactionLimits.maxRanges
        guard merged.count > maxRanges else { return merged }
        // Every gap up to the width of the (count - limit)th narrowest is closed: at least enough.
        let gaps = zip(merged, merged.dropFirst()).map { $1.lowerBound - $0.upperBound }.sorted()
        let widestClosed = gaps[merged.count - maxRanges - 1]
        var fitted: [Range<UInt64>] = []
        for range in merged {
            if let last = fitted.last, range.lowerBound - last.upperBound <= widestClosed {
                fitted[fitted.count - 1] = last.lowerBound..<range.upperBound
            } else {
                fitted.append(range)
            }
        }
        return fitted
    }
}

/// A call's record, transcript and analysis for export: one JSON document and the same as text.
struct CallExport {
    let json: String
    let text: String

    init(call: Calltrace_Transcript_V1_Call, reading: TranscriptRules.Reading) throws {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        let callJSON = try call.jsonString(options: options)
        let transcriptJSON = try reading.transcript.map { try $0.proto.jsonString(options: options) } ?? "null"
        let analysisJSON = try reading.analysis.map { try $0.proto.jsonString(options: options) } ?? "null"
        json = "{\"call\":\(callJSON),\"transcript\":\(transcriptJSON),\"analysis\":\(analysisJSON)}"
        let started = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(call.startedAtUnixMs) / 1000))
        var lines = ["Call \(call.callID)", "Started: \(started)", "Caller: \(call.callerNumber)", "Tracking number: \(call.trackingNumber)",
                     "Source: \(call.source)\(call.campaign.isEmpty ? "" : " (\(call.campaign))")", "Outcome: \(call.outcome)",
                     "Duration: \(call.durationMs / 1000) s"]
        if !call.matterReference.isEmpty { lines.append("Matter: \(call.matterReference)") }
        if let analysis = reading.analysis {
            lines += ["", "Summary (\(analysis.engine)): \(analysis.summary)", "Practice area: \(analysis.practiceArea)",
                      "New enquiry: \(analysis.newEnquiry ? "yes" : "no")", "Urgency: \(analysis.urgency)"]
        }
        if let transcript = reading.transcript {
            lines += ["", "Transcript (\(transcript.engine)):"]
            lines += transcript.segments.map { "[\(Self.clock($0.startMs))] \($0.speaker): \($0.text)" }
        }
        text = lines.joined(separator: "\n") + "\n"
    }

    static func clock(_ ms: UInt64) -> String { String(format: "%02d:%02d", ms / 60_000, (ms / 1000) % 60) }
}
