import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceSync
public import CallTraceTestSupport
import Foundation
public import Logging
import ComplianceDomain
import IdentityDomain
import TranscriptDomain

/// Identity, transcript and compliance in this test process, for media's tests: media takes a
/// recording only for a call transcript confirms (started in that organisation, from a tracking
/// number the firm assigned, after the firm accepted the processing agreement), so every upload
/// here goes to a call started the way a telephony gateway starts one. Media itself runs in
/// process or as a process, told transcript's port.
public final class CallLedger: @unchecked Sendable {
    public let identity: InProcessService
    public let transcript: InProcessService
    public let compliance: InProcessService
    /// Each organisation's tracking number.
    private let numbers = Locked<[String: String]>([:])

    /// - Parameters:
    ///   - mediaPort: where media listens (or will), for transcript's and compliance's calls.
    ///   - logLevel: what the services' captured logs keep (benchmarks: a deployment's `.info`).
    public init(pki: TemporaryPKI, identity: InProcessService? = nil, mediaPort: Int, logLevel: Logger.Level = .debug) async throws {
        let identity = if let identity { identity } else { try await InProcessService.start(IdentityService.self, pki: pki, logLevel: logLevel) }
        self.identity = identity
        // Transcript and compliance name each other: transcript starts first, told the port
        // compliance will take (below the ephemeral range, so no parallel test's connection takes it).
        var started: (transcript: InProcessService, compliance: InProcessService)?
        var lastError: (any Error)?
        for _ in 0..<3 where started == nil {
            let compliancePort = try freePort()
            let transcript = try await InProcessService.start(TranscriptService.self, peers: [
                "identity": identity.instance.port, "media": mediaPort, "compliance": compliancePort,
            ], pki: pki, logLevel: logLevel)
            do {
                started = (transcript, try await InProcessService.start(ComplianceService.self, peers: [
                    "identity": identity.instance.port, "media": mediaPort, "transcript": transcript.instance.port,
                ], pki: pki, logLevel: logLevel) { $0.listen = "127.0.0.1:\(compliancePort)" })
            } catch {
                lastError = error  // the port was taken meanwhile: again, with another
                await transcript.stop()
            }
        }
        guard let started else { throw lastError ?? ConfigurationError("compliance did not start") }
        (transcript, compliance) = started
    }

    public func stop() async {
        await compliance.stop()
        await transcript.stop()
        await identity.stop()
    }

    /// For a media process: where its identity and transcript peers are.
    public var peerEnvironment: [String: String] {
        ["CALLTRACE_PEER_IDENTITY": "127.0.0.1:\(identity.instance.port)", "CALLTRACE_PEER_TRANSCRIPT": "127.0.0.1:\(transcript.instance.port)"]
    }

    /// The telephony gateway, the only caller media takes uploads from (`telephony_gateways`).
    public static let telephony = TemporaryPKI.telephony

    /// A new organisation, with a tracking number of its own, and its admin's session token.
    public func organisation(_ name: String = "Smith & Co Solicitors") async throws -> (org: String, admin: String) {
        let made = try await identity.newOrganisation(name)
        try await open(made.org, admin: made.admin)
        return (made.org, made.admin)
    }

    /// Makes `org` ready for calls as its admin (`admin`, a session token) would: the processing
    /// agreement accepted and a tracking number of its own assigned; the number.
    @discardableResult
    public func open(_ org: String, admin: String) async throws -> String {
        try await compliance.acceptAgreement(org: org, admin: admin)
        let number = numbers.withLock { numbers in
            let number = "+44118496\(String(format: "%04d", numbers.count))"
            numbers[org] = number
            return number
        }
        _ = try await Calltrace_Transcript_V1_TrackingNumberServiceClient(try transcript.client()).assignTrackingNumber(.with {
            $0.orgID = org; $0.number = number; $0.source = "Google Ads"; $0.channel = .googleAds
        }, options: try bearer(admin))
        return number
    }

    /// Starts `call` in `org` from `caller` as the telephony gateway does (again: the same answer).
    public func start(_ call: String, in org: String, caller: String = "07700900123") async throws {
        guard let number = numbers.withLock({ $0[org] }) else { return }  // a made-up organisation has no number: no call
        let started = try await Calltrace_Transcript_V1_CallServiceClient(try transcript.client(identity: Self.telephony)).startCall(.with {
            $0.callID = call; $0.trackingNumber = number; $0.callerNumber = caller; $0.direction = .inbound
        })
        precondition(started.orgID == org)
    }
}
