import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import Foundation

/// `calltrace.media.v1.ShareLinkService`: the thin step from each request to `ShareLinkRules`.
struct ShareLinkHandler: Calltrace_Media_V1_ShareLinkServiceHandler {
    let rules: ShareLinkRules
    let authorizer: any Authorizing
    /// Users (through gateways) and operators manage links; gateways open them.
    let policies = Calltrace_Media_V1_ShareLinkServicePolicies(
        createShareLink: .gateways | .operators, openShareLink: .gateways, revokeShareLink: .gateways | .operators,
        listShareLinks: .gateways | .operators, getShareLinkPolicy: .gateways | .operators, setShareLinkPolicy: .gateways | .operators)

    func createShareLink(_ request: Calltrace_Media_V1_CreateShareLinkRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Media_V1_CreateShareLinkResponse {
        let created = try await rules.create(recording: request.recordingID, org: request.orgID, ttlSeconds: request.ttlSeconds,
                                             note: request.note, by: who.actor)
        return .with {
            $0.link = Self.link(created.link, note: request.note)
            $0.token = created.token
        }
    }

    func openShareLink(_ request: Calltrace_Media_V1_OpenShareLinkRequest, responses: ResponseWriter<Calltrace_Media_V1_OpenShareLinkResponse>,
                       context: ServerContext) async throws {
        let actor = context.peerActor
        let opened = try await rules.open(token: request.token, clientAddress: context.clientAddress, by: actor, counting: !request.describeOnly)
        context.annotate(org: opened.link.org)
        if request.describeOnly {
            try await responses.send(.with { $0.recording = RecordingHandler.recording(opened.recording) })
            return
        }
        try await rules.recordings.play(opened.recording.id, org: opened.link.org, offset: request.offset, length: request.length,
                                        reason: "share link \(opened.link.id)", by: actor,
                                        send: RecordingHandler.audio(to: responses) { recording, offset, data in
            .with { if let recording { $0.recording = recording }; $0.offset = offset; $0.data = data }
        })
    }

    func revokeShareLink(_ request: Calltrace_Media_V1_RevokeShareLinkRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Media_V1_RevokeShareLinkResponse {
        try await rules.revoke(request.linkID, org: request.orgID, by: who.actor)
        return .init()
    }

    func listShareLinks(_ request: Calltrace_Media_V1_ListShareLinksRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Media_V1_ListShareLinksResponse {
        let links = try await rules.list(org: request.orgID, recording: request.recordingID.isEmpty ? nil : request.recordingID)
        return .with { $0.links = links.map { Self.link($0.link, note: $0.note) } }
    }

    func getShareLinkPolicy(_ request: Calltrace_Media_V1_GetShareLinkPolicyRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Media_V1_GetShareLinkPolicyResponse {
        let policy = try await rules.policy(org: request.orgID)
        return .with { $0.policy = .with { $0.maxTtlSeconds = policy.maxTTLSeconds; $0.updatedAtUnixMs = policy.updatedAt; $0.updatedBy = policy.updatedBy } }
    }

    func setShareLinkPolicy(_ request: Calltrace_Media_V1_SetShareLinkPolicyRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Media_V1_SetShareLinkPolicyResponse {
        let policy = try await rules.setPolicy(org: request.orgID, maxTTLSeconds: request.maxTtlSeconds, by: who.actor)
        return .with { $0.policy = .with { $0.maxTtlSeconds = policy.maxTTLSeconds; $0.updatedAtUnixMs = policy.updatedAt; $0.updatedBy = policy.updatedBy } }
    }

    static func link(_ row: ShareLinkRow, note: String) -> Calltrace_Media_V1_ShareLink {
        .with {
            $0.linkID = row.id
            $0.orgID = row.org
            $0.recordingID = row.recording
            $0.expiresAtUnixMs = row.expiresAt
            $0.note = note
            $0.createdBy = row.createdBy
            $0.createdAtUnixMs = row.createdAt
            $0.revokedAtUnixMs = row.revokedAt ?? 0
            $0.opens = UInt32(clamping: row.opens)
        }
    }
}
