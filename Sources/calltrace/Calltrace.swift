// calltrace: the operators' command line.
import ArgumentParser
import CallTraceAPI
import CallTraceCLI
import CallTraceKeys
import CallTracePKI
import CallTraceRPC
import ComplianceCommands
import Foundation
import IdentityCommands
import MediaCommands
import TelephonyCommands
import TranscriptCommands

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

/// Every command names itself (`commandName:`). Without a name ArgumentParser derives one from
/// `String(describing: Self.self)`, and for each command type that costs three failed protocol
/// conformance lookups, each a scan of every conformance record in the process: 40% of the
/// CLI's start-up (43 ms → 26.5 ms for `calltrace --help` once all 115 commands named themselves).
///
/// Each service's commands live in a module of their own (IdentityCommands, …) that declares
/// its groups; the root adds the deployment's own (PKI, keys, health, metrics) and composes
/// them. A new service's commands: its module, and one more `+ <Svc>Commands.groups` here.
struct Calltrace: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calltrace", abstract: "Operate a CallTrace deployment.",
        subcommands: [PKI.self, Keys.self, Health.self, Metrics.self]
            + IdentityCommands.groups
            + MediaCommands.groups
            + TranscriptCommands.groups
            + ComplianceCommands.groups
            + TelephonyCommands.groups)
}

/// The four services and their default ports.
let services: [(name: String, port: Int)] = Deployment.serviceNames.map { ($0, DefaultPorts.all[$0]!) }

/// The gateways `pki init` makes certificates for, and that `health --service` takes for
/// gateways when no deployment file says: any other is named in the deployment file (or `--gateway`).
let platformGateways = ["web", "telephony"]

struct PKI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki",
        abstract: "The deployment's certificate authority and certificates.",
        discussion: """
            The CA key never shares a folder with the certificates services read: `init` writes it \
            to --ca-out (mode 0700), the folder `issue`, `revoke` and `crl` take as --ca. Keep that \
            folder off the service hosts once the certificates are issued.
            """,
        subcommands: [Init.self, Issue.self, Revoke.self, RevocationList.self])

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Create a CA, certificates for the four services, the web and telephony gateways and one operator. Keys are written 0600.")
        @Option(name: .customLong("trust-domain"), help: "e.g. calltrace.example") var trustDomain: String
        @Option(help: "Folder for the certificates, their keys and ca.crt: what services and the CLI read (created).") var out: String
        @Option(name: .customLong("ca-out"), help: "Folder for the CA's key and certificate, apart from --out (created 0700; keep it off the service hosts).")
        var caOut: String
        @Option(help: "Name of the web gateway's certificate (users act through it, with their tokens).") var gateway = "web"
        @Option(name: .customLong("telephony-gateway"), help: "Name of the telephony gateway's certificate (it reports calls and uploads recordings as itself; the services' telephony_gateways).")
        var telephonyGateway = "telephony"
        @Option(help: "Name of the operator certificate.") var `operator` = "admin"

        func validate() throws {
            let certificates = URL(fileURLWithPath: out).standardizedFileURL.path
            let authority = URL(fileURLWithPath: caOut).standardizedFileURL.path
            guard authority != certificates, !authority.hasPrefix(certificates + "/") else {
                throw ValidationError("--ca-out must be a folder apart from --out (\(out)), not it or inside it: services read --out, and the CA key must not be there")
            }
        }

        func run() throws {
            let directory = URL(fileURLWithPath: out)
            let authorityDirectory = URL(fileURLWithPath: caOut)
            for folder in [directory, authorityDirectory] {
                guard !FileManager.default.fileExists(atPath: folder.appendingPathComponent("ca.crt").path) else {
                    throw ValidationError("\(folder.path) already holds a CA (ca.crt); refusing to overwrite it")
                }
            }
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: authorityDirectory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            let ca = try CertificateAuthority.create(trustDomain: trustDomain)
            try ca.write(to: authorityDirectory)
            try FileManager.default.copyItem(at: authorityDirectory.appendingPathComponent("ca.crt"), to: directory.appendingPathComponent("ca.crt"))
            var issued: [String] = []
            for service in services {
                try ca.issue(identity: "spiffe://\(trustDomain)/service/\(service.name)").write(to: directory, name: service.name)
                issued.append(service.name)
            }
            let gateways = [gateway, telephonyGateway].reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            for name in gateways {
                try ca.issue(identity: "spiffe://\(trustDomain)/gateway/\(name)", notAfter: .seconds(Issue.defaultDays("gateway") * 86400))
                    .write(to: directory, name: "gateway-\(name)")
            }
            try ca.issue(identity: "spiffe://\(trustDomain)/operator/\(`operator`)", notAfter: .seconds(Issue.defaultDays("operator") * 86400))
                .write(to: directory, name: "operator-\(`operator`)")
            print("CA for spiffe://\(trustDomain): ca.key and ca.crt in \(caOut) (keep that folder off the service hosts)")
            print("in \(out): ca.crt, \((issued + gateways.map { "gateway-\($0)" } + ["operator-\(`operator`)"]).map { "\($0).crt/.key" }.joined(separator: ", "))")
        }
    }

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "issue", abstract: "Issue one more certificate from an existing CA.")
        @Option(help: "The CA's folder (ca.crt, ca.key), as `pki init --ca-out` made it.") var ca: String
        @Option(help: "Folder to write <name>.crt and .key into (created).") var out: String
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
            let authority = try PKI.authority(in: ca)
            let directory = URL(fileURLWithPath: out)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let fileName = kind == "service" ? name : "\(kind)-\(name)"
            let identity = "spiffe://\(authority.trustDomain)/\(kind)/\(name)"
            try authority.issue(identity: identity, notAfter: .seconds(days * 86400)).write(to: directory, name: fileName)
            print("issued \(identity), valid \(days) days: \(out)/\(fileName).crt, .key")
        }
    }

    /// The CA kept in `folder` (`ca.crt`, `ca.key`).
    static func authority(in folder: String) throws -> CertificateAuthority {
        let directory = URL(fileURLWithPath: folder)
        let key = directory.appendingPathComponent("ca.key").path
        guard FileManager.default.fileExists(atPath: key) else {
            throw ValidationError("\(folder) holds no ca.key: name the CA's folder (`pki init --ca-out`), not the certificates' folder")
        }
        return try CertificateAuthority.load(certificatePath: directory.appendingPathComponent("ca.crt").path, keyPath: key)
    }
}

extension PKI {
    /// The CA and the revocation list it signs.
    struct CAOptions: ParsableArguments {
        @Option(help: "The CA's folder (ca.crt, ca.key).") var ca: String
        @Option(help: "The revocation list to update (default crl.pem in the CA's folder); copy it to each host's `crl` path.")
        var crl: String?
        @Option(help: "Days until the list must be re-signed (1-365). Services refuse every peer once it expires.") var days = 30

        var crlPath: String { crl ?? URL(fileURLWithPath: ca).appendingPathComponent("crl.pem").path }

        func authority() throws -> CertificateAuthority { try PKI.authority(in: ca) }

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
            commandName: "revoke",
            abstract: "Revoke certificates: add them to the CA's revocation list (crl.pem) and re-sign it.",
            discussion: """
                Copy the list to each host's `crl` path. Services configured with `crl` refuse the \
                revoked certificates on new connections once they re-read it (SIGHUP, `systemctl reload`); \
                open connections end within their maximum age (1 h).
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
            print("\(ca.crlPath): \(revoked.count) revoked, valid \(ca.days) days; copy it to each host's `crl` path and reload the services (SIGHUP)")
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

/// Which services to reach and which certificate to present.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "Folder with ca.crt and the caller's certificate (default: $CALLTRACE_PKI, or \"pki\" in the CLI config file).") var pki: String?
    @Option(name: .customLong("as"), help: "Certificate base name to present, e.g. operator-admin.") var caller = "operator-admin"
    @Option(help: "Deployment file (services: name → host:port), as the services read it (default: $CALLTRACE_DEPLOYMENT).")
    var deployment: String?
    @Flag(help: "Every service of the deployment file; without one, all four on their default ports on --host.") var all = false
    @Option(help: "One service's (or gateway's: web) name: at --target, or where the deployment file puts it.") var service: String?
    @Option(help: "host:port of that service.") var target: String?
    @Flag(help: "--service names a gateway (its certificate gateway/<name>) that no deployment file lists.") var gateway = false
    @Option(help: "Host of the services for --all without a deployment file.") var host = "127.0.0.1"
    @Option(name: .customLong("timeout-ms"), help: "Per-call timeout.") var timeoutMS = 3000

    var options: CallOptions { CallOptions(timeout: .milliseconds(timeoutMS)) }

    /// The deployment file named by --deployment or $CALLTRACE_DEPLOYMENT, if any.
    func deploymentFile() throws -> Deployment? {
        guard let path = deployment ?? CLIDefaults.value("deployment") else { return nil }
        do {
            return try Deployment.load(path)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// A client per selected service (or gateway), each expecting that one's identity.
    func clients() throws -> [(name: String, address: String, client: RPCClient)] {
        let (credentials, trustDomain) = try callerCredentials(pki: try CLIDefaults.required(pki, "pki", option: "--pki"), caller: caller)
        let deployment = try deploymentFile()
        var checks: [(name: String, kind: String, host: String, port: Int)] = []
        if all {
            if let deployment {
                // Each replica of a service is checked on its own.
                checks = deployment.everyone.flatMap { named in
                    (Deployment.addresses(named.address) ?? []).map { (named.name, named.kind, $0.host, $0.port) }
                }
            } else {
                checks = services.map { ($0.name, "service", host, $0.port) }
            }
        } else if let service {
            guard Deployment.isName(service) else {
                throw ValidationError("--service must be a service's or gateway's name, not \(service.prefix(64))")
            }
            // The deployment file says which it is; else the gateways the platform ships with, or --gateway.
            let listed = deployment?.everyone.first { $0.name == service }
            let kind = listed?.kind ?? (gateway || platformGateways.contains(service) ? "gateway" : "service")
            if let target {
                guard let addresses = Deployment.addresses(target) else { throw ValidationError("--target must be host:port, not \(target)") }
                checks = addresses.map { (service, kind, $0.host, $0.port) }
            } else if deployment != nil {
                guard let addresses = listed.flatMap({ Deployment.addresses($0.address) }) else {
                    throw ValidationError("the deployment file names no address for \(service); give --target host:port")
                }
                checks = addresses.map { (service, kind, $0.host, $0.port) }
            } else {
                throw ValidationError("where is \(service)? give --target host:port, or --deployment FILE (or $CALLTRACE_DEPLOYMENT)")
            }
        } else {
            throw ValidationError("give --all or --service NAME")
        }
        return try checks.map { check in
            (check.name, "\(check.host):\(check.port)", try RPCClient(
                target: .init(host: check.host, port: check.port, identity: "spiffe://\(trustDomain)/\(check.kind)/\(check.name)"),
                configuration: .init(credentials: credentials)))
        }
    }
}

struct Health: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
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
        commandName: "metrics",
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
    static let configuration = CommandConfiguration(commandName: "keys", abstract: "A service's master key.", subcommands: [Init.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Write a new random 32-byte master key to FILE, created 0600 whatever the umask; never overwrites.",
            discussion: "Name it after its service, in that service's own key folder, e.g. /etc/calltrace/keys/identity/identity.master-key (not identity.key: that is the TLS key); written as the user who runs this, so hand it to the service's user (chown).")
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
