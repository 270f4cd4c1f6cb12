// calltrace: the operators' command line.
import ArgumentParser
import CallTraceKeys
import CallTracePKI
import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceTLS
import Foundation

/// Runs the command, then ends the process with `_exit`, not `exit`: the RPC clients' I/O
/// threads may still be closing their TLS connections, and `exit`'s OpenSSL clean-up would free
/// the locks they hold (a crash seen as a segfault in pthread_rwlock_unlock after a command).
@main
enum CalltraceMain {
    static func main() async {
        let code: Int32
        do {
            var command = try Calltrace.parseAsRoot()
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
            code = 0
        } catch {
            let exitCode = Calltrace.exitCode(for: error)
            let message = Calltrace.fullMessage(for: error)
            if !message.isEmpty {
                if exitCode == .success { print(message) } else { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            }
            code = exitCode.rawValue
        }
        fflush(nil)  // every C stream (print writes through stdout's buffer)
        _exit(code)
    }
}

struct Calltrace: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calltrace", abstract: "Operate a CallTrace deployment.",
        subcommands: [PKI.self, Keys.self, Health.self, Metrics.self, OrgsCommand.self, UsersCommand.self, LoginCommand.self, LogoutCommand.self,
                      AccountsCommand.self, GrantsCommand.self, SecurityPolicyCommand.self, Recordings.self, TrackingNumbersCommand.self, CallsCommand.self,
                      TranscriptsCommand.self, ReportCommand.self, SuppressionCommand.self, AuditCommand.self, RetentionCommand.self,
                      DeletionsCommand.self, RequestsCommand.self, BundlesCommand.self, MattersCommand.self, OffboardingCommand.self,
                      VerifyCertificate.self, NoticesCommand.self, RegisterCommand.self, ComplianceCommand.self])
}

/// The four services and their default ports.
let services: [(name: String, port: Int)] = [("identity", 7101), ("media", 7102), ("transcript", 7103), ("compliance", 7104)]

struct PKI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The deployment's certificate authority and certificates.",
        subcommands: [Init.self, Issue.self, Revoke.self, RevocationList.self])

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a CA, certificates for the four services, one gateway and one operator. Keys are written 0600.")
        @Option(name: .customLong("trust-domain"), help: "e.g. calltrace.example") var trustDomain: String
        @Option(help: "Folder to write into (created; must not hold a CA already).") var out: String
        @Option(help: "Name of the gateway certificate.") var gateway = "web"
        @Option(help: "Name of the operator certificate.") var `operator` = "admin"

        func run() throws {
            let directory = URL(fileURLWithPath: out)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            guard !FileManager.default.fileExists(atPath: directory.appendingPathComponent("ca.key").path) else {
                throw ValidationError("\(out) already holds a CA (ca.key); refusing to overwrite it")
            }
            let ca = try CertificateAuthority.create(trustDomain: trustDomain)
            try ca.write(to: directory)
            var issued: [String] = []
            for service in services {
                try ca.issue(identity: "spiffe://\(trustDomain)/service/\(service.name)").write(to: directory, name: service.name)
                issued.append(service.name)
            }
            try ca.issue(identity: "spiffe://\(trustDomain)/gateway/\(gateway)", notAfter: .seconds(Issue.defaultDays("gateway") * 86400))
                .write(to: directory, name: "gateway-\(gateway)")
            try ca.issue(identity: "spiffe://\(trustDomain)/operator/\(`operator`)", notAfter: .seconds(Issue.defaultDays("operator") * 86400))
                .write(to: directory, name: "operator-\(`operator`)")
            print("CA for spiffe://\(trustDomain) in \(out): ca.crt, ca.key (keep it offline)")
            print("issued: \((issued + ["gateway-\(gateway)", "operator-\(`operator`)"]).joined(separator: ", "))")
        }
    }

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue one more certificate from an existing CA.")
        @Option(help: "Folder holding ca.crt and ca.key; the new files are written there.") var pki: String
        @Option(help: "service, gateway or operator.") var kind: String
        @Option(help: "Name, e.g. crm: lowercase letters, digits, '-', '.', '_'.") var name: String
        @Option(help: "Validity in days (default: services 365, gateways 90, operators 30).") var days: Int?

        /// Short lives for the certificates people and integrations hold: a lost one soon expires.
        static func defaultDays(_ kind: String) -> Int {
            switch kind {
            case "operator": return 30
            case "gateway": return 90
            default: return 365
            }
        }

        func run() throws {
            guard ["service", "gateway", "operator"].contains(kind) else { throw ValidationError("kind must be service, gateway or operator") }
            guard PeerIdentity(uri: "spiffe://calltrace.invalid/\(kind)/\(name)") != nil else {
                throw ValidationError("name must be lowercase letters, digits, '-', '.' or '_', not \(name)")
            }
            let days = self.days ?? Self.defaultDays(kind)
            guard (1...3650).contains(days) else { throw ValidationError("days must be from 1 to 3650") }
            let directory = URL(fileURLWithPath: pki)
            let ca = try CertificateAuthority.load(certificatePath: directory.appendingPathComponent("ca.crt").path,
                                                   keyPath: directory.appendingPathComponent("ca.key").path)
            let fileName = kind == "service" ? name : "\(kind)-\(name)"
            let identity = "spiffe://\(ca.trustDomain)/\(kind)/\(name)"
            try ca.issue(identity: identity, notAfter: .seconds(days * 86400)).write(to: directory, name: fileName)
            print("issued \(identity), valid \(days) days: \(fileName).crt, \(fileName).key")
        }
    }
}

extension PKI {
    /// The CA of a PKI folder and the revocation list beside it.
    struct CAOptions: ParsableArguments {
        @Option(help: "Folder holding ca.crt and ca.key; the revocation list is crl.pem there.") var pki: String
        @Option(help: "Days until the list must be re-signed (1-365). Services refuse every peer once it expires.") var days = 30

        var crlPath: String { URL(fileURLWithPath: pki).appendingPathComponent("crl.pem").path }

        func authority() throws -> CertificateAuthority {
            let directory = URL(fileURLWithPath: pki)
            return try CertificateAuthority.load(certificatePath: directory.appendingPathComponent("ca.crt").path,
                                                 keyPath: directory.appendingPathComponent("ca.key").path)
        }

        func validate() throws {
            guard (1...365).contains(days) else { throw ValidationError("days must be from 1 to 365") }
        }

        /// Signs the list with `revoked`, valid `days` from now.
        func write(_ revoked: [RevokedCertificate], by ca: CertificateAuthority) throws {
            try ca.writeRevocationList(revoked, validDays: days, to: crlPath)
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke certificates: add them to the CA's revocation list (crl.pem) and re-sign it.",
            discussion: """
                Services configured with `crl` refuse the revoked certificates on new connections once \
                they re-read it (SIGHUP, `systemctl reload`); open connections end within their maximum age (1 h).
                """)
        @OptionGroup var ca: CAOptions
        @Argument(help: "Certificate files (.crt) to revoke.") var certificates: [String]

        func run() throws {
            guard !certificates.isEmpty else { throw ValidationError("name at least one certificate file") }
            let authority = try ca.authority()
            var revoked = try authority.revokedCertificates(inListAt: ca.crlPath).revoked
            for path in certificates {
                let serial = try authority.serialNumber(ofCertificateAt: path)
                if revoked.contains(where: { $0.serial == serial }) {
                    print("\(path): serial \(serial) was already revoked")
                } else {
                    revoked.append(RevokedCertificate(serial: serial, revokedAt: Date()))
                    print("\(path): serial \(serial) revoked")
                }
            }
            try ca.write(revoked, by: authority)
            print("\(ca.crlPath): \(revoked.count) revoked, valid \(ca.days) days; reload the services (SIGHUP) to apply it")
        }
    }

    struct RevocationList: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "crl",
            abstract: "Re-sign the revocation list with a fresh expiry (creating an empty one if none) and list what it revokes.")
        @OptionGroup var ca: CAOptions
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let authority = try ca.authority()
            let revoked = try authority.revokedCertificates(inListAt: ca.crlPath).revoked
            try ca.write(revoked, by: authority)
            let nextUpdate = try authority.revokedCertificates(inListAt: ca.crlPath).nextUpdate
            if json {
                struct Listing: Encodable { let path: String; let nextUpdate: Date?; let revoked: [RevokedCertificate] }
                let encoder = JSONEncoder()
                encoder.dateEncodingStrategy = .iso8601
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(Listing(path: ca.crlPath, nextUpdate: nextUpdate, revoked: revoked)), as: UTF8.self))
            } else {
                print("\(ca.crlPath): valid until \(nextUpdate.map { ISO8601DateFormatter().string(from: $0) } ?? "?")")
                for entry in revoked { print("  serial \(entry.serial)  revoked \(ISO8601DateFormatter().string(from: entry.revokedAt))") }
            }
        }
    }
}

/// The certificate `<caller>.crt`/`.key` and `ca.crt` of a PKI folder (as `pki init` writes
/// them), and the trust domain the certificate names.
func callerCredentials(pki: String, caller: String) throws -> (TLSCredentials, trustDomain: String) {
    let directory = URL(fileURLWithPath: pki)
    let credentials = TLSCredentials(certificateChainPath: directory.appendingPathComponent("\(caller).crt").path,
                                     privateKeyPath: directory.appendingPathComponent("\(caller).key").path,
                                     trustRootsPath: directory.appendingPathComponent("ca.crt").path)
    let own = try TLSContext(role: .client, credentials: credentials).identity
    guard let trustDomain = PeerIdentity(uri: own)?.trustDomain else { throw ValidationError("\(caller).crt has no SPIFFE id") }
    return (credentials, trustDomain)
}

/// Which services to reach and which certificate to present.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "Folder with ca.crt and the caller's certificate.") var pki: String
    @Option(name: .customLong("as"), help: "Certificate base name to present, e.g. operator-admin.") var caller = "operator-admin"
    @Flag(help: "All four services on their default ports (or --host).") var all = false
    @Option(help: "One service's name (with --target, or its default port).") var service: String?
    @Option(help: "host:port of that service.") var target: String?
    @Option(help: "Host of the services for --all.") var host = "127.0.0.1"
    @Option(name: .customLong("timeout-ms"), help: "Per-call timeout.") var timeoutMS = 3000

    var options: CallOptions { CallOptions(timeout: .milliseconds(timeoutMS)) }

    /// A client per selected service, each expecting that service's identity.
    func clients() throws -> [(name: String, address: String, client: RPCClient)] {
        let (credentials, trustDomain) = try callerCredentials(pki: pki, caller: caller)
        var checks: [(name: String, host: String, port: Int)] = []
        if all {
            checks = services.map { ($0.name, host, $0.port) }
        } else if let service {
            if let target, let colon = target.lastIndex(of: ":"), let port = Int(target[target.index(after: colon)...]) {
                checks = [(service, String(target[..<colon]), port)]
            } else if let known = services.first(where: { $0.name == service }) {
                checks = [(service, host, known.port)]
            } else {
                throw ValidationError("give --target host:port for \(service)")
            }
        } else {
            throw ValidationError("give --all or --service NAME")
        }
        return try checks.map { check in
            (check.name, "\(check.host):\(check.port)", try RPCClient(
                target: .init(host: check.host, port: check.port, identity: "spiffe://\(trustDomain)/service/\(check.name)"),
                configuration: .init(credentials: credentials)))
        }
    }
}

struct Health: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check services over mutual TLS: SERVING or NOT_SERVING, version, uptime. Exit 1 unless all serve.")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        var allServing = true
        for (name, address, client) in try connection.clients() {
            defer { client.close() }
            let line = "\(name.padding(toLength: 11, withPad: " ", startingAt: 0)) \(address)"
            do {
                let health = try await Calltrace_Ops_V1_HealthServiceClient(client).check(.init(), options: connection.options)
                let info = try await Calltrace_Ops_V1_ServerInfoServiceClient(client).getServerInfo(.init(), options: connection.options)
                let status = health.status == .serving ? "SERVING" : "NOT_SERVING"
                allServing = allServing && health.status == .serving
                print("\(line)  \(status)  version \(info.version)  schema \(info.schemaVersion)  uptime \(info.uptimeSeconds)s")
            } catch let error as RPCError where !error.isTransient {
                // Reached, but not the service asked for (or its certificate was refused): said once, as it is.
                allServing = false
                print("\(line)  REFUSED  \(error.message)")
            } catch {
                allServing = false
                print("\(line)  UNREACHABLE  \(error)")
            }
        }
        if !allServing { throw ExitCode(1) }
    }
}

struct Metrics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Per-method call metrics of services, in Prometheus text format.")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        var families: [String: [String]] = ["calls": [], "buckets": []]
        var gauges: [String: [String]] = [:]
        for (name, _, client) in try connection.clients() {
            defer { client.close() }
            let metrics = try await Calltrace_Ops_V1_MetricsServiceClient(client).getMetrics(.init(), options: connection.options)
            for method in metrics.methods {
                let labels = "service=\"\(name)\",method=\"\(method.method)\""
                for status in method.statuses {
                    families["calls"]!.append("ctrpc_server_calls_total{\(labels),code=\"\(status.code)\"} \(status.count)")
                }
                let bounds = metrics.bucketUpperBoundsSeconds.map { String($0) } + ["+Inf"]
                for (bound, count) in zip(bounds, method.cumulativeBucketCounts) {
                    families["buckets"]!.append("ctrpc_server_call_duration_seconds_bucket{\(labels),le=\"\(bound)\"} \(count)")
                }
                families["buckets"]!.append("ctrpc_server_call_duration_seconds_sum{\(labels)} \(method.durationSumSeconds)")
                families["buckets"]!.append("ctrpc_server_call_duration_seconds_count{\(labels)} \(method.calls)")
            }
            for gauge in metrics.gauges {
                gauges["calltrace_\(gauge.name)", default: []].append("calltrace_\(gauge.name){service=\"\(name)\"} \(gauge.value)")
            }
        }
        print("# HELP ctrpc_server_calls_total Calls finished, by method and status code.")
        print("# TYPE ctrpc_server_calls_total counter")
        families["calls"]!.forEach { print($0) }
        print("# HELP ctrpc_server_call_duration_seconds Call latency.")
        print("# TYPE ctrpc_server_call_duration_seconds histogram")
        families["buckets"]!.forEach { print($0) }
        for (family, lines) in gauges.sorted(by: { $0.key < $1.key }) {
            print("# TYPE \(family) gauge")
            lines.forEach { print($0) }
        }
    }
}

struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A service's master key.", subcommands: [Init.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a new random 32-byte master key to FILE, created 0600 whatever the umask; never overwrites.",
            discussion: "Name it after its service, e.g. /etc/calltrace/keys/identity.master-key (not identity.key: that is the TLS key).")
        @Argument(help: "The key file to create.") var file: String

        func run() throws {
            do {
                try MasterKey.generate(path: file)
            } catch {
                FileHandle.standardError.write(Data("calltrace: \(error)\n".utf8))
                throw ExitCode(1)
            }
            print("wrote a new master key to \(file) (0600); back it up apart from the data, and never beside the key store")
        }
    }
}
