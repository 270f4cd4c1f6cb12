import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import CallTraceSync
import CallTraceTestSupport
import ComplianceDomain
import Foundation
import IdentityDomain
import MediaDomain
import Testing
import TranscriptDomain

/// A replica of compliance, a process of its own on the shared PostgreSQL database and key
/// store, reached at its own port.
final class ComplianceReplicaProcess: ServiceEndpoint, @unchecked Sendable {
    let setup: ServiceSetup
    let port: Int
    let process: RunningProcess
    private let clients = Locked<[String: RPCClient]>([:])

    /// Starts `calltrace-compliance` with `setup`'s certificate and master key, on `database`
    /// and `keyStore` (PostgreSQL URLs), at `port`, calling `media` at `mediaPort`.
    init(setup: ServiceSetup, port: Int, server: TemporaryPostgres, database: String, keyStore: String, dataFolder: String,
         peers: [String: Int], mediaPort: Int) async throws {
        self.setup = setup
        self.port = port
        var flags = setup.flags
        for (flag, value) in [("--database", database), ("--listen", "127.0.0.1:\(port)")] {
            guard let at = flags.firstIndex(of: flag) else { throw ConfigurationError("no \(flag) in the setup's flags") }
            flags[at + 1] = value
        }
        flags += ["--database-password-file", server.passwordFile, "--key-store", keyStore, "--key-store-password-file", server.passwordFile,
                  "--data-folder", dataFolder, "--job-lease-seconds", "6"]
        var environment = peers.reduce(into: [String: String]()) { $0["CALLTRACE_PEER_\($1.key.uppercased())"] = "127.0.0.1:\($1.value)" }
        environment["CALLTRACE_PEER_MEDIA"] = "127.0.0.1:\(mediaPort)"
        process = try setup.start(flags, environment: environment)
        try await setup.waitUntilServing(try client(identity: TemporaryPKI.identity("operator", "ops")))
    }

    func client(identity: String) throws -> RPCClient {
        if let known = clients.withLock({ $0[identity] }) { return known }
        let made = try RPCClient(target: .init(host: "127.0.0.1", port: port, identity: TemporaryPKI.identity("service", "compliance")),
                                 configuration: .init(credentials: try setup.pki.credentials(for: identity)))
        clients.withLock { $0[identity] = made }
        return made
    }
}

/// Media as compliance's job finds it when a media replica hangs: it takes the call and never
/// answers (until the caller's deadline).
struct HangingMedia: RPCService {
    func register(with router: inout RPCRouter) {
        router.unary(Calltrace_Media_V1_RecordingService.deleteCallRecordings, allow: .anyPeer) { _, _ in
            try await Task.sleep(for: .seconds(3600))
            return Calltrace_Media_V1_DeleteCallRecordingsResponse()
        }
    }
}

/// Issue 34: kill -9 of a replica in the middle of a job.
@Suite("Compliance: a replica killed in the middle of a job", .serialized)
struct ReplicaKillTests {
    @Test("Compliance replica A, a process, is killed with SIGKILL while its job deleting a call waits on media: replica B, another process on the same PostgreSQL database and key store, takes the job over once A's lease runs out and finishes it once")
    func killedMidJob() async throws {
        let pki = try TemporaryPKI()
        try await withTemporaryPostgres(pki: pki) { server in
            try await TestTransport.$current.withValue(.tls) {
                let identity = try await InProcessService.start(IdentityService.self, pki: pki)
                let (portA, portB, mediaPort) = (try freePort(), try freePort(), try freePort())
                let transcript = try await InProcessService.start(TranscriptService.self, peers: [
                    "identity": identity.instance.port, "media": mediaPort, "compliance": portA,
                ], pki: pki)
                let media = try await InProcessService.start(MediaService.self, peers: [
                    "identity": identity.instance.port, "transcript": transcript.instance.port, "compliance": portA,
                ], pki: pki) { $0.listen = "127.0.0.1:\(mediaPort)" }
                let hanging = try RPCServer(configuration: .init(credentials: try pki.credentials(for: TemporaryPKI.identity("service", "media")),
                                                                 info: .init(serviceName: "media", version: "test")),
                                            services: [HangingMedia()], logger: CapturedLog().logger(level: .critical))
                defer { hanging.stop() }

                let setup = try ServiceSetup(service: "compliance", pki: pki)
                let (database, keyStore) = (try server.newDatabase(named: "compliance"), try server.newDatabase(named: "compliance_keys"))
                let dataFolder = (setup.database as NSString).deletingLastPathComponent
                let peers = ["identity": identity.instance.port, "transcript": transcript.instance.port]
                // A calls the media that hangs; B, started later, the real one.
                let replicaA = try await ComplianceReplicaProcess(setup: setup, port: portA, server: server, database: database, keyStore: keyStore,
                                                                  dataFolder: dataFolder, peers: peers, mediaPort: hanging.port)
                let made = try await identity.newOrganisation()
                try await replicaA.acceptAgreement(org: made.org, admin: made.admin)
                _ = try await Calltrace_Transcript_V1_TrackingNumberServiceClient(try transcript.client()).assignTrackingNumber(.with {
                    $0.orgID = made.org; $0.number = "0118 496 0000"; $0.source = "Google Ads"; $0.channel = .googleAds
                }, options: try bearer(made.admin))
                let telephony = Calltrace_Transcript_V1_CallServiceClient(try transcript.client(identity: TemporaryPKI.telephony))
                let started = try await telephony.startCall(.with {
                    $0.callID = "call-kill-1"; $0.trackingNumber = "01184960000"; $0.callerNumber = "07700 900123"; $0.direction = .inbound
                })
                #expect(started.record)

                // A takes the deletion and its job: transcript confirms, media hangs.
                let deletion = try await Deletions(try replicaA.client(identity: TemporaryPKI.identity("gateway", "web"))).deleteCall(.with {
                    $0.orgID = made.org; $0.callID = "call-kill-1"; $0.reason = "caller asked"
                }, options: try bearer(made.admin)).deletion
                let shared = try Database.open(database, passwordFile: server.passwordFile)
                defer { shared.close() }
                let holder = { () async throws -> (state: String, owner: String)? in
                    try await shared.read { db in
                        try db.query("SELECT state, lease_owner FROM jobs WHERE kind = 'deletion.call'").first.map {
                            ($0.text("state") ?? "", $0.text("lease_owner") ?? "")
                        }
                    }
                }
                let confirmedByTranscript = { () async throws -> Bool in
                    try await shared.read { db in
                        (try db.query("SELECT transcript_confirmed_at_unix_ms AS at FROM deletions WHERE id = ?", deletion.deletionID).first?
                            .int("at") ?? 0) > 0
                    }
                }
                #expect(try await eventually {
                    guard try await holder()?.state == "running" else { return false }
                    return try await confirmedByTranscript()
                })
                let ownerA = try #require(try await holder()).owner

                // A dies in the middle of the job (its call to media waits up to 30 s: killed
                // at once, before that ends and the job is retried), leaving it running, A's.
                replicaA.process.signal(SIGKILL)
                #expect(await replicaA.process.waitForExit() != nil)
                let atKill = try await holder()
                #expect(atKill?.state == "running" && atKill?.owner == ownerA)

                // B, another process on the same database, finds the job A's until A's lease runs out.
                let replicaB = try await ComplianceReplicaProcess(setup: setup, port: portB, server: server, database: database, keyStore: keyStore,
                                                                  dataFolder: dataFolder, peers: peers, mediaPort: mediaPort)

                // B takes it over once A's lease (6 s, renewed every 1.5 s while A lived) runs out, and finishes it: once.
                let throughB = Deletions(try replicaB.client(identity: TemporaryPKI.identity("gateway", "web")))
                var seen = Calltrace_Compliance_V1_Deletion()
                #expect(try await eventually(timeout: .seconds(60)) {
                    seen = try await throughB.getDeletion(.with { $0.orgID = made.org; $0.deletionID = deletion.deletionID }, options: try bearer(made.admin)).deletion
                    return seen.state == .done
                }, "\(seen)")
                // (Its row goes just after the deletion is written finished.)
                #expect(try await eventually { try await holder() == nil }, "the job is gone")
                #expect(seen.transcriptConfirmedAtUnixMs > 0 && seen.mediaConfirmedAtUnixMs > 0)
                #expect(await code {
                    _ = try await Calltrace_Transcript_V1_CallServiceClient(try transcript.client()).getCall(.with {
                        $0.orgID = made.org; $0.callID = "call-kill-1"
                    }, options: try bearer(made.admin))
                } == .notFound)
                let audit = Audit(try replicaB.client(identity: TemporaryPKI.identity("gateway", "web")))
                var deleted: [Calltrace_Compliance_V1_ChainedAuditEvent] = []
                #expect(try await eventually {
                    deleted = try await audit.listAuditEvents(.with { $0.orgID = made.org; $0.action = "call.deleted" }, options: try bearer(made.admin))
                        .events.filter { $0.event.sourceService == "compliance" }
                    return !deleted.isEmpty
                })
                #expect(deleted.count == 1, "finished once: \(deleted.map(\.event.detail))")
                #expect(try await audit.verifyAuditChain(.with { $0.orgID = made.org }, options: try bearer(made.admin)).intact)

                replicaB.process.signal(SIGTERM)
                _ = await replicaB.process.waitForExit()
                await media.stop()
                await transcript.stop()
                await identity.stop()
            }
        }
    }
}
