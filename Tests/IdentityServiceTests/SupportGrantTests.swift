import CallTraceProto
import CallTraceRPC
import CallTraceStorage
import CallTraceTestSupport
import Foundation
import Testing

@Suite("P8: operators see customer content only under a support grant, and every access is audited")
struct SupportGrantTests {
    typealias Identity = Calltrace_Identity_V1_IdentityService

    @Test("No grant: refused. Active grant: allowed for its permissions only. Revoked or expired: refused again. All audited.")
    func grants() async throws {
        let deployment = try await IdentityDeployment(.inProcess)
        let (org, admin) = try await deployment.organisationWithAdmin()
        var adminCall = Metadata()
        try adminCall.add("authorization", "Bearer \(admin)")
        func operatorAccess(_ permission: Calltrace_Identity_V1_Permission) async -> StatusCode? {
            await code {
                _ = try await deployment.media.unary(Identity.authorizeOperator, .with {
                    $0.operatorName = "alice"
                    $0.orgID = org
                    $0.permission = permission
                })
            }
        }

        #expect(await operatorAccess(.transcriptsRead) == .permissionDenied)

        let grant = try await deployment.gateway.unary(Identity.createSupportGrant, .with {
            $0.orgID = org
            $0.permissions = [.transcriptsRead]
            $0.durationSeconds = 3600
            $0.reason = "ticket SUP-1042"
        }, options: .init(metadata: adminCall))
        let allowed = try await deployment.media.unary(Identity.authorizeOperator, .with {
            $0.operatorName = "alice"
            $0.orgID = org
            $0.permission = .transcriptsRead
        }).principal
        #expect(allowed.operatorName == "alice")
        #expect(allowed.supportGrantID == grant.grantID)
        #expect(allowed.userID.isEmpty)
        #expect(await operatorAccess(.recordingsPlay) == .permissionDenied)  // not in the grant

        _ = try await deployment.gateway.unary(Identity.revokeSupportGrant, .with { $0.orgID = org; $0.grantID = grant.grantID },
                                               options: .init(metadata: adminCall))
        #expect(await operatorAccess(.transcriptsRead) == .permissionDenied)

        _ = try await deployment.gateway.unary(Identity.createSupportGrant, .with {
            $0.orgID = org
            $0.permissions = [.transcriptsRead]
            $0.durationSeconds = 1
            $0.reason = "ticket SUP-1043"
        }, options: .init(metadata: adminCall))
        #expect(await operatorAccess(.transcriptsRead) == .ok)
        deployment.clock.advance(by: .seconds(1))
        #expect(await operatorAccess(.transcriptsRead) == .permissionDenied)

        // Bounds and who may grant.
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.createSupportGrant, .with {
                $0.orgID = org; $0.permissions = [.transcriptsRead]; $0.durationSeconds = 15 * 86_400; $0.reason = "too long"
            }, options: .init(metadata: adminCall))
        } == .invalidArgument)
        let member = try await deployment.invite(.member, in: org, adminToken: admin, email: "member@firm.example")
        var memberCall = Metadata()
        try memberCall.add("authorization", "Bearer \(member)")
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.createSupportGrant, .with {
                $0.orgID = org; $0.permissions = [.transcriptsRead]; $0.durationSeconds = 60; $0.reason = "x"
            }, options: .init(metadata: memberCall))
        } == .permissionDenied)
        // Only services ask; an operator cannot ask for itself.
        #expect(await code {
            _ = try await deployment.operatorClient.unary(Identity.authorizeOperator, .with {
                $0.operatorName = "ops"; $0.orgID = org; $0.permission = .transcriptsRead
            })
        } == .permissionDenied)

        // Every operator authorisation, allowed or denied, waits in the outbox for the org's audit trail.
        let events = try await deployment.database.read { db in
            try db.query("SELECT event FROM audit_outbox WHERE org_id = ? ORDER BY id", org).compactMap { row in
                try row.blob("event").map { try Calltrace_Compliance_V1_AuditEvent(serializedBytes: $0) }
            }
        }
        _ = await deployment.stop()
        let operatorEvents = events.filter { $0.actor == "operator:alice" }
        #expect(operatorEvents.map(\.outcome) == ["denied", "success", "denied", "denied", "success", "denied"])
        #expect(operatorEvents.filter { $0.outcome == "success" }.allSatisfy { $0.resource.hasPrefix("grant:") })
        #expect(events.contains { $0.action == "support_grant.created" })
        #expect(events.contains { $0.action == "support_grant.revoked" })
        #expect(events.filter { $0.action == "support_grant.expired" }.count == 1)
    }
}
