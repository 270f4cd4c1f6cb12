import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import Foundation
import Testing

@Suite("Compliance killed with SIGKILL: deletions, erasures and retention runs finish after restart", .overTLS)
struct CrashRecoveryTests {
    /// Compliance as a process on the in-process instance's database, keys and port (which
    /// media and transcript know), its peers the deployment's.
    struct ComplianceProcess {
        let setup: ServiceSetup
        let port: Int
        let flags: [String]
        let environment: [String: String]
        let pki: TemporaryPKI

        init(taking deployment: CallDataDeployment) async throws {
            port = deployment.compliance.instance.port
            setup = deployment.compliance.setup
            pki = deployment.pki
            await deployment.stop("compliance")
            var flags = setup.flags
            flags[try #require(flags.firstIndex(of: "--listen")) + 1] = "127.0.0.1:\(port)"
            self.flags = flags
            environment = ["CALLTRACE_PEER_IDENTITY": "127.0.0.1:\(deployment.identity.instance.port)",
                           "CALLTRACE_PEER_MEDIA": "127.0.0.1:\(deployment.media.instance.port)",
                           "CALLTRACE_PEER_TRANSCRIPT": "127.0.0.1:\(deployment.transcript.instance.port)"]
        }

        func client() throws -> RPCClient {
            try RPCClient(target: .init(host: "127.0.0.1", port: port, identity: TemporaryPKI.identity("service", "compliance")),
                          configuration: .init(credentials: try pki.credentials(for: CallDataDeployment.web)))
        }

        func start() async throws -> RunningProcess {
            let process = try setup.start(flags, environment: environment)
            try await setup.waitUntilServing(try client())
            return process
        }
    }

    @Test("kill -9 of compliance in the middle of a retention run (recordings purged, transcript down): after restart the run resumes where it stood and its receipt counts each kind once")
    func killDuringRetention() async throws {
        // Data from six months before the real time the process keeps.
        let deployment = try await CallDataDeployment(start: SystemClock().nowUnixMs - 183 * 86_400_000)
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let start = deployment.clock.nowUnixMs
        let first = try await deployment.call("call-1", org: org, tracking: "01184960000", caller: "07700 900123", at: start + 1000)
        let second = try await deployment.call("call-2", org: org, tracking: "01184960000", caller: "07700 900456", at: start + 2000)
        let compliance = try await ComplianceProcess(taking: deployment)
        var process = try await compliance.start()
        let retention = Retention(try compliance.client())
        _ = try await retention.setRetentionPolicy(.with {
            $0.orgID = org; $0.policy = .with { $0.recordingsMonths = 1; $0.transcriptsMonths = 1; $0.callRecordsMonths = 1 }
        }, options: try bearer(admin))

        await deployment.stop("transcript")
        let run = try await retention.runRetention(.with { $0.orgID = org }, options: try bearer(admin)).run
        #expect(try await eventually {
            let now = try await retention.listRetentionRuns(.with { $0.orgID = org }, options: try bearer(admin)).runs.first { $0.runID == run.runID }
            return now?.recordingsPurged == 2 && now?.lastError.isEmpty == false
        }, "recordings purged; waiting for transcript")
        process.signal(SIGKILL)
        #expect(await process.waitForExit()?.status == 128 + SIGKILL)
        try await deployment.restart("transcript")
        process = try await compliance.start()
        var receipt = Calltrace_Compliance_V1_RetentionRun()
        #expect(try await eventually(timeout: .seconds(90)) {
            receipt = try await Retention(try compliance.client()).listRetentionRuns(.with { $0.orgID = org }, options: try bearer(admin))
                .runs.first { $0.runID == run.runID } ?? receipt
            return receipt.state == .finished
        }, "the run finished after the restart")
        #expect(receipt.recordingsPurged == 2 && receipt.transcriptsPurged == 2 && receipt.callRecordsPurged == 2, "\(receipt)")
        #expect(try await deployment.exists(call: "call-1", recording: first, org: org, admin: admin) == (false, false))
        #expect(try await deployment.exists(call: "call-2", recording: second, org: org, admin: admin) == (false, false))
        process.signal(SIGTERM)
        #expect(await process.waitForExit()?.status == 0)
        try await deployment.restart("compliance")
    }

    @Test("kill -9 of compliance while a deletion and an erasure wait for media: after restart both finish, in transcript and media, and the erasure is confirmed")
    func killDuringDeletionAndErasure() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let t0 = CallDataDeployment.start
        let first = try await deployment.call("call-1", org: org, tracking: "01184960000", caller: "07700 900123", at: t0 + 1000)
        let second = try await deployment.call("call-2", org: org, tracking: "01184960000", caller: "07700 900456", at: t0 + 2000)

        // Compliance becomes a process on the same database, keys and port; media goes down.
        let compliance = try await ComplianceProcess(taking: deployment)
        await deployment.stop("media")
        var process = try await compliance.start()
        func client() throws -> RPCClient { try compliance.client() }

        let deletions = Deletions(try client()), requests = SubjectRequests(try client())
        let deletion = try await deletions.deleteCall(.with { $0.orgID = org; $0.callID = "call-1" }, options: try bearer(admin)).deletion
        let erasure = try await SubjectRequestTests.open(requests, org: org, admin: admin, kind: .erasure, numbers: ["07700 900456"])
        _ = try await requests.recordIdentityCheck(.with { $0.orgID = org; $0.requestID = erasure.requestID; $0.result = .passed }, options: try bearer(admin))
        let erasing = try await requests.eraseSubjectData(.with { $0.orgID = org; $0.requestID = erasure.requestID }, options: try bearer(admin)).request
        #expect(erasing.deletionIds.count == 1)
        #expect(try await eventually {
            let listed = try await deletions.listDeletions(.with { $0.orgID = org }, options: try bearer(admin)).deletions
            return listed.count == 2 && listed.allSatisfy { $0.transcriptConfirmedAtUnixMs > 0 && $0.attempts >= 1 && $0.state == .pending }
        }, "both calls are gone from transcript; media's part waits")

        process.signal(SIGKILL)
        #expect(await process.waitForExit()?.status == 128 + SIGKILL)
        try await deployment.restart("media")
        process = try await compliance.start()
        #expect(try await eventually(timeout: .seconds(90)) {
            try await Deletions(try client()).getDeletion(.with { $0.orgID = org; $0.deletionID = deletion.deletionID }, options: try bearer(admin))
                .deletion.state == .done
        }, "the deletion finished after the restart")
        #expect(try await eventually(timeout: .seconds(90)) {
            try await SubjectRequests(try client()).getSubjectRequest(.with { $0.orgID = org; $0.requestID = erasure.requestID }, options: try bearer(admin))
                .request.erasureConfirmedAtUnixMs > 0
        }, "the erasure was confirmed after the restart")
        #expect(try await deployment.exists(call: "call-1", recording: first, org: org, admin: admin) == (false, false))
        #expect(try await deployment.exists(call: "call-2", recording: second, org: org, admin: admin) == (false, false))

        process.signal(SIGTERM)
        #expect(await process.waitForExit()?.status == 0)
        try await deployment.restart("compliance")  // in process again, for the deployment to stop as it started
    }
}
