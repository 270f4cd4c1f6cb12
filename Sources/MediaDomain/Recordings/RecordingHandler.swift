import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import Foundation

/// `calltrace.media.v1.RecordingService`: who may call each RPC, and the thin step from each
/// request to `RecordingRules`.
struct RecordingHandler: Calltrace_Media_V1_RecordingServiceHandler {
    typealias Permission = Calltrace_Identity_V1_Permission
    let rules: RecordingRules
    let authorizer: any Authorizing
    /// Transcript, which owns calls: it confirms each upload's call and organisation.
    let calls: Calltrace_Transcript_V1_CallServiceClient?
    let policies: Calltrace_Media_V1_RecordingServicePolicies

    /// The telephony gateways (`telephony_gateways`) upload; users (through gateways) and
    /// operators read, play and delete; transcript (to transcribe) and compliance (exports) also
    /// play, as themselves.
    init(rules: RecordingRules, authorizer: any Authorizing, calls: Calltrace_Transcript_V1_CallServiceClient?, telephonyGateways: [String]) {
        self.rules = rules
        self.authorizer = authorizer
        self.calls = calls
        policies = .init(
            uploadRecording: .gateways(named: telephonyGateways), getRecording: .gateways | .operators,
            listRecordings: .gateways | .operators | .service("compliance"),
            playRecording: .gateways | .operators | .service("transcript") | .service("compliance"),
            deleteRecording: .gateways | .operators, redactRecording: .gateways | .operators | .service("transcript"),
            purgeRecordings: .service("compliance"), deleteCallRecordings: .service("compliance"), purgeOrganisation: .service("compliance"),
            exportRecording: .service("compliance"))
    }

    func uploadRecording(_ requests: RequestStream<Calltrace_Media_V1_UploadRecordingRequest>, context: ServerContext) async throws
        -> Calltrace_Media_V1_UploadRecordingResponse {
        var iterator = requests.makeAsyncIterator()
        guard let first = try await iterator.next(), case .header(let header)? = first.part else {
            throw RPCError(.invalidArgument, "an upload starts with its header")
        }
        context.annotate(org: header.orgID)
        try await confirmCall(of: header)
        let row = try await rules.upload(RecordingUpload(header), by: context.peerActor) {
            guard let message = try await iterator.next() else { return nil }
            guard case .chunk(let chunk)? = message.part else { throw RPCError(.invalidArgument, "after the header, an upload sends only chunks") }
            return chunk
        }
        return .with { $0.recording = Self.recording(row) }
    }

    /// The organisation is the call's, as transcript knows it (it came from a tracking number's
    /// assignment): a recording, and keys, only for a call started there that is to be recorded.
    private func confirmCall(of header: Calltrace_Media_V1_RecordingHeader) async throws {
        try OrganizationID.validate(header.orgID)
        try CallID.validate(header.callID)
        guard let calls else { throw RPCError(.unavailable, "media has no transcript peer to confirm the call with; nothing was stored") }
        do {
            _ = try await calls.confirmRecordingCall(.with { $0.orgID = header.orgID; $0.callID = header.callID },
                                                     options: CallOptions(timeout: .seconds(10)))
        } catch let error as RPCError where error.code == .notFound {
            throw RPCError(.notFound, "call \(header.callID) was not started in organisation \(header.orgID) (StartCall comes first); nothing was stored")
        } catch let error as RPCError where error.code == .failedPrecondition {
            throw RPCError(.failedPrecondition, "\(error.message); nothing was stored")
        } catch let error as RPCError {
            throw RPCError(.unavailable, "transcript cannot confirm call \(header.callID) now (\(error.code)); nothing was stored: retry")
        }
    }

    func getRecording(_ request: Calltrace_Media_V1_GetRecordingRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Media_V1_GetRecordingResponse {
        let row = try await rules.recording(request.recordingID, org: request.orgID)
        return .with { $0.recording = Self.recording(row) }
    }

    func listRecordings(_ request: Calltrace_Media_V1_ListRecordingsRequest, actor _: String, context: ServerContext) async throws
        -> Calltrace_Media_V1_ListRecordingsResponse {
        let page = try await rules.list(org: request.orgID, callID: request.callID.isEmpty ? nil : request.callID,
                                        from: request.createdFromUnixMs == 0 ? nil : request.createdFromUnixMs,
                                        before: request.createdBeforeUnixMs == 0 ? nil : request.createdBeforeUnixMs,
                                        pageSize: Int(request.pageSize), pageToken: request.pageToken)
        return .with {
            $0.recordings = page.rows.map(Self.recording)
            $0.nextPageToken = page.next
        }
    }

    func playRecording(_ request: Calltrace_Media_V1_PlayRecordingRequest, actor: String, responses: ResponseWriter<Calltrace_Media_V1_PlayRecordingResponse>,
                       context: ServerContext) async throws {
        // Transcript and compliance play as themselves (the policy admits no other service).
        try await rules.play(request.recordingID, org: request.orgID, offset: request.offset, length: request.length, reason: request.reason,
                             by: actor, send: Self.audio(to: responses) { recording, offset, data in
            .with { if let recording { $0.recording = recording }; $0.offset = offset; $0.data = data }
        })
    }

    func deleteRecording(_ request: Calltrace_Media_V1_DeleteRecordingRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Media_V1_DeleteRecordingResponse {
        try await rules.delete(request.recordingID, org: request.orgID, by: who.actor)
        return .init()
    }

    func redactRecording(_ request: Calltrace_Media_V1_RedactRecordingRequest, actor: String, context: ServerContext) async throws
        -> Calltrace_Media_V1_RedactRecordingResponse {
        // Transcript redacts as itself, when it hears card or bank details.
        let redacted = try await rules.redact(request.recordingID, org: request.orgID, ranges: request.ranges.map { ($0.startMs, $0.endMs) },
                                              reason: request.reason, by: actor)
        return .with {
            $0.recording = Self.recording(redacted.row)
            $0.mutedBytes = redacted.muted
        }
    }

    // MARK: For compliance

    func purgeRecordings(_ request: Calltrace_Media_V1_PurgeRecordingsRequest, context: ServerContext) async throws
        -> Calltrace_Media_V1_PurgeRecordingsResponse {
        context.annotate(org: request.orgID)
        let purged = try await rules.purge(org: request.orgID, createdBefore: request.createdBeforeUnixMs, limit: Int(request.maxCount),
                                           by: context.peerActor)
        return .with {
            $0.purged = UInt32(purged.purged)
            $0.purgedBytes = purged.bytes
            $0.more = purged.more
        }
    }

    func deleteCallRecordings(_ request: Calltrace_Media_V1_DeleteCallRecordingsRequest, context: ServerContext) async throws
        -> Calltrace_Media_V1_DeleteCallRecordingsResponse {
        context.annotate(org: request.orgID)
        let deleted = try await rules.deleteCall(request.callID, org: request.orgID, by: context.peerActor)
        return .with { $0.deleted = UInt32(deleted) }
    }

    func purgeOrganisation(_ request: Calltrace_Media_V1_PurgeOrganisationRequest, context: ServerContext) async throws
        -> Calltrace_Media_V1_PurgeOrganisationResponse {
        context.annotate(org: request.orgID)
        let purged = try await rules.purgeOrganisation(request.orgID, by: context.peerActor)
        return .with {
            $0.recordingsPurged = UInt32(purged.recordings)
            $0.shareLinksPurged = UInt32(purged.shareLinks)
        }
    }

    func exportRecording(_ request: Calltrace_Media_V1_ExportRecordingRequest, responses: ResponseWriter<Calltrace_Media_V1_ExportRecordingResponse>,
                         context: ServerContext) async throws {
        context.annotate(org: request.orgID)
        try await rules.play(request.recordingID, org: request.orgID, offset: 0, length: 0, by: context.peerActor,
                             action: .recordingExported, send: Self.audio(to: responses) { recording, offset, data in
            .with { if let recording { $0.recording = recording }; $0.offset = offset; $0.data = data }
        })
    }

    /// Sends audio as it is read: the recording's metadata with the first piece only.
    static func audio<Response>(to responses: ResponseWriter<Response>,
                                _ make: @escaping @Sendable (Calltrace_Media_V1_Recording?, UInt64, Data) -> Response)
        -> (RecordingRow, UInt64, Data) async throws -> Void {
        var first = true
        return { row, offset, data in
            try await responses.send(make(first ? recording(row) : nil, offset, data))
            first = false
        }
    }

    static func recording(_ row: RecordingRow) -> Calltrace_Media_V1_Recording {
        .with {
            $0.recordingID = row.id
            $0.orgID = row.org
            $0.callID = row.callID
            $0.format = Calltrace_Media_V1_AudioFormat(rawValue: row.format) ?? .unspecified
            $0.sampleRateHz = row.sampleRate
            $0.channels = row.channels
            $0.durationMs = row.durationMs
            $0.sizeBytes = row.sizeBytes
            $0.sha256 = row.sha256
            $0.createdAtUnixMs = row.createdAt
            $0.redactionState = Calltrace_Media_V1_RedactionState(rawValue: row.redactionState) ?? .unspecified
            $0.redactionFailure = row.redactionFailure
        }
    }
}

extension RecordingUpload {
    /// The upload's header as the wire carries it.
    init(_ header: Calltrace_Media_V1_RecordingHeader) {
        self.init(org: header.orgID, callID: header.callID, format: AudioFormat(number: header.format.rawValue), sampleRate: header.sampleRateHz,
                  channels: header.channels,
                  durationMs: header.durationMs, sha256: header.sha256)
    }
}
