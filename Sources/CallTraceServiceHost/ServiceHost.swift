import ArgumentParser
public import CallTraceKeys
public import CallTraceRPC
public import CallTraceStorage
import CallTraceTLS
import Foundation
public import Logging

/// What a CallTrace service tells the host: its name, its schema, its RPC handlers.
public protocol CallTraceService: Sendable {
    /// The short name, e.g. `identity`; also the last part of its SPIFFE id.
    static var name: String { get }
    /// The port it listens on by default.
    static var defaultPort: Int { get }
    /// Its database schema, in order.
    static var migrations: [Migration] { get }
    /// The other services it cannot work without, with what it needs each for: it refuses to
    /// start when one is not configured, instead of failing every call later.
    static var requiredPeers: [String: String] { get }
    /// Builds the service over its opened database and keys.
    init(context: ServiceContext) throws
    /// Its RPC services (health and info come with the host).
    var rpcServices: [any RPCService] { get }
}

/// What the host gives a service.
public struct ServiceContext: Sendable {
    public let database: Database
    public let keys: KeyRing
    /// Record audit events here, in the same transaction as the action.
    public let outbox: AuditOutbox
    /// Durable work: enqueue in the same transaction as the action that needs it; register a
    /// handler per kind, and schedules, while the service is built.
    public let jobs: JobQueue
    public let configuration: ServiceConfiguration
    public let logger: Logger
    /// Clients of the configured peers, by service name, presenting this service's certificate.
    public let peers: [String: RPCClient]
    /// Asks identity about users' tokens (with a short allow cache); nil without an identity peer.
    public let authorizer: IdentityAuthorizer?
    /// The time the service's rules read (the system clock; a `TestClock` in tests).
    public let clock: any WallClock
    /// Threads for CPU-heavy or blocking work (scrypt, sealing, outgoing HTTP), off the I/O
    /// threads: `BlockingPool.shared`, or a test's own pool that it can hold.
    public let blocking: BlockingPool
}

/// The software version every service reports.
public let callTraceVersion = "0.1.0"

/// The host process of one service: `serve` (default), `backup`, `rotate-master-key`.
public enum ServiceHost {
    /// Runs the command line of `Service`. Never returns normally.
    public static func main<Service: CallTraceService>(_ service: Service.Type) async {
        await ServiceCommand<Service>.main()
    }
}

/// Exit codes: 0 after a clean stop, 1 when start-up is refused (one line on stderr says why).
struct ServiceCommand<Service: CallTraceService>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "calltrace-\(Service.name)",
            abstract: "The CallTrace \(Service.name) service.",
            discussion: "Settings come from --config FILE (JSON), then CALLTRACE_* environment variables, then flags. See services/\(Service.name)/README.md.",
            version: callTraceVersion,
            subcommands: [Serve<Service>.self, Backup<Service>.self, RotateMasterKey<Service>.self, ListJobs<Service>.self],
            defaultSubcommand: Serve<Service>.self)
    }
}

/// Flags shared by every subcommand.
struct SettingsOptions: ParsableArguments {
    @Option(help: "JSON configuration file.") var config: String?
    @Option(help: "host:port to listen on.") var listen: String?
    @Option(help: "PEM certificate chain.") var certificate: String?
    @Option(name: .customLong("private-key"), help: "PEM private key.") var privateKey: String?
    @Option(help: "PEM certificate of the deployment CA.") var ca: String?
    @Option(help: "PEM revocation list signed by the CA (re-read on SIGHUP).") var crl: String?
    @Option(help: "SQLite database file.") var database: String?
    @Option(name: .customLong("key-store"), help: "Key store file (default: beside the master key, named after the database).") var keyStore: String?
    @Option(name: .customLong("master-key"), help: "32-byte master key file (mode 0600).") var masterKey: String?
    @Option(name: .customLong("log-format"), help: "text or json.") var logFormat: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error.") var logLevel: String?
    @Option(name: .customLong("credential-gateways"), help: "Gateways allowed credential calls and to name client addresses (comma-separated; default web).")
    var credentialGateways: String?
    @Option(name: .customLong("telephony-gateways"), help: "Media, transcript: gateways that report calls as themselves (comma-separated; default telephony).")
    var telephonyGateways: String?
    @Option(name: .customLong("mail-outbox"), help: "Identity: folder where invitation and reset tokens are delivered as files.")
    var mailOutbox: String?
    @Option(name: .customLong("smtp-url"), help: "Identity: e-mail tokens through smtps://host:465 or smtp://host:587 (STARTTLS).")
    var smtpURL: String?
    @Option(name: .customLong("smtp-from"), help: "Identity: sender address of those e-mails.") var smtpFrom: String?
    @Option(name: .customLong("smtp-ca"), help: "Identity: PEM CA certificates for the mail server.") var smtpCA: String?
    @Option(name: .customLong("smtp-credentials"), help: "Identity: file (0600) with the mail login: user, then password, one per line.")
    var smtpCredentials: String?
    @Option(name: .customLong("mail-link-base"), help: "Identity: https:// base of the links in e-mails.") var mailLinkBase: String?
    @Option(name: .customLong("blob-store"), help: "Media: folder of the sealed recording files (default recordings/ beside the database).")
    var blobStore: String?
    @Option(name: .customLong("deepgram-url"), help: "Transcript: Deepgram's API (default https://api.deepgram.com).") var deepgramURL: String?
    @Option(name: .customLong("deepgram-key-file"), help: "Transcript: file (0600) holding the Deepgram API key.") var deepgramKeyFile: String?
    @Option(name: .customLong("anthropic-url"), help: "Transcript: Anthropic's API (default https://api.anthropic.com).") var anthropicURL: String?
    @Option(name: .customLong("anthropic-key-file"), help: "Transcript: file (0600) holding the Anthropic API key.") var anthropicKeyFile: String?
    @Option(name: .customLong("anthropic-model"), help: "Transcript: the Anthropic model (default claude-sonnet-4-5).") var anthropicModel: String?
    @Option(name: .customLong("outbound-ca"), help: "Transcript: PEM CA certificates the providers' HTTPS must chain to (default: the system's).")
    var outboundCA: String?
    @Option(name: .customLong("subprocessors-file"), help: "Compliance: the sub-processor register, JSON (default: the list shipped with the trust page).")
    var subprocessorsFile: String?
    @Option(name: .customLong("bank-holidays-file"), help: "Compliance: GOV.UK's bank-holidays.json, newer than the one shipped.")
    var bankHolidaysFile: String?
    @Option(help: "Deployment file (services: name → host:port) from which the other services become peers.")
    var deployment: String?

    func resolve(service: String, port: Int) throws -> ServiceConfiguration {
        var configuration = ServiceConfiguration.defaults(service: service, port: port)
        if let config { try configuration.apply(file: config) }
        try configuration.apply(environment: ProcessInfo.processInfo.environment)
        let flags: [(String, String?)] = [("listen", listen), ("certificate", certificate), ("private_key", privateKey),
                                          ("ca", ca), ("crl", crl), ("database", database), ("key_store", keyStore), ("master_key", masterKey),
                                          ("log_format", logFormat), ("log_level", logLevel),
                                          ("credential_gateways", credentialGateways), ("telephony_gateways", telephonyGateways), ("mail_outbox", mailOutbox),
                                          ("smtp_url", smtpURL), ("smtp_from", smtpFrom), ("smtp_ca", smtpCA),
                                          ("smtp_credentials", smtpCredentials), ("mail_link_base", mailLinkBase),
                                          ("blob_store", blobStore), ("deepgram_url", deepgramURL), ("deepgram_key_file", deepgramKeyFile),
                                          ("anthropic_url", anthropicURL), ("anthropic_key_file", anthropicKeyFile),
                                          ("anthropic_model", anthropicModel), ("outbound_ca", outboundCA),
                                          ("subprocessors_file", subprocessorsFile), ("bank_holidays_file", bankHolidaysFile),
                                          ("deployment", deployment)]
        for case let (key, value?) in flags { try configuration.set(key, value) }
        try configuration.applyDeployment(service: service)
        return configuration
    }
}

/// Prints one line naming the problem and exits 1.
func refuse(_ service: String, _ problem: Any) -> Never {
    FileHandle.standardError.write(Data("calltrace-\(service): cannot start: \(problem)\n".utf8))
    exit(1)
}

func makeLogger(service: String, configuration: ServiceConfiguration) -> Logger {
    let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
    var logger = Logger(label: "calltrace.\(service)") { label in
        configuration.logFormat == "json" ? JSONLogHandler(service: service) as any LogHandler : TextLogHandler(service: service)
    }
    logger.logLevel = level
    return logger
}

struct Serve<Service: CallTraceService>: AsyncParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(commandName: "serve", abstract: "Run the service (default).") }
    @OptionGroup var settings: SettingsOptions

    func run() async throws {
        let name = Service.name
        let configuration: ServiceConfiguration
        do {
            configuration = try settings.resolve(service: name, port: Service.defaultPort)
        } catch {
            refuse(name, error)
        }
        let logger = makeLogger(service: name, configuration: configuration)
        // Listening before start-up: a SIGTERM that comes as soon as "serving" is logged (a
        // supervisor's stop right after its start) stops the service, never goes unheard.
        let stop = StopSignal.listen()
        let instance: ServiceInstance
        do {
            instance = try await ServiceInstance.start(Service.self, configuration: configuration, logger: logger)
        } catch {
            refuse(name, error)
        }
        let reload = ReloadSignal.handle {
            // A renewed certificate or a new revocation list, for the connections accepted from now on.
            do {
                try instance.server.reloadCredentials()
                logger.notice("TLS material reloaded", metadata: ["revocation_list": "\(configuration.crl ?? "none")"])
            } catch {
                logger.error("TLS material not reloaded; serving with the previous", metadata: ["error": "\(error)"])
            }
        }
        let signal = await stop.first
        reload.cancel()
        logger.notice("stopping", metadata: ["signal": "\(signal)", "drain_seconds": "\(configuration.drainSeconds)"])
        await instance.stop(gracePeriod: .seconds(configuration.drainSeconds))
        logger.notice("stopped")
    }
}

/// One running service: its server, database, key store and audit forwarding. A process runs
/// one (`calltrace-<name> serve`); tests start any number in process, on port 0, with a
/// `TestClock`, and reach them over real mutual TLS.
public final class ServiceInstance: Sendable {
    public let server: RPCServer
    public let database: Database
    public let keyStore: Database
    public let outbox: AuditOutbox
    public let jobs: JobQueue
    /// The port it listens on.
    public var port: Int { server.port }

    private init(server: RPCServer, database: Database, keyStore: Database, outbox: AuditOutbox, jobs: JobQueue) {
        self.server = server
        self.database = database
        self.keyStore = keyStore
        self.outbox = outbox
        self.jobs = jobs
    }

    /// Checks the configuration and the files it names, binds the port (answering NOT_SERVING
    /// while the schema migrates), builds the service and starts serving.
    ///
    /// - Throws: an error naming the one problem found first: a missing or malformed setting,
    ///   the master key, the TLS material, the database (in use, newer schema), the key store
    ///   (not opened by the master key; missing, empty or another one beside the database's
    ///   data), the port.
    public static func start<Service: CallTraceService>(_ service: Service.Type, configuration: ServiceConfiguration,
                                                        logger: Logger, clock: any WallClock = SystemClock(),
                                                        blocking: BlockingPool = .shared) async throws -> ServiceInstance {
        let name = Service.name
        let address = try configuration.validated()
        for (peer, purpose) in Service.requiredPeers.sorted(by: { $0.key < $1.key }) where configuration.peers[peer] == nil {
            throw ConfigurationError("peer \(peer) is not configured; \(name) needs it \(purpose) (the deployment file's services.\(peer), config key peers.\(peer), or CALLTRACE_PEER_\(peer.uppercased())=host:port)")
        }
        let credentials = configuration.credentials!
        // Each check names its problem in one line: key file, TLS material, database, port.
        let masterKey = try MasterKey.load(path: configuration.masterKey!)
        _ = try TLSContext.shared(role: .server, credentials: credentials)
        let database = try Database(path: configuration.database)
        let keyStore: Database
        let keys: KeyRing
        do {
            try database.checkSchema(knownUpTo: Service.migrations.map(\.version).max() ?? 0)
            // The master key must open the key store, and the key store must be the database's
            // own: never a new, empty one beside sealed data (`KeyStoreBinding`).
            (keyStore, keys) = try KeyStoreBinding.openKeyStore(configuration: configuration, masterKey: masterKey, for: database, clock: clock)
        } catch {
            database.close()
            throw error
        }
        let jobs = JobQueue(database: database, clock: clock)
        let outbox = AuditOutbox(database: database, service: name, jobs: jobs)
        let server: RPCServer
        let peers: [String: RPCClient]
        do {
            let own = try TLSContext.shared(role: .client, credentials: credentials).identity
            // The certificate must name this very service: media never starts as identity, nor a gateway.
            guard let identity = PeerIdentity(uri: own), identity.kind == .service, identity.name == name else {
                throw ConfigurationError("certificate \(credentials.certificateChainPath) is for \(own), not spiffe://<trust-domain>/service/\(name)")
            }
            let trustDomain = identity.trustDomain
            peers = try Dictionary(uniqueKeysWithValues: configuration.peers.map { peer, address in
                let parts = address.split(separator: ":")
                return (peer, try RPCClient(
                    target: .init(host: String(parts[0]), port: Int(parts[1]) ?? 0, identity: "spiffe://\(trustDomain)/service/\(peer)"),
                    configuration: .init(credentials: credentials)))
            })
            var serverConfiguration = RPCServer.Configuration(
                credentials: credentials,
                info: .init(serviceName: name, version: callTraceVersion,
                            schemaVersion: UInt32(Service.migrations.map(\.version).max() ?? 0)))
            serverConfiguration.host = address.host
            serverConfiguration.port = address.port
            serverConfiguration.clientAddressGateways = Set(configuration.credentialGateways)
            // The port opens first, answering NOT_SERVING while the schema migrates.
            server = try RPCServer(configuration: serverConfiguration, services: [], serving: false, logger: logger)
        } catch {
            database.close()
            keyStore.close()
            throw error
        }
        let context = ServiceContext(database: database, keys: keys, outbox: outbox, jobs: jobs, configuration: configuration,
                                     logger: logger, peers: peers, authorizer: peers["identity"].map { IdentityAuthorizer(identity: $0) },
                                     clock: clock, blocking: blocking)
        do {
            try database.migrate(Service.migrations)
            let service = try Service(context: context)
            server.install(service.rpcServices)
        } catch {
            server.stop()
            database.close()
            keyStore.close()
            throw error
        }
        if let compliance = peers["compliance"] { outbox.forward(to: compliance) }
        server.reportGauges { await outbox.gauges() + jobs.gauges() }
        server.setServing(true)
        jobs.start(logger: logger)
        if configuration.keyStoreBesideDatabase {
            logger.warning("the key store is in the database's folder: a copy of that folder holds the keys a shred destroys; set key_store elsewhere",
                           metadata: ["key_store": "\(configuration.keyStorePath)"])
        }
        logger.notice("serving", metadata: ["address": "\(address.host):\(server.port)", "identity": "\(server.identity)",
                                            "schema_version": "\(database.schemaVersion)"])
        return ServiceInstance(server: server, database: database, keyStore: keyStore, outbox: outbox, jobs: jobs)
    }

    /// Drains: NOT_SERVING, calls in flight finish within `gracePeriod`; then the job worker
    /// stops after the job it is running, and the databases close.
    public func stop(gracePeriod: Duration) async {
        await server.shutdown(gracePeriod: gracePeriod)
        await jobs.stop()
        database.close()
        keyStore.close()
    }
}

/// SIGTERM or SIGINT — or, with `CALLTRACE_LIFELINE=stdin`, standard input closing: a
/// supervisor (a test harness, a development script) that holds the other end takes the service
/// with it when it dies, however it dies.
enum StopSignal {
    /// The first stop, once it comes; heard from the moment `listen()` returns.
    struct Listener: Sendable {
        let stops: AsyncStream<String>
        var first: String {
            get async {
                for await name in stops { return name }
                return "stop"
            }
        }
    }

    /// Starts listening (signals ignored by default from now on, handled by sources instead).
    static func listen() -> Listener {
        let (stops, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingOldest(1))
        if ProcessInfo.processInfo.environment["CALLTRACE_LIFELINE"] == "stdin" {
            let watcher = Thread {
                var buffer = [UInt8](repeating: 0, count: 64)
                while true {
                    let n = read(STDIN_FILENO, &buffer, buffer.count)
                    if n > 0 || (n < 0 && errno == EINTR) { continue }
                    break
                }
                continuation.yield("lifeline closed")
            }
            watcher.name = "calltrace-lifeline"
            watcher.start()
        }
        var sources: [any DispatchSourceSignal] = []
        for (number, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(name) }
            source.resume()
            sources.append(source)
        }
        Keep.sources = sources
        return Listener(stops: stops)
    }

    /// Signal sources must outlive the wait.
    enum Keep { nonisolated(unsafe) static var sources: [any DispatchSourceSignal] = [] }
}

/// Runs `action` on each SIGHUP, the usual "read your files again" (systemd's `reload`).
enum ReloadSignal {
    static func handle(_ action: @escaping @Sendable () -> Void) -> any DispatchSourceSignal {
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler(handler: action)
        source.resume()
        return source
    }
}

struct Backup<Service: CallTraceService>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "backup",
                             abstract: "Copy the database to FILE with SQLite's online backup, while the service runs.")
    }
    @OptionGroup var settings: SettingsOptions
    @Option(help: "The backup file to write.") var to: String
    @Flag(name: .customLong("keys"), help: "Back up the key store instead of the database (keep such backups apart and short-lived).")
    var keys = false

    func run() async throws {
        do {
            let configuration = try settings.resolve(service: Service.name, port: Service.defaultPort)
            let source = keys ? configuration.keyStorePath : configuration.database
            try Database.onlineBackup(of: source, to: to)
            print("backed up \(source) to \(to)")
        } catch {
            FileHandle.standardError.write(Data("calltrace-\(Service.name): backup failed: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct ListJobs<Service: CallTraceService>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "jobs",
                             abstract: "List the service's durable jobs (dead ones by default), read-only, while it runs.")
    }
    @OptionGroup var settings: SettingsOptions
    @Option(help: "ready, running, dead or all.") var state = "dead"
    @Flag(help: "One JSON object per line.") var json = false

    func run() async throws {
        do {
            guard ["ready", "running", "dead", "all"].contains(state) else { throw ValidationError("--state must be ready, running, dead or all") }
            let configuration = try settings.resolve(service: Service.name, port: Service.defaultPort)
            let filter = state == "all" ? "" : "WHERE state = ?"
            let rows = try Database.query(readOnly: configuration.database, """
                SELECT id, kind, state, attempts, last_error, run_at_unix_ms FROM jobs \(filter) ORDER BY created_at_unix_ms
                """, bindings: state == "all" ? [] : [state])
            for row in rows {
                let fields: [String: Any] = ["id": row.text("id") ?? "", "kind": row.text("kind") ?? "", "state": row.text("state") ?? "",
                                             "attempts": row.int("attempts") ?? 0, "last_error": row.text("last_error") ?? "",
                                             "run_at_unix_ms": row.int("run_at_unix_ms") ?? 0]
                if json {
                    print(String(decoding: try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]), as: UTF8.self))
                } else {
                    print("\(fields["id"]!)  \(fields["kind"]!)  \(fields["state"]!)  attempts \(fields["attempts"]!)  \(fields["last_error"]!)")
                }
            }
            if rows.isEmpty && !json { print("no \(state == "all" ? "" : state + " ")jobs") }
        } catch let error as ValidationError {
            throw error
        } catch {
            FileHandle.standardError.write(Data("calltrace-\(Service.name): jobs: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct RotateMasterKey<Service: CallTraceService>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "rotate-master-key",
                             abstract: "Re-wrap every organisation key under a new master key (service stopped).")
    }
    @OptionGroup var settings: SettingsOptions
    @Option(name: .customLong("new-key"), help: "The new 32-byte key file (mode 0600).") var newKey: String

    func run() async throws {
        do {
            let configuration = try settings.resolve(service: Service.name, port: Service.defaultPort)
            guard let masterKeyPath = configuration.masterKey else {
                throw ConfigurationError("master_key is not configured (config key master_key, or CALLTRACE_MASTER_KEY)")
            }
            let path = configuration.keyStorePath
            let masterKey = try MasterKey.load(path: masterKeyPath)
            let replacement = try MasterKey.load(path: newKey)
            // Re-wrapping a store that was created just now would re-wrap nothing and report success.
            guard FileManager.default.fileExists(atPath: path) else {
                throw ConfigurationError("there is no key store at \(path)"
                                         + (configuration.keyStore == nil ? " (key_store is not set: it is looked for beside master_key, named after the database)" : "")
                                         + "; run rotate-master-key with the config the service runs with")
            }
            // The checks of start-up: the master key opens the store, and it is the database's own
            // (the database's lock also shows a service still running).
            let keyStore: Database
            let keys: KeyRing
            if FileManager.default.fileExists(atPath: configuration.database) {
                let database = try Database(path: configuration.database)
                defer { database.close() }
                (keyStore, keys) = try KeyStoreBinding.openKeyStore(configuration: configuration, masterKey: masterKey, for: database, clock: SystemClock())
            } else {
                keyStore = try Database(path: path, migrations: KeyRing.migrations)
                keys = KeyRing(keyStore: keyStore, masterKey: masterKey)
                do { _ = try keys.verifyMasterKey() } catch { keyStore.close(); throw error }
            }
            defer { keyStore.close() }
            let count = try keys.rotateMasterKey(to: replacement)
            // Where the key store is looked for must not move with the key: by default it sits
            // beside master_key, so the new key takes the old one's place rather than master_key
            // pointing at another folder.
            let folder = { (file: String) in URL(fileURLWithPath: (file as NSString).deletingLastPathComponent).standardizedFileURL.path }
            let moves = configuration.keyStore == nil && folder(newKey) != folder(masterKeyPath)
            print("re-wrapped \(count) organisation key(s) in key store \(path) under \(newKey); only that key opens it now. "
                  + "Next: put \(newKey) in place of \(masterKeyPath) (mv), start the service, then destroy the old key"
                  + (moves ? " (pointing master_key at \(newKey) instead would look for the key store in its folder: then set key_store to \(path))" : ""))
        } catch {
            FileHandle.standardError.write(Data("calltrace-\(Service.name): rotation failed: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
