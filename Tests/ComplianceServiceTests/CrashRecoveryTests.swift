import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import Foundation
import Testing

@Suite("Compliance killed with SIGKILL: deletions and erasures finish after restart")
struct CrashRecoveryTests {
    @Test("kill -9 of compliance while a deletion and an erasure wait for media: after restart both finish, in transcript and media, and the erasure is confirmed")
    func killDuringDeletionAndErasure() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let t0 = CallDataDeployment.start
        let first = try await deployment.call("call-1", org: org, tracking: "01184960000", caller: "07700 900123", at: t0 + 1000)
        let second = try await deployment.call("call-2", org: org, tracking: "01184960000", caller: "07700 900456", at: t0 + 2000)

        // Compliance becomes a process on the same database, keys and port; media goes down.
        let port = deployment.compliance.instance.port
        let setup = deployment.compliance.setup
        await deployment.stop("compliance")
        await deployment.stop("media")
        var flags = setup.flags
        flags[try #require(flags.firstIndex(of: "--listen")) + 1] = "127.0.0.1:\(port)"
        let environment = ["CALLTRACE_PEER_IDENTITY": "127.0.0.1:\(deployment.identity.instance.port)",
                           "CALLTRACE_PEER_MEDIA": "127.0.0.1:\(deployment.media.instance.port)",
                           "CALLTRACE_PEER_TRANSCRIPT": "127.0.0.1:\(deployment.transcript.instance.port)"]
        func client() throws -> RPCClient {
            try RPCClient(target: .init(host: "127.0.0.1", port: port, identity: TemporaryPKI.identity("service", "compliance")),
                          configuration: .init(credentials: try deployment.pki.credentials(for: CallDataDeployment.web)))
        }
        var process = try setup.start(flags, environment: environment)
        try await setup.waitUntilServing(try client())

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
        process = try setup.start(flags, environment: environment)
        try await setup.waitUntilServing(try client())
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
