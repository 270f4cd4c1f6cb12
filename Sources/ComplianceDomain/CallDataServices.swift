import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import Foundation

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
    func calls(org: String, callerNumber: String) async throws -> [Calltrace_Transcript_V1_CallerCall]
    /// The number goes on the suppression list; answers the analyses deleted.
    func suppress(org: String, number: String, reason: String) async throws -> Int
}

struct PeerCallData: CallDataServices {
    let media: Calltrace_Media_V1_RecordingServiceClient
    let calls: Calltrace_Transcript_V1_CallServiceClient
    let suppressions: Calltrace_Transcript_V1_SuppressionServiceClient
    let options = CallOptions(timeout: .seconds(30))

    init(media: RPCClient, transcript: RPCClient) {
        self.media = .init(media)
        calls = .init(transcript)
        suppressions = .init(transcript)
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

    func calls(org: String, callerNumber: String) async throws -> [Calltrace_Transcript_V1_CallerCall] {
        try await calls.findCallsByCaller(.with { $0.orgID = org; $0.phoneNumber = callerNumber }, options: options).calls
    }

    func suppress(org: String, number: String, reason: String) async throws -> Int {
        Int(try await suppressions.addSuppression(.with { $0.orgID = org; $0.phoneNumber = number; $0.reason = reason }, options: options)
            .analysesDeleted)
    }
}
