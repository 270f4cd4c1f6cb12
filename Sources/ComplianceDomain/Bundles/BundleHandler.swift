import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import Foundation
import SwiftProtobuf

/// `calltrace.compliance.v1.BundleService`: the permission of the bundle's kind.
struct BundleHandler: Calltrace_Compliance_V1_BundleServiceHandler {
    let rules: BundleRules
    let authorizer: any Authorizing
    let policies = Calltrace_Compliance_V1_BundleServicePolicies(getBundle: .gateways | .operators, downloadBundle: .gateways | .operators)

    /// Org checked and annotated first, so a foreign org's bundle id says nothing.
    private func readable(_ id: String, org: String, context: ServerContext) async throws -> (BundleRow, String) {
        try OrganizationID.validate(org)
        context.annotate(org: org)
        // The route check comes before the bundle is looked up, with the strictest permission
        // when the id is unknown, so nobody learns which ids exist (here, not in the registration:
        // the proto declares `in_handler`).
        let notFound = DomainError.notFound("bundle \(id.prefix(64)) not found in organisation \(org)")
        let found = try? await rules.bundle(id, org: org)
        let who: Principal
        do {
            who = try await context.principal(in: org, may: found.map { BundleRules.permission(of: $0.kind) } ?? .orgOffboard, via: authorizer)
        } catch let refusal as RPCError where refusal.code == .permissionDenied && found != nil {
            // Refused the kind's permission (the refusal names it): answered as an unknown id is,
            // the strictest permission's refusal or not found, so it says neither that the id
            // exists nor of which kind (the cross-tenant matrix's cell: an operator without a grant).
            _ = try await context.principal(in: org, may: .orgOffboard, via: authorizer)
            throw notFound
        }
        guard let found else { throw notFound }
        return (found, who.actor)
    }

    func getBundle(_ request: Calltrace_Compliance_V1_GetBundleRequest, context: ServerContext) async throws -> Calltrace_Compliance_V1_GetBundleResponse {
        let (row, _) = try await readable(request.bundleID, org: request.orgID, context: context)
        return .with { $0.bundle = Self.proto(row) }
    }

    func downloadBundle(_ request: Calltrace_Compliance_V1_DownloadBundleRequest, responses: ResponseWriter<Calltrace_Compliance_V1_DownloadBundleResponse>,
                        context: ServerContext) async throws {
        let (_, actor) = try await readable(request.bundleID, org: request.orgID, context: context)
        try await rules.download(request.bundleID, org: request.orgID, by: actor) { row, offset, data in
            try await responses.send(.with {
                if offset == 0 { $0.bundle = Self.proto(row) }
                $0.offset = offset
                $0.data = data
            })
        }
    }

    static func proto(_ row: BundleRow) -> Calltrace_Compliance_V1_Bundle {
        .with {
            $0.bundleID = row.id; $0.orgID = row.org; $0.kind = .init(rawValue: row.kind.rawValue) ?? .unspecified
            $0.state = .init(rawValue: row.state.rawValue) ?? .unspecified; $0.subject = row.subject; $0.createdAtUnixMs = row.createdAt
            $0.readyAtUnixMs = row.readyAt; $0.expiresAtUnixMs = row.expiresAt; $0.sizeBytes = row.sizeBytes; $0.sha256 = row.sha256
            $0.entries = UInt32(row.entries); $0.failureReason = row.failure; $0.downloads = UInt32(row.downloads)
        }
    }
}
