import CallTraceServiceHost
public import CallTraceTestSupport
public import FakeTwilio
import Foundation

/// calltrace-telephony as a process of its own beside a `ProcessDeployment`, its webhooks on a
/// port of its own, with a fake Twilio in this process whose driver plays calls through them
/// (sending again, with the same idempotency token, a webhook the gateway did not answer, as
/// Twilio does under its connection overrides) and serves the recordings the gateway fetches.
public final class TelephonyGatewayProcess: @unchecked Sendable {
    public let process: ServiceProcess
    public let stack: TelephonyStack
    public let driver: CallDriver
    /// Where Twilio's webhooks reach it.
    public let webhookPort: Int

    /// - Parameter retryFor: how long the driver sends an unanswered webhook again (nil: never).
    public init(beside services: ProcessDeployment, retryFor: Duration? = nil) throws {
        stack = try TelephonyStack(pki: services.pki)
        webhookPort = try freePort()
        process = ServiceProcess(try ServiceSetup(service: "telephony", kind: "gateway", pki: services.pki), environment: services.peerEnvironment,
                                 flags: ["--http-listen", "127.0.0.1:\(webhookPort)"]
                                     + stack.settings.sorted { $0.key < $1.key }.flatMap { ["--" + $0.key.replacingOccurrences(of: "_", with: "-"), $0.value] })
        driver = CallDriver(fake: stack.fake, gatewayURL: "http://127.0.0.1:\(webhookPort)", publicURL: TelephonyStack.publicURL, retryFor: retryFor)
    }

    /// Starts the gateway (again) and waits until its webhooks are served.
    public func start() async throws {
        try await process.start()
        guard await process.waitForOutput(containing: "Twilio's webhooks served") else {
            throw ConfigurationError("calltrace-telephony did not serve its webhooks:\n\(process.log.suffix(2_000))")
        }
    }

    /// The account's number `number`, its calls sent to the gateway's voice and status webhooks.
    public func answer(_ number: String) {
        _ = stack.fake.addIncomingNumber(number, voiceURL: TelephonyStack.publicURL + "/twilio/voice",
                                         statusCallback: TelephonyStack.publicURL + "/twilio/status")
    }

    public func stop() async {
        await process.kill()
        stack.stop()
    }
}
