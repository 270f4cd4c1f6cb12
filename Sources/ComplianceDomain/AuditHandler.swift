import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import Foundation

/// `calltrace.compliance.v1.AuditService`: services append their own events; a firm's admins
/// (audit.read) and operators under a grant read, verify and export their organisation's trail.
struct AuditHandler: Calltrace_Compliance_V1_AuditServiceHandler {
    let trail: AuditTrail
    let authorizer: any Authorizing
    let policies = Calltrace_Compliance_V1_AuditServicePolicies(
        appendAuditEvents: .services, listAuditEvents: .gateways | .operators, verifyAuditChain: .gateways | .operators,
        exportAuditEvents: .gateways | .operators)

    func appendAuditEvents(_ request: Calltrace_Compliance_V1_AppendAuditEventsRequest, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_AppendAuditEventsResponse {
        try await trail.append(request.events, from: context.peer.name)
    }

    func listAuditEvents(_ request: Calltrace_Compliance_V1_ListAuditEventsRequest, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_ListAuditEventsResponse {
        _ = try await context.principal(in: request.orgID, may: .auditRead, via: authorizer)
        let filter = AuditTrail.Filter(actor: request.actor, action: request.action, resource: request.resource, from: request.fromUnixMs,
                                       before: request.beforeUnixMs, operatorsOnly: request.operatorAccessOnly)
        let page = try await trail.list(org: request.orgID, filter: filter, pageSize: Int(request.pageSize), pageToken: request.pageToken)
        return .with { $0.events = page.events; $0.nextPageToken = page.next }
    }

    func verifyAuditChain(_ request: Calltrace_Compliance_V1_VerifyAuditChainRequest, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_VerifyAuditChainResponse {
        _ = try await context.principal(in: request.orgID, may: .auditRead, via: authorizer)
        let verdict = try await trail.verify(org: request.orgID)
        return .with {
            $0.intact = verdict.intact; $0.eventsChecked = UInt64(verdict.checked); $0.firstBrokenIndex = UInt64(verdict.firstBroken)
            $0.reason = verdict.reason; $0.head = verdict.head
        }
    }

    func exportAuditEvents(_ request: Calltrace_Compliance_V1_ExportAuditEventsRequest,
                           responses: ResponseWriter<Calltrace_Compliance_V1_ExportAuditEventsResponse>, context: ServerContext) async throws {
        _ = try await context.principal(in: request.orgID, may: .auditRead, via: authorizer)
        try await trail.export(org: request.orgID, from: request.fromUnixMs, before: request.beforeUnixMs) { lines in
            try await responses.send(.with { $0.lines = lines })
        }
    }
}
