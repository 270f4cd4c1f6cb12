import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import ComplianceDocuments
import Foundation

/// `calltrace.compliance.v1.AuditService`: services (and the telephony gateway, which changes a
/// firm's numbers at Twilio) append their own events; a firm's admins
/// (audit.read) and operators under a grant read, verify and export their organisation's trail,
/// and fetch its signed checkpoints.
struct AuditHandler: Calltrace_Compliance_V1_AuditServiceHandler {
    let trail: AuditTrail
    let checkpoints: AuditCheckpoints
    let authorizer: any Authorizing
    let policies = Calltrace_Compliance_V1_AuditServicePolicies(
        appendAuditEvents: .services | .gateway("telephony"), listAuditEvents: .gateways | .operators, verifyAuditChain: .gateways | .operators,
        exportAuditEvents: .gateways | .operators, getAuditCheckpoint: .gateways | .operators, listAuditCheckpoints: .gateways | .operators)

    func appendAuditEvents(_ request: Calltrace_Compliance_V1_AppendAuditEventsRequest, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_AppendAuditEventsResponse {
        // The telephony gateway records only what it changes: a firm's numbers at Twilio.
        if context.peer.kind == .gateway, let other = request.events.first(where: { !$0.action.hasPrefix("number.") }) {
            throw RPCError(.permissionDenied, "\(context.peer) records number.* events only, not \(other.action.prefix(64))")
        }
        return try await trail.append(request.events, from: context.peer.name)
    }

    func listAuditEvents(_ request: Calltrace_Compliance_V1_ListAuditEventsRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_ListAuditEventsResponse {
        let filter = AuditTrail.Filter(actor: request.actor, action: request.action, resource: request.resource, from: request.fromUnixMs,
                                       before: request.beforeUnixMs, operatorsOnly: request.operatorAccessOnly)
        let page = try await trail.list(org: request.orgID, filter: filter, pageSize: Int(request.pageSize), pageToken: request.pageToken)
        return .with { $0.events = page.events.map(\.proto); $0.nextPageToken = page.next }
    }

    func verifyAuditChain(_ request: Calltrace_Compliance_V1_VerifyAuditChainRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_VerifyAuditChainResponse {
        let given = request.checkpointDocument.isEmpty ? nil : try checkpoints.given(request.checkpointDocument, org: request.orgID)
        let walk = try await trail.verify(org: request.orgID)
        let checks = try await checkpoints.check(org: request.orgID, given: given)
        let verdict = AuditCheckpoints.combine(walk, checks)
        return .with {
            $0.intact = verdict.intact; $0.eventsChecked = UInt64(verdict.checked); $0.firstBrokenIndex = UInt64(verdict.firstBroken)
            $0.reason = verdict.reason; $0.head = verdict.head; $0.checkpointChecks = checks.map(Self.proto)
        }
    }

    func exportAuditEvents(_ request: Calltrace_Compliance_V1_ExportAuditEventsRequest, principal _: Principal,
                           responses: ResponseWriter<Calltrace_Compliance_V1_ExportAuditEventsResponse>, context: ServerContext) async throws {
        // Through the head as it stands now, which the first message's checkpoint names.
        let current = try await checkpoints.current(org: request.orgID, reason: .export)
        var checkpoint = current.checkpoint.map(Self.proto)
        try await trail.export(org: request.orgID, from: request.fromUnixMs, before: request.beforeUnixMs, through: current.headIndex) { lines in
            let first = checkpoint
            checkpoint = nil
            try await responses.send(.with { $0.lines = lines; if let first { $0.checkpoint = first } })
        }
        if let checkpoint { try await responses.send(.with { $0.checkpoint = checkpoint }) }
    }

    func getAuditCheckpoint(_ request: Calltrace_Compliance_V1_GetAuditCheckpointRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_GetAuditCheckpointResponse {
        let current = try await checkpoints.current(org: request.orgID, reason: .requested)
        guard let checkpoint = current.checkpoint else {
            throw DomainError.notFound("organisation \(request.orgID) has no audit events yet: there is nothing to checkpoint")
        }
        // A firm saving a checkpoint each day must hear that its trail was cut, not get yesterday's.
        guard !current.withheld else {
            throw DomainError.wrongState("the audit chain of organisation \(request.orgID) no longer matches its latest checkpoint (event \(checkpoint.index)): "
                                         + "no checkpoint is signed over it; VerifyAuditChain names the missing or altered events")
        }
        return .with { $0.checkpoint = Self.proto(checkpoint) }
    }

    func listAuditCheckpoints(_ request: Calltrace_Compliance_V1_ListAuditCheckpointsRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_ListAuditCheckpointsResponse {
        let page = try await checkpoints.list(org: request.orgID, pageSize: Int(request.pageSize), pageToken: request.pageToken)
        return .with { $0.checkpoints = page.checkpoints.map(Self.proto); $0.nextPageToken = page.next }
    }

    static func proto(_ row: CheckpointRow) -> Calltrace_Compliance_V1_AuditCheckpoint {
        .with {
            $0.checkpointID = row.id; $0.orgID = row.org; $0.chainIndex = UInt64(row.index); $0.head = row.head.hexString
            $0.signedAtUnixMs = row.signedAt; $0.keyID = row.keyID; $0.document = row.document
            $0.reason = switch row.reason {
            case .daily: .daily
            case .export: .export
            case .requested: .requested
            }
        }
    }

    static func proto(_ check: AuditCheckpoints.Check) -> Calltrace_Compliance_V1_AuditCheckpointCheck {
        .with {
            $0.source = switch check.source {
            case .given: .given
            case .compliance: .compliance
            }
            $0.checkpoint = proto(check.checkpoint)
            $0.finding = switch check.finding {
            case .holds: .holds
            case .eventsMissing: .eventsMissing
            case .eventsAltered: .eventsAltered
            case .checkpointForged: .checkpointForged
            }
            $0.fromIndex = UInt64(check.from); $0.throughIndex = UInt64(check.through); $0.reason = check.reason
        }
    }
}

extension AuditTrail {
    /// `AppendAuditEvents` at the edge: the services' outboxes speak the RPC's shape (`AuditOutbox.Append`),
    /// and compliance's own outbox appends to its trail through it directly.
    func append(_ events: [Calltrace_Compliance_V1_AuditEvent], from service: String) async throws
        -> Calltrace_Compliance_V1_AppendAuditEventsResponse {
        let appended = try await append(events.map { AuditEvent($0) }, from: service)
        return .with {
            $0.acknowledgedKeys = appended.acknowledgedKeys
            $0.rejected = appended.rejected.map { refused in .with { $0.idempotencyKey = refused.key; $0.reason = refused.reason } }
        }
    }
}
