import CallTraceServiceHost
import CallTraceTestSupport
import FakeTwilio
import Foundation
import TelephonyGateway
import Twilio

/// A fake Twilio over real TLS and the telephony gateway beside a deployment's services:
/// the secrets in 0600 files, the gateway's settings pointing at the fake, and a `CallDriver`
/// that plays calls through the gateway's webhooks, signed as Twilio signs them. In process
/// (`start(on:)`), or only the material for the gateway as a process of its own (`settings`).
public final class TelephonyStack: @unchecked Sendable {
    public static let publicURL = "https://hooks.calltrace.test"

    public let fake: FakeTwilio
    /// The gateway's settings (file keys): public URL, account, secret files, the fake's API and CA.
    public let settings: [String: String]
    private let secrets: URL

    public init(pki: TemporaryPKI) throws {
        let secret = Self.hex(32)
        let account = FakeTwilio.Account(sid: FakeTwilio.newSID("AC"), authToken: Self.hex(32),
                                         apiKey: TwilioAPIKey(sid: FakeTwilio.newSID("SK"), secret: secret))
        fake = try FakeTwilio(credentials: try pki.credentials(for: TemporaryPKI.identity("service", "twilio")), account: account)
        secrets = FileManager.default.temporaryDirectory.appendingPathComponent("twilio-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: secrets, withIntermediateDirectories: true)
        settings = ["public_url": Self.publicURL, "twilio_account_sid": account.sid,
                    "twilio_api_key_file": try Self.secretFile(secrets, "api-key", "\(account.apiKey.sid):\(secret)"),
                    "twilio_auth_token_file": try Self.secretFile(secrets, "auth-token", account.authToken),
                    "twilio_api_url": fake.baseURL, "twilio_ca_file": pki.caPath]
    }

    /// The gateway in this process, its peers `services`' own, its webhooks on a port of its own;
    /// and a driver for them.
    public func start(on services: any ServiceDeployment) async throws -> (gateway: InProcessService, driver: CallDriver, listener: Task<Void, any Error>) {
        let settings = self.settings
        let gateway = try await InProcessService.start(TelephonyService.self, peers: [
            "transcript": services.calls.transcript.instance.port, "media": services.mediaPort,
            "identity": services.calls.identity.instance.port, "compliance": services.calls.compliance.instance.port,
        ], pki: services.pki, transport: services.transport) {
            try? $0.set("http_listen", "127.0.0.1:0")
            for (key, value) in settings { try? $0.set(key, value) }
        }
        let companions = gateway.instance.companions
        let listener = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for companion in companions { group.addTask { try await companion.run() } }
                try await group.waitForAll()
            }
        }
        guard let port = await (gateway.instance.service as! TelephonyService).httpPort() else {
            throw ConfigurationError("the telephony gateway's webhooks did not listen")
        }
        return (gateway, CallDriver(fake: fake, gatewayURL: "http://127.0.0.1:\(port)", publicURL: Self.publicURL), listener)
    }

    public func stop() {
        fake.stop()
        try? FileManager.default.removeItem(at: secrets)
    }

    public static func hex(_ count: Int) -> String { (0..<count).map { _ in String("0123456789abcdef".randomElement()!) }.joined() }

    private static func secretFile(_ folder: URL, _ name: String, _ text: String) throws -> String {
        let path = folder.appendingPathComponent(name).path
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ConfigurationError("cannot write \(path)")
        }
        return path
    }
}
