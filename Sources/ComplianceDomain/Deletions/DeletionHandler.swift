import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import Foundation

/// `calltrace.compliance.v1.DeletionService`: records.delete.
struct DeletionHandler: Calltrace_Compliance_V1_DeletionServiceHandler {
    let rules: DeletionRules
    let services: any CallDataServices
    let authorizer: any Authorizing
    let policies = Calltrace_Compliance_V1_DeletionServicePolicies(
        deleteCall: .gateways | .operators, getDeletion: .gateways | .operators, listDeletions: .gateways | .operators)

    func deleteCall(_ request: Calltrace_Compliance_V1_DeleteCallRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_DeleteCallResponse {
        let row = try await rules.delete(request.callID, org: request.orgID, reason: request.reason, by: who.actor, services: services)
        return .with { $0.deletion = Self.proto(row, job: nil) }
    }

    func getDeletion(_ request: Calltrace_Compliance_V1_GetDeletionRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_GetDeletionResponse {
        let found = try await rules.deletion(request.deletionID, org: request.orgID)
        return .with { $0.deletion = Self.proto(found.row, job: found.job) }
    }

    func listDeletions(_ request: Calltrace_Compliance_V1_ListDeletionsRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_ListDeletionsResponse {
        let rows = try await rules.deletions(org: request.orgID, limit: Int(request.limit))
        return .with { $0.deletions = rows.map { Self.proto($0.row, job: $0.job) } }
    }

    static func proto(_ row: DeletionRow, job: JobQueue.Status?) -> Calltrace_Compliance_V1_Deletion {
        .with {
            $0.deletionID = row.id; $0.orgID = row.org; $0.callID = row.callID; $0.state = row.finishedAt == 0 ? .pending : .done
            $0.reason = row.reason; $0.requestedBy = row.requestedBy; $0.requestedAtUnixMs = row.requestedAt
            $0.transcriptConfirmedAtUnixMs = row.transcriptConfirmedAt; $0.mediaConfirmedAtUnixMs = row.mediaConfirmedAt
            $0.recordingsDeleted = UInt32(row.recordingsDeleted); $0.finishedAtUnixMs = row.finishedAt; $0.requestID = row.requestID
            $0.attempts = UInt32(job?.attempts ?? 0); $0.lastError = job?.lastError ?? ""
        }
    }
}
