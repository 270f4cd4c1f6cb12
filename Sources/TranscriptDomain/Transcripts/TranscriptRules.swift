import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import Foundation
import TranscriptText

/// Where transcription gets its audio, and where it sends the time ranges to mute: media,
/// through its typed client, as the transcript service.
protocol RecordingAccess: Sendable {
    /// Runs `use` on the recording's audio while it streams from media.
    func withAudio<T: Sendable>(org: String, recording: String, _ use: @escaping @Sendable (AudioInput) async throws -> T) async throws -> T
    func redact(org: String, recording: String, ranges: [(UInt64, UInt64)], reason: String) async throws
}

/// The engines this deployment is configured with (API keys and endpoints are the operator's).
struct Engines: Sendable {
    var transcription: [String: any TranscriptionEngine] = [:]
    var analysis: [String: any AnalysisEngine] = ["local": LocalEngine()]
}

/// The transcription settings a firm asks for, as given (`TranscriptRules.setSettings` checks
/// them; empty engines and language take their defaults).
struct TranscriptionSettingsChange: Sendable {
    var enabled = false
    var engine = ""
    var analysisEngine = ""
    var model = ""
    var language = ""
}

/// Transcript's rules for transcripts and analyses (P1, P2, P4, P5, P16): an organisation turns
/// transcription on and picks its engines; each stored recording gets a durable transcription
/// job, and each transcript an analysis job. Card and bank details are taken out of the text
/// before it is stored, and the times they were said are muted in the recording. Nothing runs
/// for a suppressed caller. Transcripts and analyses are sealed under the organisation's key.
struct TranscriptRules: Sendable {
    typealias State = Calltrace_Transcript_V1_TranscriptionState
    static let engineNames = ["deepgram", "manual"]

    let calls: CallRules
    let engines: Engines
    let jobs: JobQueue
    var repository: any CallRepository { calls.repository }
    var keys: KeyRing { calls.keys }
    var outbox: AuditOutbox { calls.outbox }
    var clock: any WallClock { calls.clock }

    // MARK: Settings

    func settings(org: String) async throws -> SettingsRow {
        try await repository.read { tx in try tx.settings(org: org) } ?? SettingsRow()
    }

    func setSettings(_ settings: TranscriptionSettingsChange, org: String, by actor: String) async throws -> SettingsRow {
        var row = SettingsRow(enabled: settings.enabled, engine: settings.engine.isEmpty ? "deepgram" : settings.engine,
                              analysisEngine: settings.analysisEngine.isEmpty ? "local" : settings.analysisEngine,
                              model: try DomainText.line(settings.model, "model", max: 64),
                              language: try DomainText.line(settings.language, "language", max: 16))
        if row.language.isEmpty { row.language = "en-GB" }
        guard Self.engineNames.contains(row.engine) else { throw DomainError.invalid("engine must be deepgram or manual") }
        guard ["local", "anthropic"].contains(row.analysisEngine) else { throw DomainError.invalid("analysis_engine must be local or anthropic") }
        if row.enabled && row.engine != "manual" && engines.transcription[row.engine] == nil {
            throw DomainError.wrongState("this deployment has no \(row.engine) API key configured; ask its operator")
        }
        if engines.analysis[row.analysisEngine] == nil {
            throw DomainError.wrongState("this deployment has no \(row.analysisEngine) API key configured; ask its operator")
        }
        let checked = row
        try await repository.write { [outbox] tx in
            try tx.put(checked, org: org)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .transcriptionSettingsChanged, resource: .organisation(org),
                                          outcome: .success,
                                          detail: "enabled=\(checked.enabled); engine=\(checked.engine); analysis=\(checked.analysisEngine)"),
                              in: tx.connection)
        }
        return checked
    }

    // MARK: Transcripts

    /// Card and bank details out of every segment: the clean segments, how many details were
    /// replaced, and the time ranges of the segments that held them (to mute in the audio).
    static func redacted(_ segments: [Segment]) -> (segments: [Segment], count: Int, ranges: [(UInt64, UInt64)]) {
        redacted(segments.map { HeardSegment(segment: $0) })
    }

    /// Each segment's text redacted, the whole call read as one conversation (both parties, in
    /// time order: a number read over several segments is found as one), and the times to mute:
    /// the redacted words' own times when the engine gave them, else (or when a detail cannot be
    /// placed among them) the whole segment.
    static func redacted(_ heard: [HeardSegment]) -> (segments: [Segment], count: Int, ranges: [(UInt64, UInt64)]) {
        var count = 0
        var ranges: [(UInt64, UInt64)] = []
        let results = Redactor.redact(transcript: heard.map {
            Redactor.Utterance($0.segment.text, speaker: "\($0.segment.channel):\($0.segment.speaker)", startMs: $0.segment.startMs)
        })
        let clean = zip(heard, results).map { item, result -> Segment in
            let segment = item.segment
            guard result.count > 0 else { return segment }
            count += result.count
            ranges += muted(result.spans, in: segment, words: item.words)
            var redacted = segment
            redacted.text = result.text
            return redacted
        }
        return (clean, count, ranges)
    }

    /// The times of the words that `spans` (character offsets in the segment's text) cover.
    static func muted(_ spans: [Range<Int>], in segment: Segment, words: [TimedWord]) -> [(UInt64, UInt64)] {
        let whole = segment.endMs > segment.startMs ? [(segment.startMs, segment.endMs)] : []
        guard !words.isEmpty else { return whole }
        // Each word found in the text, in order, as character offsets (counted on from the last
        // word found: counting each from the start would read a long segment once per word).
        let text = segment.text
        var placed: [(Range<Int>, TimedWord)] = []
        var (cursor, offset) = (text.startIndex, 0)
        for word in words where !word.text.isEmpty {
            guard let found = text.range(of: word.text, range: cursor..<text.endIndex) else { return whole }
            let start = offset + text.distance(from: cursor, to: found.lowerBound)
            let end = start + text.distance(from: found.lowerBound, to: found.upperBound)
            placed.append((start..<end, word))
            (cursor, offset) = (found.upperBound, end)
        }
        // The words each span covers, both in order: one pass over the words for all the spans.
        var ranges: [(UInt64, UInt64)] = []
        var next = 0
        for span in spans.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            guard !span.isEmpty else { return whole }
            while next < placed.count, placed[next].0.upperBound <= span.lowerBound { next += 1 }
            var last = next
            while last < placed.count, placed[last].0.lowerBound < span.upperBound { last += 1 }
            guard last > next, placed[last - 1].1.endMs > placed[next].1.startMs else { return whole }
            ranges.append((placed[next].1.startMs, placed[last - 1].1.endMs))
        }
        return ranges
    }

    /// Seals and stores a redacted transcript (`redacted(_:)`), replacing any earlier one, and
    /// queues its analysis.
    /// - Parameter muteLater: queue the muting of the redacted ranges in the call's recording
    ///   (a transcript given by hand; the transcription job mutes before it stores).
    /// Stores a call's transcript (redacted) and queues its analysis. `replacing`: whether a
    /// transcript already stored may be replaced (ALREADY_EXISTS otherwise; audited
    /// `transcript.replaced` when it is). Nothing is sealed, and no key is made, before the call
    /// is known in `org`.
    func store(_ redacted: (segments: [Segment], count: Int, ranges: [(UInt64, UInt64)]), org: String, callID: String, engine: String,
               muteLater: Bool = false, replacing: Bool = true, by actor: String) async throws -> Transcript {
        guard try await repository.read({ tx in try tx.call(callID, org: org) }) != nil else {
            throw DomainError.notFound("call \(callID) not found in organisation \(org)")
        }
        let clean = redacted.segments
        let redactions = redacted.count
        let now = clock.nowUnixMs
        let transcript = Transcript(callID: callID, org: org, segments: clean, engine: engine, redactions: redactions, createdAt: now)
        let plain = try transcript.sealedForm()
        let callKeys = calls.callKeys
        return try await repository.write { [outbox, jobs] tx in
            guard let call = try tx.call(callID, org: org) else { throw DomainError.notFound("call \(callID) not found in organisation \(org)") }
            guard try tx.listedCaller(.suppressions, org: org, callerIndex: call.callerIndex) == nil else {
                throw DomainError.wrongState("the caller of call \(callID) objected: their calls are not transcribed")
            }
            guard call.recorded else {
                throw DomainError.wrongState("call \(callID) was not recorded (the firm had not accepted the processing agreement, or the caller objected): it takes no transcript")
            }
            let earlier = try tx.transcript(org: org, callID: callID)
            if let earlier, !replacing {
                // A gateway asking again because it lost the answer (transcript, or the connection,
                // died after the commit) gets the transcript it gave, and nothing happens twice.
                let stored = try Transcript(sealedForm: callKeys.open(earlier.sealedSegments, org: org, call: callID, .transcript,
                                                                      table: "transcripts", column: "segments"))
                if stored.engine == engine && stored.segments == clean { return stored }
                throw DomainError.alreadyExists("call \(callID) has a transcript: only a firm user with records.delete may replace it")
            }
            // A replaced transcript's key goes with it (and its analysis's): the text it replaces
            // cannot be read from any backup. Sealed in the transaction, so no deletion can
            // destroy the key between the sealing and the commit.
            if earlier != nil { try callKeys.destroy(org: org, calls: [callID], [.transcript]) }
            let sealed = try callKeys.seal(plain, org: org, call: callID, .transcript, table: "transcripts", column: "segments")
            try tx.put(TranscriptRow(org: org, callID: callID, engine: engine, sealedSegments: sealed, redactions: redactions, createdAt: now))
            _ = try tx.deleteAnalysis(org: org, callID: callID)
            try tx.put(TranscriptionRow(org: org, callID: callID, recordingID: call.recordingID, state: State.done.rawValue, failureReason: "",
                                        updatedAt: now))
            // A replaced transcript is ready again: another event.
            _ = try tx.appendEvent(org: org, kind: Calltrace_Transcript_V1_CallEventKind.transcriptReady.rawValue, callID: callID, at: now)
            try jobs.enqueue(Analyse(org: org, callID: callID), idempotencyKey: "\(Analyse.kind):\(org):\(callID):\(now)", in: tx.connection)
            if muteLater && !redacted.ranges.isEmpty {
                // A transcript given by hand found card details: the call's audio still speaks
                // them, now or once it is uploaded. Muted by a durable job, committed with the text.
                try jobs.enqueue(MuteRequest(org: org, callID: callID, ranges: redacted.ranges.map { [$0.0, $0.1] }),
                                 idempotencyKey: "\(MuteRequest.kind):\(org):\(callID):\(now)", in: tx.connection)
            }
            let replaced = earlier.map { "; replaced engine=\($0.engine) of \($0.createdAt)" } ?? ""
            try outbox.record(AuditRecord(org: org, actor: actor, action: earlier == nil ? .transcriptStored : .transcriptReplaced,
                                          resource: .call(callID), outcome: .success,
                                          detail: "engine=\(engine); redactions=\(redactions)\(replaced)"), in: tx.connection)
            return transcript
        }
    }

    /// A user's or gateway's transcript (the `manual` engine).
    func submit(_ segments: [Segment], org: String, callID: String, replacing: Bool, by actor: String) async throws -> Transcript {
        try CallID.validate(callID)
        guard (1...10_000).contains(segments.count) else { throw DomainError.invalid("a transcript has 1 to 10,000 segments") }
        guard segments.allSatisfy({ $0.text.utf8.count <= 20_000 && $0.speaker.count <= 64 && $0.endMs >= $0.startMs }) else {
            throw DomainError.invalid("a segment's text is at most 20,000 bytes, its speaker 64 characters, and it ends after it starts")
        }
        return try await store(Self.redacted(segments), org: org, callID: callID, engine: "manual", muteLater: true,
                               replacing: replacing, by: actor)
    }

    /// Whether the call has a transcript stored (false for an unknown call).
    func hasTranscript(org: String, callID: String) async throws -> Bool {
        try CallID.validate(callID)
        return try await repository.read { tx in try tx.transcript(org: org, callID: callID) != nil }
    }

    struct Reading: Sendable {
        var state: State = .unspecified
        var failureReason = ""
        var transcript: Transcript?
        var analysis: Analysis?
    }

    func transcript(org: String, callID: String) async throws -> Reading {
        try CallID.validate(callID)
        let (stored, analysis, progress) = try await repository.read { tx in
            // NOT_FOUND for another organisation's call or a deleted one.
            guard try tx.call(callID, org: org) != nil else { throw DomainError.notFound("call \(callID) not found in organisation \(org)") }
            return (try tx.transcript(org: org, callID: callID), try tx.analysis(org: org, callID: callID), try tx.transcription(org: org, callID: callID))
        }
        var reading = Reading()
        if let progress {
            reading.state = State(rawValue: progress.state) ?? .unspecified
            reading.failureReason = progress.failureReason
        }
        if let stored {
            let plain = try calls.callKeys.open(stored.sealedSegments, org: org, call: callID, .transcript, table: "transcripts", column: "segments")
            reading.transcript = try Transcript(sealedForm: plain)
            reading.state = .done
        }
        if let analysis {
            let plain = try calls.callKeys.open(analysis, org: org, call: callID, .transcript, table: "analyses", column: "analysis")
            reading.analysis = try Analysis(sealedForm: plain)
        }
        return reading
    }

    func deleteTranscript(org: String, callID: String, by actor: String) async throws {
        try CallID.validate(callID)
        try await repository.write { [outbox, callKeys = calls.callKeys] tx in
            guard try tx.deleteTranscript(org: org, callID: callID) else {
                throw DomainError.notFound("call \(callID) has no transcript in organisation \(org)")
            }
            _ = try tx.deleteAnalysis(org: org, callID: callID)
            try callKeys.destroy(org: org, calls: [callID], [.transcript])
            try outbox.record(AuditRecord(org: org, actor: actor, action: .transcriptDeleted, resource: .call(callID), outcome: .success),
                              in: tx.connection)
        }
        try await repository.checkpoint()
    }

    // MARK: Transcription

    /// Media stored a recording: queue its transcription when the organisation has it on, the
    /// engine is not `manual`, and the caller has not objected.
    func recordingStored(org: String, recording: String, callID: String, channels: UInt32) async throws -> Bool {
        try CallID.validate(callID)
        try CallID.validate(recording, field: "recording_id")
        let settings = try await settings(org: org)
        let now = clock.nowUnixMs
        return try await repository.write { [jobs] tx in
            guard var call = try tx.call(callID, org: org) else {
                // The gateway starts a call before it records it; media retries until it has.
                throw DomainError.notFound("call \(callID) not found in organisation \(org)")
            }
            if call.recordingID.isEmpty {
                call.recordingID = recording
                try tx.update(call)
            }
            let suppressed = try tx.listedCaller(.suppressions, org: org, callerIndex: call.callerIndex) != nil
            guard settings.enabled, settings.engine != "manual", !suppressed else { return false }
            try tx.put(TranscriptionRow(org: org, callID: callID, recordingID: recording, state: State.queued.rawValue, failureReason: "", updatedAt: now))
            try jobs.enqueue(Transcribe(org: org, callID: callID, recording: recording, channels: channels),
                             idempotencyKey: "\(Transcribe.kind):\(org):\(recording)", in: tx.connection)
            return true
        }
    }

    /// The transcription job: audio from media, text from the engine, card details out of both.
    func transcribe(org: String, callID: String, recording: String, from media: any RecordingAccess) async throws {
        let settings = try await settings(org: org)
        guard let call = try await repository.read({ tx in try tx.call(callID, org: org) }) else { return }  // deleted meanwhile
        guard settings.enabled, !(try await calls.isSuppressed(call)) else {
            try await setState(.unspecified, reason: "", org: org, callID: callID, recording: recording)
            return
        }
        guard let engine = engines.transcription[settings.engine] else {
            throw PermanentJobFailure("the \(settings.engine) engine is not configured on this deployment")
        }
        let segments = try await media.withAudio(org: org, recording: recording) { audio in
            try await engine.transcribe(audio, model: settings.model, language: settings.language)
        }
        let redacted = Self.redacted(segments)
        // Mute first: if storing then fails, the retry hears silence where the details were.
        if !redacted.ranges.isEmpty {
            do {
                try await media.redact(org: org, recording: recording, ranges: redacted.ranges, reason: "card or bank details")
            } catch let error as RPCError where error.code == .failedPrecondition {
                // Media cannot mute this file (it flags the recording): retrying would only send
                // the audio to the engine again. The text is stored redacted; the firm is told.
                try await recordMuteFailed(org: org, callID: callID, detail: "media cannot mute this recording (\(error.message))")
            }
        }
        _ = try await store(redacted, org: org, callID: callID, engine: engine.name, by: TranscriptService.actor)
    }

    /// Mutes the ranges of a hand-given transcript's card details in the call's recording. Until
    /// the recording is uploaded the job fails and is retried (every 10 minutes, for about a day
    /// and a half); when it is finally given up the firm's audit trail says the audio could not
    /// be muted (`recording.mute_failed`).
    /// The firm's audit trail says card details found in the call's transcript are still in its audio.
    func recordMuteFailed(org: String, callID: String, detail: String) async throws {
        try await repository.write { [outbox] tx in
            try outbox.record(AuditRecord(org: org, actor: TranscriptService.actor, action: .recordingMuteFailed, resource: .call(callID),
                                          outcome: .failed,
                                          detail: "card or bank details found in the transcript could not be muted in the audio" + (detail.isEmpty ? "" : ": \(detail)")),
                              in: tx.connection)
        }
    }

    func mute(_ request: MuteRequest, from media: any RecordingAccess, finalAttempt: Bool) async throws {
        guard let call = try await repository.read({ tx in try tx.call(request.callID, org: request.org) }) else { return }  // deleted meanwhile
        do {
            guard !call.recordingID.isEmpty else { throw DomainError.wrongState("call \(request.callID) has no recording yet to mute") }
            try await media.redact(org: request.org, recording: call.recordingID, ranges: request.ranges.map { ($0[0], $0[1]) },
                                   reason: "card or bank details in a transcript given by hand")
        } catch {
            // Media refusing the recording itself (a file it cannot decode, which it flags) will
            // not change with retrying: the firm hears of it at once.
            let refused = (error as? RPCError)?.code == .failedPrecondition
            if finalAttempt || refused {
                try? await recordMuteFailed(org: request.org, callID: request.callID,
                                            detail: refused ? "media cannot mute this recording (\((error as? RPCError)?.message ?? ""))" : "")
            }
            if refused { throw PermanentJobFailure("media cannot mute call \(request.callID)'s recording: \(error)") }
            throw error
        }
    }

    /// Records where a transcription stands, for `GetTranscript`.
    func setState(_ state: State, reason: String, org: String, callID: String, recording: String) async throws {
        let now = clock.nowUnixMs
        try await repository.write { tx in
            guard try tx.call(callID, org: org) != nil else { return }
            try tx.put(TranscriptionRow(org: org, callID: callID, recordingID: recording, state: state.rawValue, failureReason: reason, updatedAt: now))
        }
    }

    // MARK: Analysis

    /// The analysis job: the transcript's text through the organisation's analysis engine.
    func analyse(org: String, callID: String) async throws {
        let settings = try await settings(org: org)
        let reading = try? await transcript(org: org, callID: callID)
        guard let transcript = reading?.transcript, let call = try await repository.read({ tx in try tx.call(callID, org: org) }) else { return }
        guard !(try await calls.isSuppressed(call)) else { return }
        guard let engine = engines.analysis[settings.analysisEngine] else {
            throw PermanentJobFailure("the \(settings.analysisEngine) analysis engine is not configured on this deployment")
        }
        let text = transcript.segments.map { "\($0.speaker): \($0.text)" }.joined(separator: "\n")
        let result = try await engine.analyse(text)
        let analysis = Analysis(
            practiceArea: Calltrace_Transcript_V1_PracticeArea(rawValue: (CallAnalysis.practiceAreas.firstIndex(of: result.practiceArea) ?? 11) + 1)
                ?? .other,
            newEnquiry: result.newEnquiry, urgency: ["low": .low, "normal": .normal, "high": .high][result.urgency] ?? .normal,
            callbackRequested: result.callbackRequested, summary: Redactor.redact(result.summary).text, engine: engine.name)
        let plain = try analysis.sealedForm()
        let now = clock.nowUnixMs
        try await repository.write { [outbox, calls, callKeys = calls.callKeys] tx in
            guard try tx.transcript(org: org, callID: callID) != nil else { return }  // deleted meanwhile: no key is made for it
            let sealed = try callKeys.seal(plain, org: org, call: callID, .transcript, table: "analyses", column: "analysis")
            try tx.putAnalysis(sealed, org: org, callID: callID, at: now)
            // The suggestion staff confirm or correct (issue 32): the report counts it apart.
            if var call = try tx.call(callID, org: org) {
                call.suggestedEnquiry = (analysis.newEnquiry ? Calltrace_Transcript_V1_Enquiry.new : .notNew).rawValue
                call.suggestedPracticeArea = analysis.practiceArea.rawValue
                try tx.update(call)
                // Whoever chose to hear of new enquiries is told, unless staff already marked the call.
                if analysis.newEnquiry, call.enquiry == 0 { try calls.alert(.newEnquiry, about: call, in: tx.connection) }
            }
            try outbox.record(AuditRecord(org: org, actor: TranscriptService.actor, action: .analysisStored, resource: .call(callID),
                                          outcome: .success, detail: "engine=\(engine.name)"), in: tx.connection)
        }
    }
}

/// A stored recording to transcribe.
struct Transcribe: DurableJob {
    static let kind = "transcript.transcribe"
    let org: String
    let callID: String
    let recording: String
    let channels: UInt32

    /// Releases before typed payloads stored `org\ncall\nrecording\nchannels`.
    static func legacyPayload(_ data: Data) -> Transcribe? {
        guard let parts = legacyFields(data, count: 4), let channels = UInt32(parts[3]) else { return nil }
        return Transcribe(org: parts[0], callID: parts[1], recording: parts[2], channels: channels)
    }
}

/// Runs `transcript.transcribe` jobs; a failure is recorded where `GetTranscript` shows it.
struct TranscribeJobHandler: DurableJobHandler {
    let rules: TranscriptRules
    let media: any RecordingAccess
    let maxAttempts: Int

    func run(_ work: Transcribe, job: Job) async throws -> JobOutcome {
        do {
            try await rules.transcribe(org: work.org, callID: work.callID, recording: work.recording, from: media)
            return .done
        } catch {
            let final = error is PermanentJobFailure || job.attempts + 1 >= maxAttempts
            let reason = final ? "\(error)" : "retrying after: \(error)"
            try? await rules.setState(final ? .failed : .queued, reason: String(reason.prefix(300)), org: work.org, callID: work.callID,
                                      recording: work.recording)
            throw error
        }
    }
}

/// What `transcript.mute` mutes: milliseconds, [start, end).
struct MuteRequest: DurableJob {
    static let kind = "transcript.mute"
    let org: String
    let callID: String
    let ranges: [[UInt64]]
}

/// Runs `transcript.mute` jobs.
struct MuteJobHandler: DurableJobHandler {
    /// With the job queue's backoff (1 s doubling to 10 minutes): about 33 hours.
    static let attempts = 210
    let rules: TranscriptRules
    let media: any RecordingAccess
    let maxAttempts: Int

    func run(_ request: MuteRequest, job: Job) async throws -> JobOutcome {
        guard request.ranges.allSatisfy({ $0.count == 2 }) else { throw PermanentJobFailure("a mute job's ranges are malformed") }
        try await rules.mute(request, from: media, finalAttempt: job.attempts + 1 >= maxAttempts)
        return .done
    }
}

/// A stored transcript to analyse.
struct Analyse: DurableJob {
    static let kind = "transcript.analyse"
    let org: String
    let callID: String

    /// Releases before typed payloads stored `org\ncall`.
    static func legacyPayload(_ data: Data) -> Analyse? {
        legacyFields(data, count: 2).map { Analyse(org: $0[0], callID: $0[1]) }
    }
}

/// Runs `transcript.analyse` jobs.
struct AnalyseJobHandler: DurableJobHandler {
    let rules: TranscriptRules

    func run(_ work: Analyse, job: Job) async throws -> JobOutcome {
        try await rules.analyse(org: work.org, callID: work.callID)
        return .done
    }
}
