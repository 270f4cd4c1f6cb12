import CallTraceKeys
public import CallTraceRPC
public import CallTraceTLS
import CallTraceProto
import Foundation

/// Files for one service process: PKI, master key, database path, a free port.
public final class ServiceSetup: @unchecked Sendable {
    public let pki: TemporaryPKI
    public let service: String
    public let credentials: TLSCredentials
    public let masterKey: String
    public let database: String
    /// Where the service keeps its key store by default: beside the master key, in a folder of
    /// its own, apart from the database's.
    public var keyStore: String { (masterKey as NSString).deletingLastPathComponent + "/\(service).keys.sqlite" }
    public let port: Int
    /// Identity's mail outbox (`--mail-outbox`): invitation and reset tokens arrive here as files.
    public let mailbox: String

    /// - Parameters:
    ///   - pki: the deployment's PKI, shared by services that talk to each other (default: a
    ///     new one of its own).
    ///   - kind: what its certificate names it: `service`, or `gateway` for a gateway the host runs.
    /// `service`, or `gateway` for a gateway the host runs (web, telephony).
    public let kind: String

    public init(service: String = "identity", kind: String = "service", pki shared: TemporaryPKI? = nil) throws {
        pki = try shared ?? TemporaryPKI()
        self.service = service
        self.kind = kind
        credentials = try pki.credentials(for: TemporaryPKI.identity(kind, service))
        // As in a deployment: secrets in one folder, data in another.
        let secrets = pki.directory.appendingPathComponent("keys"), data = pki.directory.appendingPathComponent("data")
        for folder in [secrets, data] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        masterKey = secrets.appendingPathComponent("\(service).master-key").path
        try MasterKey.generate(path: masterKey)
        database = data.appendingPathComponent("\(service).sqlite").path
        port = try freePort()
        mailbox = pki.directory.appendingPathComponent("mail").path
        try FileManager.default.createDirectory(atPath: mailbox, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    public var flags: [String] {
        ["--certificate", credentials.certificateChainPath, "--private-key", credentials.privateKeyPath,
         "--ca", credentials.trustRootsPath,
         "--master-key", masterKey, "--database", database, "--listen", "127.0.0.1:\(port)"]
            + (service == "identity" ? ["--mail-outbox", mailbox] : [])
    }

    /// The newest token identity delivered to `email` (`invitation` or `password_reset`), if any.
    public func deliveredToken(to email: String, kind: String = "invitation") throws -> String? {
        let names = try FileManager.default.contentsOfDirectory(atPath: mailbox).sorted()
        var newest: String?
        for name in names {
            let data = try Data(contentsOf: URL(fileURLWithPath: mailbox).appendingPathComponent(name))
            guard let message = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                  message["email"] as? String == email, message["kind"] as? String == kind else { continue }
            newest = message["token"] as? String
        }
        return newest
    }

    /// An e-mail alert identity delivered to the development mailbox.
    public struct DeliveredAlert: Sendable, Equatable {
        public let alert: String
        public let email: String
        public let subject: String
        public let body: String
    }

    /// Every alert identity delivered (to `email` only, when given), oldest first.
    public func deliveredAlerts(to email: String? = nil) throws -> [DeliveredAlert] {
        try FileManager.default.contentsOfDirectory(atPath: mailbox).sorted().compactMap { name in
            let data = try Data(contentsOf: URL(fileURLWithPath: mailbox).appendingPathComponent(name))
            guard let message = try JSONSerialization.jsonObject(with: data) as? [String: Any], message["kind"] as? String == "alert",
                  let to = message["email"] as? String, email == nil || to == email else { return nil }
            return DeliveredAlert(alert: message["alert"] as? String ?? "", email: to, subject: message["subject"] as? String ?? "",
                                  body: message["body"] as? String ?? "")
        }
    }

    /// Starts the service's process. Peers it requires but the test does not name point at a
    /// port where nothing listens (audit events then wait in its outbox).
    public func start(_ flags: [String]? = nil, environment: [String: String] = [:], descriptorLimit: Int? = nil) throws -> RunningProcess {
        var environment = environment
        for peer in ["identity", "compliance", "media", "transcript"] where peer != service {
            let variable = "CALLTRACE_PEER_\(peer.uppercased())"
            if environment[variable] == nil { environment[variable] = "127.0.0.1:\(Self.nothingListens)" }
        }
        return try RunningProcess("calltrace-\(service)", flags ?? self.flags, environment: environment, descriptorLimit: descriptorLimit)
    }

    /// A port nothing listens on (reserved for TCP port multiplexing, unused).
    public static let nothingListens = 1

    public func client(identity: String = TemporaryPKI.identity("operator", "ops")) throws -> RPCClient {
        try RPCClient(target: .init(host: "127.0.0.1", port: port, identity: TemporaryPKI.identity(kind, service)),
                      configuration: .init(credentials: try pki.credentials(for: identity)))
    }

    /// Waits until the service answers SERVING.
    public func waitUntilServing(_ client: RPCClient) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let health = try? await client.unary(Calltrace_Ops_V1_HealthService.check, .init(), options: .init(timeout: .seconds(5))),
               health.status == .serving { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw RPCError(.unavailable, "service did not become SERVING")
    }
}


extension CallOptions {
    /// A credential call as the web backend makes it, naming the person's address (a
    /// documentation address, RFC 5737).
    public static var endUser: CallOptions {
        var metadata = Metadata()
        try! metadata.add(ServerContext.clientAddressKey, "192.0.2.10")
        return CallOptions(metadata: metadata)
    }
}
