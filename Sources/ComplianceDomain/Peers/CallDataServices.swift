import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import Foundation

/// A call as transcript finds it by its caller's number (a data subject's, P13).
struct FoundCall: Sendable, Equatable {
    let callID: String
    /// Empty when the call has none.
    let recordingID: String
    let startedAt: Int64
    let transcribed: Bool
}

/// A recording as media lists it, for a bundle: its id, the extension of its format, its size.
struct StoredRecording: Sendable, Equatable {
    let id: String
    /// `wav`, `mp3`, `opus` or `flac`.
    let fileExtension: String
    let sizeBytes: UInt64
}

/// What compliance asks of the services that own call data (media: recordings; transcript: call
/// records, transcripts, analyses, suppressions), through their typed clients as the compliance
/// service. Every call here is idempotent, so a retried job asks again safely.
protocol CallDataServices: Sendable {
    /// One batch of recordings created before `cutoff`; `more` says whether to ask again.
    func purgeRecordings(org: String, before cutoff: Int64) async throws -> (purged: Int, bytes: UInt64, more: Bool)
    func purgeTranscripts(org: String, before cutoff: Int64) async throws -> (purged: Int, more: Bool)
    func purgeCalls(org: String, before cutoff: Int64) async throws -> (purged: Int, more: Bool)
    /// The call record with its transcript and analysis; false when transcript has no such call (any more).
    func deleteCallRecord(org: String, callID: String) async throws -> Bool
    /// Every recording of the call; how many there were.
    func deleteRecordings(org: String, callID: String) async throws -> Int
    /// Whether the organisation has the call: transcript knows it, or media holds a recording of it.
    func hasCall(org: String, callID: String) async throws -> Bool
    func calls(org: String, callerNumber: String) async throws -> [FoundCall]
    /// The number goes on the suppression list; answers the analyses deleted.
    func suppress(org: String, number: String, reason: String) async throws -> Int

    // Exports (bundles)
    /// A page of the organisation's call ids (newest first) and the next page's token ("" at the end).
    func callPage(org: String, pageToken: String) async throws -> (ids: [String], next: String)
    /// A call's record, transcript and analysis as JSON and as text; nil when there is no such call.
    func exportCall(org: String, callID: String) async throws -> (json: String, text: String)?
    /// A page of the organisation's recordings (of one call when `callID` is given).
    func recordingPage(org: String, callID: String?, pageToken: String) async throws -> (recordings: [StoredRecording], next: String)
    /// A recording's bytes in order, as media streams them.
    func exportRecording(org: String, recordingID: String, _ each: (Data) async throws -> Void) async throws

    /// Transcript records the call's matter as opened, with its reference (matter export).
    func recordMatter(org: String, callID: String, reference: String) async throws

    /// Whether the organisation's calls are transcribed (notices and documents say so only then).
    func transcriptionEnabled(org: String) async throws -> Bool

    // Offboarding
    func purgeMedia(org: String) async throws -> (recordings: Int, shareLinks: Int)
    func purgeTranscript(org: String) async throws -> (calls: Int, trackingNumbers: Int, suppressions: Int)
    /// Identity marks the organisation offboarded and deletes its people (users, invitations,
    /// sessions, support grants) and its key; the counts deleted.
    func markOffboarded(org: String) async throws -> (users: Int, invitations: Int, sessions: Int, supportGrants: Int)
}

struct PeerCallData: CallDataServices {
    let media: Calltrace_Media_V1_RecordingServiceClient
    let calls: Calltrace_Transcript_V1_CallServiceClient
    let suppressions: Calltrace_Transcript_V1_SuppressionServiceClient
    let transcripts: Calltrace_Transcript_V1_TranscriptServiceClient
    /// Jobs make these calls and retry on their own schedule: a peer that is down fails the attempt at once.
    let options = CallOptions(timeout: .seconds(30), failFast: true)

    let identity: Calltrace_Identity_V1_IdentityServiceClient

    init(media: any RPCChannel, transcript: any RPCChannel, identity: any RPCChannel) {
        self.media = .init(media)
        calls = .init(transcript)
        suppressions = .init(transcript)
        transcripts = .init(transcript)
        self.identity = .init(identity)
    }

    func transcriptionEnabled(org: String) async throws -> Bool {
        try await transcripts.getTranscriptionSettings(.with { $0.orgID = org }, options: CallOptions(timeout: .seconds(10))).settings.enabled
    }

    func purgeRecordings(org: String, before cutoff: Int64) async throws -> (purged: Int, bytes: UInt64, more: Bool) {
        let answer = try await media.purgeRecordings(.with { $0.orgID = org; $0.createdBeforeUnixMs = cutoff }, options: options)
        return (Int(answer.purged), answer.purgedBytes, answer.more)
    }

    func purgeTranscripts(org: String, before cutoff: Int64) async throws -> (purged: Int, more: Bool) {
        let answer = try await calls.purgeTranscripts(.with { $0.orgID = org; $0.startedBeforeUnixMs = cutoff }, options: options)
        return (Int(answer.purged), answer.more)
    }

    func purgeCalls(org: String, before cutoff: Int64) async throws -> (purged: Int, more: Bool) {
        let answer = try await calls.purgeCalls(.with { $0.orgID = org; $0.startedBeforeUnixMs = cutoff }, options: options)
        return (Int(answer.purged), answer.more)
    }

    func deleteCallRecord(org: String, callID: String) async throws -> Bool {
        do {
            _ = try await calls.deleteCall(.with { $0.orgID = org; $0.callID = callID }, options: options)
            return true
        } catch let error as RPCError where error.code == .notFound {
            return false
        }
    }

    func deleteRecordings(org: String, callID: String) async throws -> Int {
        Int(try await media.deleteCallRecordings(.with { $0.orgID = org; $0.callID = callID }, options: options).deleted)
    }

    func hasCall(org: String, callID: String) async throws -> Bool {
        do {
            _ = try await calls.getCall(.with { $0.orgID = org; $0.callID = callID }, options: options)
            return true
        } catch let error as RPCError where error.code == .notFound {}
        return try await !recordingPage(org: org, callID: callID, pageToken: "").recordings.isEmpty
    }

    func calls(org: String, callerNumber: String) async throws -> [FoundCall] {
        try await calls.findCallsByCaller(.with { $0.orgID = org; $0.phoneNumber = callerNumber }, options: options).calls.map {
            FoundCall(callID: $0.callID, recordingID: $0.recordingID, startedAt: $0.startedAtUnixMs, transcribed: $0.transcribed)
        }
    }

    func suppress(org: String, number: String, reason: String) async throws -> Int {
        Int(try await suppressions.addSuppression(.with { $0.orgID = org; $0.phoneNumber = number; $0.reason = reason }, options: options)
            .analysesDeleted)
    }

    func callPage(org: String, pageToken: String) async throws -> (ids: [String], next: String) {
        let page = try await calls.listCalls(.with { $0.orgID = org; $0.pageSize = 500; $0.pageToken = pageToken }, options: options)
        return (page.calls.map(\.callID), page.nextPageToken)
    }

    func exportCall(org: String, callID: String) async throws -> (json: String, text: String)? {
        do {
            let export = try await calls.exportCall(.with { $0.orgID = org; $0.callID = callID }, options: options)
            return (export.json, export.text)
        } catch let error as RPCError where error.code == .notFound {
            return nil
        }
    }

    func recordingPage(org: String, callID: String?, pageToken: String) async throws -> (recordings: [StoredRecording], next: String) {
        let page = try await media.listRecordings(.with { $0.orgID = org; $0.callID = callID ?? ""; $0.pageSize = 500; $0.pageToken = pageToken },
                                                  options: options)
        return (page.recordings.map { recording in
            let ext = switch recording.format {
            case .mp3: "mp3"
            case .opus: "opus"
            case .flac: "flac"
            default: "wav"
            }
            return StoredRecording(id: recording.recordingID, fileExtension: ext, sizeBytes: recording.sizeBytes)
        }, page.nextPageToken)
    }

    func exportRecording(org: String, recordingID: String, _ each: (Data) async throws -> Void) async throws {
        try await media.exportRecording(.with { $0.orgID = org; $0.recordingID = recordingID }, options: CallOptions(timeout: .seconds(3600), failFast: true)) { stream in
            for try await piece in stream { try await each(piece.data) }
        }
    }

    func recordMatter(org: String, callID: String, reference: String) async throws {
        _ = try await calls.recordMatter(.with { $0.orgID = org; $0.callID = callID; $0.matterReference = reference }, options: options)
    }

    func purgeMedia(org: String) async throws -> (recordings: Int, shareLinks: Int) {
        let purged = try await media.purgeOrganisation(.with { $0.orgID = org }, options: options)
        return (Int(purged.recordingsPurged), Int(purged.shareLinksPurged))
    }

    func purgeTranscript(org: String) async throws -> (calls: Int, trackingNumbers: Int, suppressions: Int) {
        let purged = try await calls.purgeOrganisation(.with { $0.orgID = org }, options: options)
        return (Int(purged.callsPurged), Int(purged.trackingNumbersPurged), Int(purged.suppressionsPurged))
    }

    func markOffboarded(org: String) async throws -> (users: Int, invitations: Int, sessions: Int, supportGrants: Int) {
        let deleted = try await identity.markOrganizationOffboarded(.with { $0.orgID = org }, options: options)
        return (Int(deleted.usersDeleted), Int(deleted.invitationsDeleted), Int(deleted.sessionsDeleted), Int(deleted.supportGrantsDeleted))
    }
}
