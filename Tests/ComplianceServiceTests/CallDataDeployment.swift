import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceSync
import CallTraceTestSupport
import ComplianceDomain
import Foundation
import IdentityDomain
import MediaDomain
import Testing
import TranscriptDomain

typealias Retention = Calltrace_Compliance_V1_RetentionServiceClient
typealias Deletions = Calltrace_Compliance_V1_DeletionServiceClient
typealias SubjectRequests = Calltrace_Compliance_V1_SubjectRequestServiceClient
typealias Calls = Calltrace_Transcript_V1_CallServiceClient
typealias Recordings = Calltrace_Media_V1_RecordingServiceClient

/// All four services in this test process over real mutual TLS, as deployed: media, transcript
/// and compliance call each other (and forward their audit events to compliance); identity
/// authorises users. Media, transcript and compliance share one test clock, which starts on
/// Monday 2 November 2026 at 10:00 UTC and moves only when a test moves it; identity keeps
/// real time, so sessions stay valid however far the others' clock goes.
final class CallDataDeployment: @unchecked Sendable {
    static let start = Int64(1_793_613_600_000)  // 2026-11-02T10:00:00Z
    let pki = try! TemporaryPKI()
    let clock: TestClock
    let identity: InProcessService
    private let services: Locked<[String: InProcessService]>
    private let admins = Locked<[String: String]>([:])

    var media: InProcessService { services.withLock { $0["media"]! } }
    var transcript: InProcessService { services.withLock { $0["transcript"]! } }
    var compliance: InProcessService { services.withLock { $0["compliance"]! } }

    /// - Parameter start: where the shared clock starts (default Monday 2 November 2026, 10:00 UTC).
    init(start: Int64 = CallDataDeployment.start) async throws {
        clock = TestClock(unixMs: start)
        identity = try await InProcessService.start(IdentityService.self, pki: pki)
        // The three name each other: transcript starts first, told the ports media and compliance
        // will take (below the ephemeral range, so no parallel test's connection takes them).
        var lastError: (any Error)?
        for _ in 0..<3 {
            let (mediaPort, compliancePort, identityPort) = (try freePort(), try freePort(), identity.instance.port)
            let (pki, clock) = (pki, clock)
            let transcript = try await InProcessService.start(TranscriptService.self, clock: clock,
                                                              peers: ["identity": identityPort, "media": mediaPort, "compliance": compliancePort], pki: pki)
            do {
                let media = try await InProcessService.start(MediaService.self, clock: clock, peers: [
                    "identity": identityPort, "transcript": transcript.instance.port, "compliance": compliancePort,
                ], pki: pki) { $0.listen = "127.0.0.1:\(mediaPort)" }
                do {
                    let compliance = try await InProcessService.start(ComplianceService.self, clock: clock, peers: [
                        "identity": identityPort, "media": mediaPort, "transcript": transcript.instance.port,
                    ], pki: pki) { $0.listen = "127.0.0.1:\(compliancePort)" }
                    services = Locked(["media": media, "transcript": transcript, "compliance": compliance])
                    return
                } catch {
                    await media.stop()
                    throw error
                }
            } catch {
                lastError = error  // a port was taken meanwhile: again, with others
                await transcript.stop()
            }
        }
        throw lastError ?? ConfigurationError("the deployment did not start")
    }

    func stop() async {
        for name in ["compliance", "media", "transcript"] { await services.withLock { $0[name]! }.stop() }
        await identity.stop()
    }

    /// Stops `name` (media, transcript or compliance); `restart` starts it again on the same stores.
    func stop(_ name: String) async {
        await services.withLock { $0[name]! }.stop()
    }

    func restart(_ name: String, adjust: (inout ServiceConfiguration) -> Void = { _ in }) async throws {
        let stopped = services.withLock { $0[name]! }
        let started = try await stopped.restarted(adjust: adjust)
        services.withLock { $0[name] = started }
    }

    // MARK: Clients (the web gateway unless said)

    static let web = TemporaryPKI.identity("gateway", "web")
    func retention(as who: String = web) throws -> Retention { Retention(try compliance.client(identity: who)) }
    func deletions(as who: String = web) throws -> Deletions { Deletions(try compliance.client(identity: who)) }
    func requests(as who: String = web) throws -> SubjectRequests { SubjectRequests(try compliance.client(identity: who)) }
    func calls(as who: String = web) throws -> Calls { Calls(try transcript.client(identity: who)) }
    func recordings(as who: String = web) throws -> Recordings { Recordings(try media.client(identity: who)) }
    func suppressions(as who: String = web) throws -> Calltrace_Transcript_V1_SuppressionServiceClient { .init(try transcript.client(identity: who)) }

    // MARK: A firm with calls

    /// A new organisation whose calls arrive on `tracking`, transcribed by hand (the gateway
    /// submits text) and analysed locally; its admin accepted the processing agreement (unless
    /// `acceptingAgreement` is false: then its calls are not recorded).
    func organisation(_ name: String = "Smith & Co Solicitors", tracking: String, acceptingAgreement: Bool = true) async throws
        -> (org: String, admin: String) {
        let made = try await identity.newOrganisation(name)
        if acceptingAgreement { try await compliance.acceptAgreement(org: made.org, admin: made.admin) }
        admins.withLock { $0[made.org] = made.email }
        _ = try await Calltrace_Transcript_V1_TrackingNumberServiceClient(try transcript.client()).assignTrackingNumber(.with {
            $0.orgID = made.org; $0.number = tracking; $0.source = "Google Ads"; $0.channel = .googleAds
        }, options: try bearer(made.admin))
        _ = try await Calltrace_Transcript_V1_TranscriptServiceClient(try transcript.client()).setTranscriptionSettings(.with {
            $0.orgID = made.org; $0.settings = .with { $0.enabled = true; $0.engine = "manual"; $0.analysisEngine = "local" }
        }, options: try bearer(made.admin))
        return (made.org, made.admin)
    }

    /// The e-mail of `org`'s first admin, to log in again.
    func adminEmail(of org: String) -> String? { admins.withLock { $0[org] } }

    func user(_ role: Calltrace_Identity_V1_Role, in org: String, admin: String) async throws -> String {
        try await identity.newUser(role, in: org, admin: admin)
    }

    /// A call from `caller` to `tracking` started at `time`, with a recording (stored now, `seconds`
    /// long) and a transcript.
    @discardableResult
    func call(_ callID: String, org: String, tracking: String, caller: String, at time: Int64, seconds: Int = 1) async throws -> String {
        _ = try await calls(as: TemporaryPKI.telephony).startCall(.with {
            $0.callID = callID; $0.trackingNumber = tracking; $0.callerNumber = caller; $0.direction = .inbound; $0.startedAtUnixMs = time
        })
        let file = wavFile(seconds: seconds)
        let recording = try await recordings(as: TemporaryPKI.telephony).uploadRecording { writer in
            try await writer.send(.with {
                $0.header = .with { $0.orgID = org; $0.callID = callID; $0.format = .wavPcm16; $0.sampleRateHz = 8000; $0.channels = 1; $0.sha256 = sha256(file) }
            })
            try await writer.send(.with { $0.chunk = file })
        }.recording
        _ = try await calls(as: TemporaryPKI.telephony).completeCall(.with {
            $0.callID = callID; $0.orgID = org; $0.outcome = .answered; $0.answeredAtUnixMs = time + 1000; $0.endedAtUnixMs = time + 60_000
            $0.recordingID = recording.recordingID
        })
        _ = try await Calltrace_Transcript_V1_TranscriptServiceClient(try transcript.client(identity: TemporaryPKI.telephony)).submitTranscript(.with {
            $0.orgID = org; $0.callID = callID; $0.segments = [.with { $0.speaker = "caller"; $0.text = "I was hurt at work and need advice." }]
        })
        return recording.recordingID
    }

    /// Whether transcript still has the call, and media its recording.
    func exists(call: String, recording: String, org: String, admin: String) async throws -> (call: Bool, recording: Bool) {
        let call = await code { _ = try await self.calls().getCall(.with { $0.orgID = org; $0.callID = call }, options: try bearer(admin)) }
        let recording = await code {
            _ = try await self.recordings().getRecording(.with { $0.orgID = org; $0.recordingID = recording }, options: try bearer(admin))
        }
        return (call == .ok, recording == .ok)
    }

    /// Whether compliance's daily retention sweep has caught up with the clock: its next time is
    /// ahead and no sweep is queued or running. (Workers notice a schedule that the clock's jump
    /// made due within a second of real time, so a sweep can otherwise start a moment later.)
    func retentionSweepCaughtUp() async throws -> Bool {
        let now = clock.nowUnixMs
        return try await compliance.instance.database.read { db in
            try db.query("SELECT 1 FROM jobs WHERE kind = 'retention.daily'").isEmpty
                && (try db.query("SELECT next_run_at_unix_ms FROM job_schedules WHERE name = 'retention'").first?.int("next_run_at_unix_ms") ?? 0) > now
        }
    }

    /// Whether the call still has a transcript.
    func hasTranscript(_ callID: String, org: String, admin: String) async throws -> Bool {
        try await Calltrace_Transcript_V1_TranscriptServiceClient(try transcript.client()).getTranscript(.with {
            $0.orgID = org; $0.callID = callID
        }, options: try bearer(admin)).hasTranscript
    }
}

extension Duration {
    static func days(_ n: Int) -> Duration { .seconds(86_400 * n) }
}
