import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import CallTraceTestSupport
import ComplianceDomain
import Foundation
import IdentityDomain
import Testing

typealias Audit = Calltrace_Compliance_V1_AuditServiceClient

/// Identity and compliance in this test process over real mutual TLS; services append events
/// as themselves, a firm's admin reads its trail through the web gateway.
final class ComplianceDeployment: @unchecked Sendable {
    let pki = try! TemporaryPKI()
    let identity: InProcessService
    let compliance: InProcessService

    init() async throws {
        identity = try await InProcessService.start(IdentityService.self, pki: pki)
        compliance = try await InProcessService.start(ComplianceService.self, peers: ["identity": identity.instance.port], pki: pki)
    }

    func audit(as who: String = TemporaryPKI.identity("gateway", "web")) throws -> Audit { Audit(try compliance.client(identity: who)) }

    func stop() async {
        await compliance.stop()
        await identity.stop()
    }

    /// `count` events from `service` for `org`, keys `<service>:<prefix>-<n>`.
    func append(_ count: Int, org: String, from service: String = "media", prefix: String = "e", actor: String = "user:usr_1",
                action: String = "recording.played") async throws -> Calltrace_Compliance_V1_AppendAuditEventsResponse {
        let base = compliance.clock.nowUnixMs
        return try await audit(as: TemporaryPKI.identity("service", service)).appendAuditEvents(.with {
            $0.events = (1...count).map { n in
                .with {
                    $0.idempotencyKey = "\(service):\(prefix)-\(n)"; $0.orgID = org; $0.actor = actor; $0.action = action
                    $0.resource = "recording:rec_\(n)"; $0.outcome = "success"; $0.occurredAtUnixMs = base + Int64(n); $0.sourceService = service
                }
            }
        })
    }
}

@Suite("Compliance: the audit trail as a per-organisation chain", .serialized)
struct AuditChainTests {
    @Test("Events are chained per organisation, sealed, listed newest first with filters and operator accesses flagged; duplicates are stored once")
    func chainAndList() async throws {
        let deployment = try await ComplianceDeployment()
        defer { Task { await deployment.stop() } }
        let made = try await deployment.identity.newOrganisation()
        let org = made.org, admin = made.admin
        let other = try await deployment.identity.newOrganisation("Jones LLP")
        let first = try await deployment.append(5, org: org)
        #expect(first.acknowledgedKeys.count == 5 && first.rejected.isEmpty)
        #expect(try await deployment.append(5, org: org).acknowledgedKeys.count == 5, "appending again acknowledges")
        _ = try await deployment.append(2, org: org, from: "transcript", prefix: "op", actor: "operator:ops", action: "call.viewed")
        _ = try await deployment.append(3, org: other.org)

        let audit = try deployment.audit()
        let all = try await audit.listAuditEvents(.with { $0.orgID = org }, options: try bearer(admin)).events
        // Identity's own events about this org (its creation, the admin's login…) arrive too, in time; count ours.
        let ours = all.filter { ["media", "transcript"].contains($0.event.sourceService) }
        #expect(ours.count == 7, "each key stored once")
        #expect(ours.map(\.chainIndex) == ours.map(\.chainIndex).sorted(by: >), "newest first")
        #expect(ours.filter(\.operatorAccess).count == 2)
        let played = try await audit.listAuditEvents(.with { $0.orgID = org; $0.action = "recording.played"; $0.pageSize = 2 }, options: try bearer(admin))
        #expect(played.events.count == 2 && !played.nextPageToken.isEmpty)
        let rest = try await audit.listAuditEvents(.with { $0.orgID = org; $0.action = "recording.played"; $0.pageToken = played.nextPageToken },
                                                   options: try bearer(admin))
        #expect(rest.events.count == 3 && rest.nextPageToken.isEmpty)
        let operators = try await audit.listAuditEvents(.with { $0.orgID = org; $0.operatorAccessOnly = true }, options: try bearer(admin)).events
        #expect(operators.count == 2 && operators.allSatisfy { $0.event.actor == "operator:ops" })
        // Another organisation's admin sees none of it.
        #expect(await code { _ = try await audit.listAuditEvents(.with { $0.orgID = org }, options: try bearer(other.admin)) } == .permissionDenied)

        let verdict = try await audit.verifyAuditChain(.with { $0.orgID = org }, options: try bearer(admin))
        #expect(verdict.intact && verdict.eventsChecked == UInt64(all.count) && verdict.head.count == 64)
        // Sealed at rest: no actor or resource in the database in clear.
        let file = try deployment.compliance.storedBytes()
        #expect(!String(decoding: file, as: UTF8.self).contains("recording:rec_1"))

        var lines = ""
        try await audit.exportAuditEvents(.with { $0.orgID = org }, options: try bearer(admin)) { stream in
            for try await piece in stream { lines += String(decoding: piece.lines, as: UTF8.self) }
        }
        let exported = lines.split(separator: "\n")
        #expect(exported.count == all.count && exported.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil })
    }

    @Test("Events chained under either spelling of organisation — as media and identity wrote them before the vocabulary was typed, and as every service writes them now — are all found by a filter written either way; an id is never respelt")
    func bothSpellings() async throws {
        let deployment = try await ComplianceDeployment()
        defer { Task { await deployment.stop() } }
        let (org, _, admin) = try await deployment.identity.newOrganisation()
        // Appended raw, as each service's outbox forwarded them: they are chained as written.
        let base = deployment.compliance.clock.nowUnixMs
        let events: [(service: String, key: String, action: String, resource: String)] = [
            ("media", "old-purge", "organization.purged", "organization:\(org)"),
            ("transcript", "new-purge", "organisation.purged", "organisation:\(org)"),
            ("identity", "old-suspend", "organization.suspended", "organization:\(org)"),
            ("media", "new-purge-2", "organisation.purged", "organisation:\(org)"),
            ("transcript", "odd-call", "call.deleted", "call:organization-7"),
        ]
        for (n, event) in events.enumerated() {
            let answer = try await deployment.audit(as: TemporaryPKI.identity("service", event.service)).appendAuditEvents(.with {
                $0.events = [.with {
                    $0.idempotencyKey = "\(event.service):spelling-\(event.key)"; $0.orgID = org; $0.actor = "service:compliance"
                    $0.action = event.action; $0.resource = event.resource; $0.outcome = "success"; $0.occurredAtUnixMs = base + Int64(n)
                    $0.sourceService = event.service
                }]
            })
            #expect(answer.acknowledgedKeys.count == 1, "\(answer.rejected)")
        }
        let audit = try deployment.audit()
        /// The keys of this test's events the filter finds, newest first (identity's own events
        /// about the organisation arrive beside them, in the new spelling).
        func found(action: String = "", resource: String = "") async throws -> [String] {
            try await audit.listAuditEvents(.with { $0.orgID = org; $0.action = action; $0.resource = resource }, options: try bearer(admin)).events
                .map(\.event.idempotencyKey).filter { $0.contains(":spelling-") }
        }
        let purges = ["media:spelling-new-purge-2", "transcript:spelling-new-purge", "media:spelling-old-purge"]
        #expect(try await found(action: "organisation.purged") == purges, "the new spelling finds the old events")
        #expect(try await found(action: "organization.purged") == purges, "the old spelling finds the new events")
        let onOrganisation = ["media:spelling-new-purge-2", "identity:spelling-old-suspend", "transcript:spelling-new-purge", "media:spelling-old-purge"]
        #expect(try await found(resource: "organisation:\(org)") == onOrganisation)
        #expect(try await found(resource: "organization:\(org)") == onOrganisation)
        #expect(try await found(action: "organisation.suspended", resource: "organisation:\(org)") == ["identity:spelling-old-suspend"])
        #expect(try await found(resource: "call:organization-7") == ["transcript:spelling-odd-call"])
        #expect(try await found(resource: "call:organisation-7").isEmpty, "a call id is the gateway's, not a word of the trail")
        // Found, not rewritten: the chain still holds each event as it was recorded.
        let listed = try await audit.listAuditEvents(.with { $0.orgID = org; $0.action = "organisation.purged" }, options: try bearer(admin)).events
        #expect(listed.first { $0.event.idempotencyKey == "media:spelling-old-purge" }?.event.action == "organization.purged")
        #expect(try await audit.verifyAuditChain(.with { $0.orgID = org }, options: try bearer(admin)).intact)
    }

    @Test("A changed, removed or reordered event is caught at the right link", arguments: ["changed", "removed", "reordered"])
    func tampering(kind: String) async throws {
        let deployment = try await ComplianceDeployment()
        defer { Task { await deployment.stop() } }
        let (org, _, admin) = try await deployment.identity.newOrganisation()
        _ = try await deployment.append(6, org: org)
        let database = deployment.compliance.instance.database
        // An attacker with the database file, but not the keys: a row edited, deleted, or two swapped.
        try database.sync { db in
            switch kind {
            case "changed":
                let sealed = try #require(try db.query("SELECT event FROM audit_chain WHERE org_id = ? AND chain_index = 3", org).first?.blob("event"))
                var flipped = sealed
                flipped[flipped.count - 1] ^= 1
                try db.execute("UPDATE audit_chain SET event = ? WHERE org_id = ? AND chain_index = 3", flipped, org)
            case "removed":
                try db.execute("DELETE FROM audit_chain WHERE org_id = ? AND chain_index = 3", org)
            default:
                try db.execute("UPDATE audit_chain SET chain_index = 100 WHERE org_id = ? AND chain_index = 3", org)
                try db.execute("UPDATE audit_chain SET chain_index = 3 WHERE org_id = ? AND chain_index = 4", org)
                try db.execute("UPDATE audit_chain SET chain_index = 4 WHERE org_id = ? AND chain_index = 100", org)
            }
        }
        let verdict = try await deployment.audit().verifyAuditChain(.with { $0.orgID = org }, options: try bearer(admin))
        #expect(!verdict.intact && verdict.firstBrokenIndex == 3 && verdict.eventsChecked == 2, "\(verdict.reason)")
        #expect(verdict.head.isEmpty)
    }
}

@Suite("Compliance refusals", .serialized)
struct ComplianceRefusalTests {
    @Test("Reading the trail refuses no token, an expired token, another org's token, a member (no audit.read), an operator without a grant and a service; appending refuses gateways and operators")
    func refusalTable() async throws {
        let deployment = try await ComplianceDeployment()
        defer { Task { await deployment.stop() } }
        let (org, _, expiring) = try await deployment.identity.newOrganisation()
        deployment.identity.clock.advance(by: .seconds(12 * 3600 - 60))
        let other = try await deployment.identity.newOrganisation("Jones LLP")
        deployment.identity.clock.advance(by: .seconds(120))
        let (org2, _, admin2) = try await deployment.identity.newOrganisation("Fourth LLP")
        let member = try await deployment.identity.newUser(.member, in: org2, admin: admin2)
        _ = try await deployment.append(3, org: org)
        _ = try await deployment.append(1, org: org2, prefix: "second")  // a trail of its own, for its admin's checkpoint

        typealias Attempt = @Sendable (Audit, CallOptions, String) async throws -> Void
        let calls: [(String, Attempt)] = [
            ("ListAuditEvents", { audit, options, org in _ = try await audit.listAuditEvents(.with { $0.orgID = org }, options: options) }),
            ("VerifyAuditChain", { audit, options, org in _ = try await audit.verifyAuditChain(.with { $0.orgID = org }, options: options) }),
            ("ExportAuditEvents", { audit, options, org in
                try await audit.exportAuditEvents(.with { $0.orgID = org }, options: options) { stream in for try await _ in stream {} }
            }),
            ("ListAuditCheckpoints", { audit, options, org in _ = try await audit.listAuditCheckpoints(.with { $0.orgID = org }, options: options) }),
            ("GetAuditCheckpoint", { audit, options, org in _ = try await audit.getAuditCheckpoint(.with { $0.orgID = org }, options: options) }),
        ]
        let web = try deployment.audit(), ops = try deployment.audit(as: TemporaryPKI.identity("operator", "ops"))
        let service = try deployment.audit(as: TemporaryPKI.identity("service", "media"))
        for (name, call) in calls {
            #expect(await code { try await call(web, CallOptions(), org) } == .unauthenticated, "\(name): no token")
            #expect(await code { try await call(web, try bearer(expiring), org) } == .unauthenticated, "\(name): expired token")
            #expect(await code { try await call(web, try bearer(other.admin), org) } == .permissionDenied, "\(name): another org's token")
            #expect(await code { try await call(web, try bearer(member), org2) } == .permissionDenied, "\(name): a member")
            #expect(await code { try await call(ops, CallOptions(), org) } == .permissionDenied, "\(name): an operator without a grant")
            #expect(await code { try await call(service, try bearer(admin2), org2) } == .permissionDenied, "\(name): a service certificate")
            #expect(await code { try await call(web, try bearer(admin2), org2) } == .ok, "\(name): the admin")
        }
        for peer in [TemporaryPKI.identity("gateway", "web"), TemporaryPKI.identity("operator", "ops")] {
            #expect(await code { _ = try await deployment.audit(as: peer).appendAuditEvents(.init()) } == .permissionDenied, "append from \(peer)")
        }
    }
}
