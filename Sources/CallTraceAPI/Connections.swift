public import CallTraceRPC
import CallTraceTLS
public import Foundation

/// What a Swift gateway or backend needs to reach a deployment: its own certificate, key and
/// the deployment's CA, the trust domain, and where each service listens — from a small JSON
/// file, from `CALLTRACE_*` environment variables, or both (the environment wins). Each service
/// gets one `RPCClient` (one multiplexed connection, made on first use, with the client's retry
/// rules: idempotent calls retried on UNAVAILABLE with backoff within their deadline), or for a
/// service given several addresses (`"media": "10.0.0.6:7102,10.0.0.9:7102"`) a `ReplicaSet` of
/// them, spreading calls and passing over a replica that is down; wrap it in the typed clients,
/// e.g. `Calltrace_Transcript_V1_CallServiceClient(connections.transcript)`.
///
///     {
///       "certificate": "/etc/calltrace/pki/gateway-web.crt",
///       "private_key": "/etc/calltrace/pki/gateway-web.key",
///       "ca": "/etc/calltrace/pki/ca.crt",
///       "trust_domain": "calltrace.example",
///       "services": { "identity": "10.0.0.5:7101", "media": "10.0.0.5:7102",
///                     "transcript": "10.0.0.5:7103", "compliance": "10.0.0.5:7104" }
///     }
///
/// Environment: `CALLTRACE_CLIENT_CONFIG` (the file), `CALLTRACE_CLIENT_CERTIFICATE`,
/// `CALLTRACE_CLIENT_PRIVATE_KEY`, `CALLTRACE_CLIENT_CA`, `CALLTRACE_TRUST_DOMAIN`,
/// `CALLTRACE_IDENTITY_ADDRESS`, `CALLTRACE_MEDIA_ADDRESS`, `CALLTRACE_TRANSCRIPT_ADDRESS`,
/// `CALLTRACE_COMPLIANCE_ADDRESS`. Services not named default to 127.0.0.1 and their standard
/// ports (7101–7104).
public final class CallTraceConnections: Sendable {
    public struct Settings: Codable, Sendable, Equatable {
        public var certificate: String
        public var privateKey: String
        public var ca: String
        public var trustDomain: String
        /// Service name → host:port.
        public var services: [String: String]

        enum CodingKeys: String, CodingKey {
            case certificate, ca, services
            case privateKey = "private_key", trustDomain = "trust_domain"
        }

        public init(certificate: String, privateKey: String, ca: String, trustDomain: String, services: [String: String] = [:]) {
            (self.certificate, self.privateKey, self.ca, self.trustDomain, self.services) = (certificate, privateKey, ca, trustDomain, services)
        }
    }

    public struct SettingsError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public static let services = DefaultPorts.all

    /// Reads `file` (or `CALLTRACE_CLIENT_CONFIG`), then the environment over it; the error names what is missing or malformed.
    public static func settings(file: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Settings {
        var values: [String: String] = [:]
        var services: [String: String] = [:]
        if let path = file ?? environment["CALLTRACE_CLIENT_CONFIG"] {
            guard let data = FileManager.default.contents(atPath: path) else { throw SettingsError(description: "client config \(path) cannot be read") }
            do {
                let read = try JSONDecoder().decode(PartialSettings.self, from: data)
                values = ["certificate": read.certificate, "private_key": read.private_key, "ca": read.ca, "trust_domain": read.trust_domain]
                    .compactMapValues { $0 }
                services = read.services ?? [:]
            } catch {
                throw SettingsError(description: "client config \(path) is not valid JSON of certificate, private_key, ca, trust_domain, services: \(error)")
            }
        }
        for (key, variable) in [("certificate", "CALLTRACE_CLIENT_CERTIFICATE"), ("private_key", "CALLTRACE_CLIENT_PRIVATE_KEY"),
                                ("ca", "CALLTRACE_CLIENT_CA"), ("trust_domain", "CALLTRACE_TRUST_DOMAIN")] {
            if let value = environment[variable] { values[key] = value }
        }
        for name in Self.services.keys { if let address = environment["CALLTRACE_\(name.uppercased())_ADDRESS"] { services[name] = address } }
        var missing: [String] = []
        for key in ["certificate", "private_key", "ca", "trust_domain"] where (values[key] ?? "").isEmpty { missing.append(key) }
        guard missing.isEmpty else { throw SettingsError(description: "client settings lack \(missing.joined(separator: ", "))") }
        for (name, address) in services {
            guard Self.services[name] != nil else { throw SettingsError(description: "unknown service \(name) (identity, media, transcript, compliance)") }
            guard Deployment.addresses(address) != nil else {
                throw SettingsError(description: "the address of \(name) must be host:port, not \(address)")
            }
        }
        return Settings(certificate: values["certificate"]!, privateKey: values["private_key"]!, ca: values["ca"]!, trustDomain: values["trust_domain"]!,
                        services: services)
    }

    private struct PartialSettings: Decodable {
        // swiftlint:disable identifier_name
        var certificate: String?, private_key: String?, ca: String?, trust_domain: String?
        var services: [String: String]?
    }

    /// Each an `RPCClient`, or a `ReplicaSet` for a service given several addresses.
    public let identity: any RPCChannel
    public let media: any RPCChannel
    public let transcript: any RPCChannel
    public let compliance: any RPCChannel

    /// One client per service, each expecting `spiffe://<trust domain>/service/<name>`.
    public init(_ settings: Settings) throws {
        let credentials = TLSCredentials(certificateChainPath: settings.certificate, privateKeyPath: settings.privateKey, trustRootsPath: settings.ca)
        func client(_ name: String) throws -> any RPCChannel {
            let addresses = settings.services[name].flatMap(Deployment.addresses) ?? [("127.0.0.1", Self.services[name]!)]
            let clients = try addresses.map { address in
                try RPCClient(target: .init(host: address.host, port: address.port, identity: "spiffe://\(settings.trustDomain)/service/\(name)"),
                              configuration: .init(credentials: credentials))
            }
            return clients.count == 1 ? clients[0] : ReplicaSet(clients)
        }
        identity = try client("identity")
        media = try client("media")
        transcript = try client("transcript")
        compliance = try client("compliance")
    }

    /// Settings from the file and environment, then the clients.
    public convenience init(file: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        try self.init(try Self.settings(file: file, environment: environment))
    }

    public func close() {
        for client in [identity, media, transcript, compliance] { client.close() }
    }
}
