import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import Foundation

/// `calltrace.compliance.v1.RetentionService`: settings.manage.
struct RetentionHandler: Calltrace_Compliance_V1_RetentionServiceHandler {
    let rules: RetentionRules
    let authorizer: any Authorizing
    let policies = Calltrace_Compliance_V1_RetentionServicePolicies(
        getRetentionPolicy: .gateways | .operators, setRetentionPolicy: .gateways | .operators, runRetention: .gateways | .operators,
        listRetentionRuns: .gateways | .operators)

    func getRetentionPolicy(_ request: Calltrace_Compliance_V1_GetRetentionPolicyRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_GetRetentionPolicyResponse {
        let policy = try await rules.policy(org: request.orgID)
        return .with { $0.policy = Self.proto(policy) }
    }

    func setRetentionPolicy(_ request: Calltrace_Compliance_V1_SetRetentionPolicyRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_SetRetentionPolicyResponse {
        let p = request.policy
        let policy = try await rules.setPolicy(RetentionPolicyRow(recordingsMonths: Int(p.recordingsMonths), transcriptsMonths: Int(p.transcriptsMonths),
                                                                  callRecordsMonths: Int(p.callRecordsMonths)),
                                               org: request.orgID, by: who.actor)
        return .with { $0.policy = Self.proto(policy) }
    }

    func runRetention(_ request: Calltrace_Compliance_V1_RunRetentionRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_RunRetentionResponse {
        let run = try await rules.run(org: request.orgID, by: who.actor)
        return .with { $0.run = Self.proto(run, job: nil) }
    }

    func listRetentionRuns(_ request: Calltrace_Compliance_V1_ListRetentionRunsRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_ListRetentionRunsResponse {
        let runs = try await rules.runs(org: request.orgID, limit: Int(request.limit))
        return .with { $0.runs = runs.map { Self.proto($0.run, job: $0.job) } }
    }

    static func proto(_ p: RetentionPolicyRow) -> Calltrace_Compliance_V1_RetentionPolicy {
        .with {
            $0.recordingsMonths = UInt32(p.recordingsMonths); $0.transcriptsMonths = UInt32(p.transcriptsMonths)
            $0.callRecordsMonths = UInt32(p.callRecordsMonths); $0.updatedAtUnixMs = p.updatedAt; $0.updatedBy = p.updatedBy
        }
    }

    static func proto(_ run: RetentionRunRow, job: JobQueue.Status?) -> Calltrace_Compliance_V1_RetentionRun {
        .with {
            $0.runID = run.id; $0.orgID = run.org; $0.state = run.finishedAt == 0 ? .running : .finished; $0.requestedBy = run.requestedBy
            $0.startedAtUnixMs = run.startedAt; $0.finishedAtUnixMs = run.finishedAt
            $0.recordingsBeforeUnixMs = run.recordingsBefore; $0.transcriptsBeforeUnixMs = run.transcriptsBefore
            $0.callRecordsBeforeUnixMs = run.callRecordsBefore
            $0.recordingsPurged = UInt32(run.recordingsPurged); $0.recordingBytesPurged = run.recordingBytesPurged
            $0.transcriptsPurged = UInt32(run.transcriptsPurged); $0.callRecordsPurged = UInt32(run.callRecordsPurged)
            $0.lastError = job?.lastError ?? ""
        }
    }
}
