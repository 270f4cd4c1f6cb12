import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import ComplianceDomain
import Foundation
import Testing

/// Issue 34: two replicas of compliance on one PostgreSQL database and one key store, as two
/// processes of a deployment, sharing the test's clock.
@Suite("Compliance: two replicas on one PostgreSQL database", .serialized)
struct ComplianceReplicaTests {
    /// `body` with every service the test starts on a database and a key store of its own in a
    /// new PostgreSQL server.
    private func onPostgres(_ body: () async throws -> Void) async throws {
        let pki = try TemporaryPKI()
        try await withTemporaryPostgres(pki: pki) { server in
            try await TestDatabases.$postgres.withValue(server) { try await TestDatabases.$sharedKeyStore.withValue(true) { try await body() } }
        }
    }

    @Test("Media's events for one firm appended through both replicas at once (20 batches of 10): each stored once, chained one at a time, and the chain verifies")
    func auditChainFromBothReplicas() async throws {
        try await onPostgres {
            let deployment = try await ComplianceDeployment()
            let second = try await deployment.compliance.replica()
            let made = try await deployment.identity.newOrganisation()
            let base = deployment.compliance.clock.nowUnixMs
            try await withThrowingTaskGroup(of: Void.self) { group in
                for batch in 0..<20 {
                    let replica = batch.isMultiple(of: 2) ? deployment.compliance : second
                    group.addTask {
                        let appended = try await Audit(try replica.client(identity: TemporaryPKI.identity("service", "media"))).appendAuditEvents(.with {
                            $0.events = (0..<10).map { n in
                                .with {
                                    $0.idempotencyKey = "media:b\(batch)-\(n)"; $0.orgID = made.org; $0.actor = "user:usr_1"; $0.action = "recording.played"
                                    $0.resource = "recording:rec_\(batch)_\(n)"; $0.outcome = "success"
                                    $0.occurredAtUnixMs = base + Int64(batch * 10 + n); $0.sourceService = "media"
                                }
                            }
                        })
                        #expect(appended.acknowledgedKeys.count == 10 && appended.rejected.isEmpty)
                    }
                }
                try await group.waitForAll()
            }
            // Through either replica: 200 of media's events, each once, on one chain that verifies.
            for replica in [deployment.compliance, second] {
                let audit = Audit(try replica.client())
                var played: [Calltrace_Compliance_V1_ChainedAuditEvent] = []
                var token = ""
                repeat {
                    let page = try await audit.listAuditEvents(.with { $0.orgID = made.org; $0.action = "recording.played"; $0.pageToken = token },
                                                               options: try bearer(made.admin))
                    played += page.events
                    token = page.nextPageToken
                } while !token.isEmpty
                #expect(played.count == 200 && Set(played.map(\.event.idempotencyKey)).count == 200)
                #expect(Set(played.map(\.chainIndex)).count == 200, "no two events share a place in the chain")
                let verdict = try await audit.verifyAuditChain(.with { $0.orgID = made.org }, options: try bearer(made.admin))
                #expect(verdict.intact && verdict.eventsChecked >= 200)
            }
            await second.stop()
            await deployment.stop()
        }
    }

    @Test("The daily retention sweep, due on both replicas at once, runs once: one daily job, one run of the firm's policy, one receipt")
    func retentionSweepOnce() async throws {
        try await onPostgres {
            let deployment = try await CallDataDeployment()
            let second = try await deployment.compliance.replica()
            let (org, admin) = try await deployment.organisation(tracking: "01184960000")
            _ = try await deployment.retention().setRetentionPolicy(.with {
                $0.orgID = org; $0.policy = .with { $0.recordingsMonths = 12; $0.transcriptsMonths = 12; $0.callRecordsMonths = 24 }
            }, options: try bearer(admin))
            // Past 02:00 London time tomorrow: the sweep is due on both replicas' shared schedule.
            deployment.clock.advance(by: .days(1))
            var runs: [Calltrace_Compliance_V1_RetentionRun] = []
            #expect(try await eventually {
                runs = try await deployment.retention().listRetentionRuns(.with { $0.orgID = org }, options: try bearer(admin)).runs
                return try await deployment.retentionSweepCaughtUp() && runs.count == 1 && runs[0].state == .finished
            }, "\(runs)")
            #expect(runs.first?.requestedBy == "schedule")
            // Each replica's "job done" lines of a kind (logged just after the job's row is gone).
            let done = { (kind: String) in
                [deployment.compliance, second].map { replica in
                    replica.log.text.split(separator: "\n").filter { $0.contains(" job done ") && $0.contains("kind=\(kind)") }.count
                }
            }
            #expect(try await eventually { done("retention.daily").reduce(0, +) >= 1 && done("retention.run").reduce(0, +) >= 1 })
            #expect(done("retention.daily").reduce(0, +) == 1, "\(done("retention.daily"))")
            #expect(done("retention.run").reduce(0, +) == 1, "\(done("retention.run"))")
            // Through the other replica, the same single receipt.
            let throughSecond = Retention(try second.client())
            #expect(try await throughSecond.listRetentionRuns(.with { $0.orgID = org }, options: try bearer(admin)).runs.map(\.runID) == runs.map(\.runID))
            await second.stop()
            await deployment.stop()
        }
    }
}
