import ArgumentParser
import CallTraceAPI
import CallTraceDeploymentSupport
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TelephonyGateway
import Twilio

/// Twilio's voice webhook through calltrace-telephony with the four services behind it (issue
/// 31: Twilio waits for TwiML, so under 50 ms at the 99th percentile), beside the one RPC it
/// makes (`StartCall` over ctrpc/1 as the gateway) in the same run: the gap is what the gateway
/// adds (HTTP, the signature, its answer kept for retries).
struct TelephonyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "telephony", abstract: "Voice webhook latency (p50/p99) and webhooks per second, signature checked, vs StartCall alone.")

    @Option(help: "Webhooks measured one at a time (after a tenth as many to warm up).") var requests = 1000
    @Option(help: "Concurrent callers for the throughput figure.") var callers = 8

    /// Over ports and real mutual TLS, as deployed (the suite's default is the in-process transport).
    func run() async throws {
        try await TestTransport.$current.withValue(.tls) { try await measure() }
    }

    private func measure() async throws {
        print("calltrace-bench telephony: the four services and calltrace-telephony in this process")
        let services = try await MediaDeployment()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("bench-twilio-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: folder) }
        let account = "AC" + String(repeating: "ab", count: 16), authToken = String(repeating: "7", count: 32)
        let keyFile = folder.appendingPathComponent("api-key").path, tokenFile = folder.appendingPathComponent("auth-token").path
        for (path, contents) in [(keyFile, "SK\(String(repeating: "cd", count: 16)):secret"), (tokenFile, authToken)] {
            guard FileManager.default.createFile(atPath: path, contents: Data(contents.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw ValidationError("cannot write \(path)")
            }
        }
        let publicURL = "https://hooks.bench.test"
        let telephony = try await InProcessService.start(TelephonyService.self, peers: [
            "transcript": services.calls.transcript.instance.port, "media": services.media.instance.port,
        ], pki: services.pki, logLevel: .warning) {
            try? $0.set("http_listen", "127.0.0.1:0"); try? $0.set("public_url", publicURL)
            try? $0.set("twilio_account_sid", account); try? $0.set("twilio_api_key_file", keyFile)
            try? $0.set("twilio_auth_token_file", tokenFile)
        }
        let companions = telephony.instance.companions
        let listener = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for companion in companions { group.addTask { try await companion.run() } }
                try await group.waitForAll()
            }
        }
        defer { listener.cancel() }
        let port = await (telephony.instance.service as! TelephonyService).httpPort() ?? 0
        let (org, admin) = try await services.organisation("Bench LLP")
        let number = try await Calltrace_Transcript_V1_TrackingNumberServiceClient(try services.calls.transcript.client())
            .listTrackingNumbers(.with { $0.orgID = org }, options: try bearer(admin)).trackingNumbers[0].number
        let transcript = Calltrace_Transcript_V1_CallServiceClient(try services.calls.transcript.client(identity: TemporaryPKI.telephony))

        let signer = TwilioSignature(authToken: authToken)
        let session = URLSession(configuration: .ephemeral)
        let sent = Counter()
        @Sendable func webhook() async throws -> Double {
            let sid = "CA" + String(format: "%032x", sent.next())
            let form: FormParameters = ["AccountSid": account, "CallSid": sid, "From": "+447700900123", "To": number,
                                        "Direction": "inbound", "CallStatus": "ringing", "ApiVersion": "2010-04-01"]
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/twilio/voice")!)
            request.httpMethod = "POST"
            request.httpBody = form.encoded
            request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
            request.setValue(signer.signature(url: publicURL + "/twilio/voice", parameters: form), forHTTPHeaderField: TwilioSignature.header)
            let start = ContinuousClock.now
            let (_, response) = try await session.data(for: request)
            guard (response as? HTTPURLResponse)?.statusCode == 200 else { throw ValidationError("the voice webhook was not answered 200") }
            return start.duration(to: .now).milliseconds
        }
        @Sendable func startCall() async throws -> Double {
            let start = ContinuousClock.now
            _ = try await transcript.startCall(.with {
                $0.callID = "CA" + String(format: "%032x", sent.next()); $0.trackingNumber = number; $0.callerNumber = "+447700900123"
                $0.direction = .inbound
            })
            return start.duration(to: .now).milliseconds
        }
        func measured(_ body: () async throws -> Double) async throws -> [Double] {
            for _ in 0..<max(1, requests / 10) { _ = try await body() }
            var times: [Double] = []
            for _ in 0..<requests { times.append(try await body()) }
            return times.sorted()
        }
        func perSecond(_ body: @escaping @Sendable () async throws -> Double) async throws -> Double {
            let total = requests, each = max(1, total / callers)
            let start = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<callers { group.addTask { for _ in 0..<each { _ = try await body() } } }
                try await group.waitForAll()
            }
            return Double(each * callers) / start.duration(to: .now).seconds
        }
        let hooks = try await measured(webhook)
        let rpcs = try await measured(startCall)
        let hooksPerSecond = try await perSecond(webhook)
        let rpcsPerSecond = try await perSecond(startCall)
        var signatures = 0.0
        do {
            let form: FormParameters = ["AccountSid": account, "CallSid": "CA" + String(repeating: "0", count: 32), "From": "+447700900123", "To": number]
            let signature = signer.signature(url: publicURL + "/twilio/voice", parameters: form)
            let start = ContinuousClock.now
            for _ in 0..<10_000 { _ = signer.isValid(signature, url: publicURL + "/twilio/voice", parameters: form) }
            signatures = start.duration(to: .now).seconds / 10_000 * 1_000_000
        }
        func at(_ sorted: [Double], _ q: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] }
        print("                                   voice webhook   StartCall alone   target")
        print(String(format: "  p50 ms                           %10.2f   %15.2f", at(hooks, 0.5), at(rpcs, 0.5)))
        print(String(format: "  p99 ms                           %10.2f   %15.2f   < 50 ms (webhook)", at(hooks, 0.99), at(rpcs, 0.99)))
        print(String(format: "  per second, %2d callers           %10.0f   %15.0f", callers, hooksPerSecond, rpcsPerSecond))
        print(String(format: "  signature check (HMAC-SHA1) µs   %10.1f", signatures))
        print(at(hooks, 0.99) < 50 ? "  voice webhook p99 under 50 ms: met" : "  voice webhook p99 under 50 ms: NOT met")
        await telephony.stop()
        await services.stop()
    }
}

/// Call ids, one each.
private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
}

extension Duration {
    var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}
