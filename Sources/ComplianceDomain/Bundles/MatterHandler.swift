import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import ComplianceDocuments
import Foundation

/// `calltrace.compliance.v1.MatterService`: matters.export (and records.delete to delete after).
/// The matter is recorded on the call in transcript first, then the bundle is queued.
struct MatterHandler: Calltrace_Compliance_V1_MatterServiceHandler {
    let bundles: BundleRules
    let repository: any ComplianceRepository
    let services: any CallDataServices
    let authorizer: any Authorizing
    let policies = Calltrace_Compliance_V1_MatterServicePolicies(exportMatter: .gateways | .operators)

    func exportMatter(_ request: Calltrace_Compliance_V1_ExportMatterRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_ExportMatterResponse {
        // Beyond the declared matters.export: deleting after the export needs records.delete too.
        if request.deleteAfterExport { _ = try await context.principal(in: request.orgID, may: .recordsDelete, via: authorizer) }
        try CallID.validate(request.callID)
        let reference = try DomainText.line(request.matterReference, "matter_reference", max: 64, required: true)
        // The call carries its matter from now on (NOT_FOUND here for a call transcript does not have).
        try await services.recordMatter(org: request.orgID, callID: request.callID, reference: reference)
        let row = try await repository.write { [bundles] tx in
            try bundles.queue(.matter, org: request.orgID, subject: request.callID, by: who.actor, matterReference: reference,
                              deleteAfter: request.deleteAfterExport, in: tx)
        }
        return .with { $0.bundle = BundleHandler.proto(row) }
    }
}
