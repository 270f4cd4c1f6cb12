import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import ComplianceDocuments
import Foundation

/// `calltrace.compliance.v1.OffboardingService`.
struct OffboardingHandler: Calltrace_Compliance_V1_OffboardingServiceHandler {
    let rules: OffboardingRules
    let services: any CallDataServices
    let authorizer: any Authorizing
    let policies = Calltrace_Compliance_V1_OffboardingServicePolicies(
        startOffboarding: .gateways | .operators, getOffboarding: .gateways | .operators, confirmOffboarding: .gateways | .operators,
        getSigningKey: .gateways | .operators | .services)

    func startOffboarding(_ request: Calltrace_Compliance_V1_StartOffboardingRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_StartOffboardingResponse {
        _ = try await rules.start(org: request.orgID, by: who.actor)
        let message = try await proto(org: request.orgID)
        return .with { $0.offboarding = message }
    }

    func getOffboarding(_ request: Calltrace_Compliance_V1_GetOffboardingRequest, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_GetOffboardingResponse {
        // Once completed, any operator may fetch the record (counts and digests only) to hand to
        // the firm, whose users can no longer sign in (so org.offboard is checked here: the proto
        // declares `in_handler`).
        try OrganizationID.validate(request.orgID)
        let found = try? await rules.offboarding(org: request.orgID)
        if let found, found.row.completedAt > 0, context.peer.kind == .operator {
            context.annotate(org: request.orgID)
            return .with { $0.offboarding = Self.proto(found) }
        }
        _ = try await context.principal(in: request.orgID, may: .orgOffboard, via: authorizer)
        let message = Self.proto(try await rules.offboarding(org: request.orgID))
        return .with { $0.offboarding = message }
    }

    func confirmOffboarding(_ request: Calltrace_Compliance_V1_ConfirmOffboardingRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_ConfirmOffboardingResponse {
        _ = try await rules.confirm(org: request.orgID, id: request.offboardingID, confirmOrg: request.confirmOrgID, by: who.actor, services: services)
        let message = try await proto(org: request.orgID)
        return .with { $0.offboarding = message }
    }

    func getSigningKey(_ request: Calltrace_Compliance_V1_GetSigningKeyRequest, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_GetSigningKeyResponse {
        .with { $0.publicKey = rules.signer.publicKey.base64EncodedString(); $0.keyID = DeletionCertificate.keyID(rules.signer.publicKey) }
    }

    func proto(org: String) async throws -> Calltrace_Compliance_V1_Offboarding { Self.proto(try await rules.offboarding(org: org)) }

    static func proto(_ found: (row: OffboardingRow, bundle: BundleRow?, job: JobQueue.Status?)) -> Calltrace_Compliance_V1_Offboarding {
        let (row, bundle, job) = found
        return .with {
            $0.offboardingID = row.id; $0.orgID = row.org; $0.exportBundleID = row.exportBundleID; $0.startedBy = row.startedBy
            $0.startedAtUnixMs = row.startedAt; $0.confirmedBy = row.confirmedBy; $0.confirmedAtUnixMs = row.confirmedAt
            $0.completedAtUnixMs = row.completedAt; $0.certificate = row.certificate; $0.lastError = job?.lastError ?? ""
            $0.state = row.completedAt > 0 ? .completed : row.confirmedAt > 0 ? .purging : bundle?.state == .ready ? .awaitingConfirmation : .exporting
        }
    }
}
