import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceOutbound
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import FakeTwilio
import Foundation
import Testing
@testable import TelephonyGateway
import Twilio

/// The four services and the telephony gateway in process, over real mutual TLS; a fake Twilio
/// over real TLS (its REST API: recordings fetched and deleted) whose driver plays each call's
/// life through the gateway's webhooks, signed as Twilio signs them.
final class TelephonyRig: @unchecked Sendable {
    typealias Routing = Calltrace_Transcript_V1_Routing
    static let publicURL = TelephonyStack.publicURL
    static let office = "+441184960999"
    static let caller = "+447700900123"

    /// Media in this process, or as a process of its own (`mediaAsProcess`).
    let services: any ServiceDeployment
    let fake: FakeTwilio
    /// The gateway in this process, or as a process of its own (`killable`).
    private(set) var telephony: InProcessService!
    private(set) var process: RunningProcess?
    private var setup: ServiceSetup?
    private var processFlags: [String] = []
    let driver: CallDriver
    let org: String
    let admin: String
    /// The firm's tracking number (CallLedger's), at the fake with the gateway's webhooks.
    let number: String
    private var listener: Task<Void, any Error>?
    private let stack: TelephonyStack

    /// - Parameters:
    ///   - killable: the gateway runs as a process, to be killed (`kill`) and started again (`restart`).
    ///   - mediaAsProcess: media runs as a process, to be killed and started again (`media`).
    init(routing: Routing? = TelephonyRig.alwaysOpen, killable: Bool = false, mediaAsProcess: Bool = false) async throws {
        // A gateway process reaches the services through ports: real mutual TLS.
        services = try await TestTransport.$current.withValue(killable ? .tls : TestTransport.current) { () async throws -> any ServiceDeployment in
            mediaAsProcess ? try await MediaProcessDeployment() : try await MediaDeployment()
        }
        stack = try TelephonyStack(pki: services.pki)
        fake = stack.fake
        if killable {
            let setup = try ServiceSetup(service: "telephony", kind: "gateway", pki: services.pki)
            let port = try freePort()
            processFlags = setup.flags + ["--http-listen", "127.0.0.1:\(port)", "--log-format", "json"]
                + stack.settings.flatMap { ["--" + $0.key.replacingOccurrences(of: "_", with: "-"), $0.value] }
            self.setup = setup
            driver = CallDriver(fake: fake, gatewayURL: "http://127.0.0.1:\(port)", publicURL: Self.publicURL)
        } else {
            let started = try await stack.start(on: services)
            (telephony, driver, listener) = (started.gateway, started.driver, started.listener)
        }
        let (org, admin) = try await services.calls.organisation()
        (self.org, self.admin) = (org, admin)
        let listed = try await Calltrace_Transcript_V1_TrackingNumberServiceClient(try services.calls.transcript.client())
            .listTrackingNumbers(.with { $0.orgID = org }, options: try bearer(admin))
        number = try #require(listed.trackingNumbers.first?.number)
        _ = fake.addIncomingNumber(number, voiceURL: Self.publicURL + WebhookURLs.voicePath, statusCallback: Self.publicURL + WebhookURLs.statusPath)
        if killable { try await restart() }
        if let routing { try await route(routing) }
    }

    /// Starts the gateway's process (again), on its database, and waits until it serves.
    func restart() async throws {
        guard let setup else { return }
        process = try setup.start(processFlags, environment: [
            "CALLTRACE_PEER_TRANSCRIPT": "127.0.0.1:\(services.calls.transcript.instance.port)",
            "CALLTRACE_PEER_MEDIA": "127.0.0.1:\(services.mediaPort)",
            "CALLTRACE_PEER_IDENTITY": "127.0.0.1:\(services.calls.identity.instance.port)",
            "CALLTRACE_PEER_COMPLIANCE": "127.0.0.1:\(services.calls.compliance.instance.port)",
        ])
        try await setup.waitUntilServing(try setup.client())
        #expect(await process!.waitForOutput(containing: "Twilio's webhooks served"))
    }

    /// kill -9 of the gateway's process.
    func kill() async {
        process?.signal(SIGKILL)
        #expect(await process?.waitForExit()?.status == 128 + SIGKILL)
    }

    func stop() async {
        listener?.cancel()
        _ = await listener?.result
        await telephony?.stop()
        if let process {
            process.signal(SIGTERM)
            _ = await process.waitForExit()
        }
        stack.stop()
        await services.stop()
    }

    /// The office's phone, rung for 20 s, always open, voicemail when nobody answers.
    static var alwaysOpen: Routing { .with { $0.destinations = [office]; $0.ringSeconds = 20; $0.voicemail = true } }

    func route(_ routing: Routing) async throws {
        _ = try await Calltrace_Transcript_V1_TrackingNumberServiceClient(try services.calls.transcript.client()).setRouting(.with {
            $0.orgID = org; $0.number = number; $0.routing = routing
        }, options: try bearer(admin))
    }

    /// The caller's objection to recording, as the firm's admin records it (a suppression).
    func suppress(_ caller: String) async throws {
        _ = try await Calltrace_Transcript_V1_SuppressionServiceClient(try services.calls.transcript.client()).addSuppression(.with {
            $0.orgID = org; $0.phoneNumber = caller; $0.reason = "objection received"
        }, options: try bearer(admin))
    }

    /// A caller dialling the firm's number.
    func call(from caller: String = TelephonyRig.caller, _ leg: CallDriver.DialledLeg = .answers(talkSeconds: 42),
              wav: Data = wavFile(samples: 16_000, channels: 2)) async throws -> CallDriver.PlayedCall {
        try await driver.play(.init(from: caller, to: number, dialledLeg: leg, recordingWAV: wav))
    }

    /// Transcript's record of the call, as the firm's admin sees it.
    func record(of call: String) async throws -> Calltrace_Transcript_V1_Call {
        try await Calltrace_Transcript_V1_CallServiceClient(try services.calls.transcript.client())
            .getCall(.with { $0.orgID = org; $0.callID = call }, options: try bearer(admin)).call
    }

    /// Media's recordings of the call.
    func recordings(of call: String) async throws -> [Calltrace_Media_V1_Recording] {
        try await services.gateway.listRecordings(.with { $0.orgID = org; $0.callID = call }, options: try bearer(admin)).recordings
    }

    /// Media's process, when the rig runs it as one (`mediaAsProcess`).
    var media: MediaProcessDeployment { services as! MediaProcessDeployment }

    /// Media's files: a recording's id each, and `….partial` for an upload under way.
    var mediaFiles: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: services.blobFolder)) ?? []).sorted() }

    /// The fake holds the gateway's read of a recording part way (`holdRecordingStreams`) and
    /// media is writing what reached it: the moment to kill one of them mid-upload.
    var heldMidUpload: Bool { fake.recordingStreamsHeld == 1 && mediaFiles.contains { $0.hasSuffix(".partial") } }

    /// Runs the gateway's due jobs (in process; a process runs its own) until `condition` holds,
    /// its clock moved past a failed transfer's backoff (an outage's retries, without the wait).
    func settle(_ condition: () async throws -> Bool) async rethrows -> Bool {
        try await eventually {
            if let telephony, let retry = try? await telephony.instance.jobs.list(state: "ready")
                .filter({ $0.kind == TransferRecording.kind }).map(\.runAtUnixMs).min(), retry > telephony.clock.nowUnixMs {
                telephony.clock.advance(by: .milliseconds(retry - telephony.clock.nowUnixMs))
            }
            _ = await telephony?.instance.jobs.runDue()
            return try await condition()
        }
    }

    var service: TelephonyService { telephony.instance.service as! TelephonyService }
    var counters: TelephonyCounters { service.counters }

    /// The gateway's gauge `name` (`GetMetrics`).
    func gauge(_ name: String) async -> Double? { await service.gauges().first { $0.name == name }?.value }

    /// The gateway's recording jobs not yet done (ready, running or dead).
    func transfersLeft() async throws -> [JobQueue.Status] {
        try await telephony.instance.jobs.list().filter { $0.kind == TransferRecording.kind }
    }

    /// Signs `parameters` as Twilio does and posts them to the gateway's `path`; its answer's status.
    func post(_ path: String, _ parameters: FormParameters) async throws -> Int {
        try await driver.post(url: Self.publicURL + path, parameters: parameters).status
    }
}
