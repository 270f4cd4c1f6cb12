import CallTraceAPI
import CallTraceRPC
import CallTraceStorage
public import CallTraceTLS
import Foundation

/// One service's settings: from a JSON file, then `CALLTRACE_*` environment variables, then
/// command-line flags, each overriding the one before. Every key and default is listed in the
/// service's README (`services/<name>/README.md`).
public struct ServiceConfiguration: Sendable {
    /// `host:port` to listen on. Default `127.0.0.1:<the service's default port>`.
    public var listen: String
    /// PEM certificate chain carrying `spiffe://<trust-domain>/service/<name>`. Required.
    public var certificate: String?
    /// PEM private key of that certificate. Required.
    public var privateKey: String?
    /// PEM certificate of the deployment CA. Required.
    public var ca: String?
    /// PEM revocation list signed by that CA (`calltrace pki revoke`): peers whose certificate
    /// it names are refused. Re-read on SIGHUP. Default none.
    public var crl: String?
    /// The service's database: a SQLite file, or a PostgreSQL database that several replicas
    /// can share (`postgres://user@host:5432/name?sslmode=verify-full&sslrootcert=<CA file>`).
    /// Default `<name>.sqlite` in the working directory.
    public var database: String
    /// The PostgreSQL user's password, on the first line of a file of mode 0600 (never in the
    /// URL). Default none (a socket with peer authentication needs none).
    public var databasePasswordFile: String?
    /// Where the service keeps files of its own (media's recordings unless `blob_store` says
    /// otherwise, compliance's bundles). Default: the SQLite database's folder; with a
    /// PostgreSQL database it must be given (`dataFolder()`).
    public var dataFolderSetting: String?
    /// The key store: wrapped per-organisation keys, a separate SQLite file that data backups
    /// never contain. Default: beside the master key, named after the database with `.keys`
    /// before its extension (`/etc/calltrace/keys/identity/identity.keys.sqlite`), so that a copy of the
    /// data directory never holds the keys a crypto-shred destroys. The database records which
    /// key store it was served with: start-up refuses another, or none (`KeyStoreBinding`).
    /// Replicas of a service share one key store: a PostgreSQL database of its own
    /// (`postgres://…`, never the service's database: a backup of the data would hold its keys).
    public var keyStore: String?
    /// The password of a PostgreSQL key store's user, in a file of mode 0600. Default none.
    public var keyStorePasswordFile: String?
    /// A 32-byte key file, mode 0600. Required.
    public var masterKey: String?
    /// Other services this one calls: name → `host:port` (their identity is
    /// `spiffe://<trust-domain>/service/<name>`, or `gateway/<name>` for one of the service's
    /// `gatewayPeers`). Default none, or those of `deployment`.
    public var peers: [String: String]
    /// The deployment file (`services`: name → host:port) shared by the services and the CLI:
    /// every other service it names becomes a peer, unless `peers` names it, and so does each
    /// gateway it lists that is one of the service's `gatewayPeers`. Default none.
    public var deployment: String?
    /// The gateways `deployment` lists: the deployment's own, whose `x-client-address` (the
    /// address they were told, passed on) is believed as the credential gateways' is.
    public var deploymentGateways: Set<String> = []
    /// `text` or `json`. Default `text`.
    public var logFormat: String
    /// `trace`, `debug`, `info`, `notice`, `warning`, `error`. Default `info`.
    public var logLevel: String
    /// Seconds calls in flight may take to finish after SIGTERM. Default 10.
    public var drainSeconds: Int
    /// Seconds a running durable job stays its replica's without that replica's heartbeat
    /// (renewed every quarter of it): when a replica dies, another takes its jobs over after
    /// this. Default 60.
    public var jobLeaseSeconds = 60
    /// The gateways (names, as in `spiffe://<domain>/gateway/<name>`) that may make credential
    /// calls (login, invitation, password reset) and whose `x-client-address` is believed: the
    /// web backend. Default `["web"]`.
    public var credentialGateways: [String] = ["web"]
    /// The service these settings are for (`defaults(service:…)`).
    public private(set) var serviceName = ""
    /// The service's own settings (its `Settings`, e.g. `MediaSettings`): read from the same
    /// sources, declared by the service (`ServiceSettings`). Reach them typed with
    /// `configuration[MediaSettings.self]`.
    public var own: any ServiceSettings = NoSettings()

    /// The service's own settings, typed (the host made them of the service's `Settings` type).
    public subscript<Settings: ServiceSettings>(_ type: Settings.Type) -> Settings {
        get {
            guard let settings = own as? Settings else { preconditionFailure("the service's settings are \(Swift.type(of: own)), not \(type)") }
            return settings
        }
        set { own = newValue }
    }

    /// The defaults of `service`, with `Settings`' defaults as its own.
    public static func defaults<Settings: ServiceSettings>(service: String, port: Int, settings: Settings.Type = NoSettings.self) -> ServiceConfiguration {
        var configuration = ServiceConfiguration(listen: "127.0.0.1:\(port)", certificate: nil, privateKey: nil, ca: nil,
                                                 database: "\(service).sqlite", keyStore: nil, masterKey: nil, peers: [:], logFormat: "text",
                                                 logLevel: "info", drainSeconds: 10, own: Settings())
        configuration.serviceName = service
        return configuration
    }

    /// The levels `log_level` accepts.
    static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// The settings every service has (its own come from its `ServiceSettings`); `peers` is read
    /// apart (a map in the file, `CALLTRACE_PEER_<NAME>` variables).
    static let settings: [Setting<ServiceConfiguration>] = [
        .text("listen", help: "host:port to listen on.") { $0.listen = $1 },
        .text("certificate", help: "PEM certificate chain.") { $0.certificate = $1 },
        .text("private_key", help: "PEM private key.") { $0.privateKey = $1 },
        .text("ca", help: "PEM certificate of the deployment CA.") { $0.ca = $1 },
        .text("crl", help: "PEM revocation list signed by the CA (re-read on SIGHUP).") { $0.crl = $1 },
        .text("database", help: "SQLite database file, or a postgres:// URL (sslmode=verify-full, sslrootcert=<CA file>).") { $0.database = $1 },
        .text("database_password_file", help: "File holding the PostgreSQL password (mode 0600).") { $0.databasePasswordFile = $1 },
        .text("data_folder", help: "Folder for the service's own files (default: the SQLite database's folder; required with PostgreSQL).",
              check: { $0.isEmpty ? "name a folder" : nil }) {
            $0.dataFolderSetting = $1
        },
        .text("key_store", help: "Key store file (default: beside the master key, named after the database), or a postgres:// URL replicas share.") {
            $0.keyStore = $1
        },
        .text("key_store_password_file", help: "File holding a PostgreSQL key store's password (mode 0600).") { $0.keyStorePasswordFile = $1 },
        .text("master_key", help: "32-byte master key file (mode 0600).") { $0.masterKey = $1 },
        .text("log_format", help: "text or json.", check: { ["text", "json"].contains($0) ? nil : "be text or json" }) { $0.logFormat = $1 },
        .text("log_level", help: "trace, debug, info, notice, warning, error.",
              check: { logLevels.contains($0) ? nil : "be one of \(logLevels.joined(separator: ", "))" }) { $0.logLevel = $1 },
        .text("drain_seconds", help: "Seconds calls in flight may take to finish after SIGTERM (0-3600).",
              check: { Int($0).map { (0...3600).contains($0) } == true ? nil : "be a whole number of seconds from 0 to 3600" }) { $0.drainSeconds = Int($1)! },
        .text("job_lease_seconds", help: "Seconds a replica's running job is kept from the others without its heartbeat; a dead replica's jobs are taken over after it (4-3600).",
              check: { Int($0).map { (4...3600).contains($0) } == true ? nil : "be a whole number of seconds from 4 to 3600" }) { $0.jobLeaseSeconds = Int($1)! },
        .names("credential_gateways", of: .gateway, help: "Gateways allowed credential calls and to name client addresses (comma-separated; default web).") {
            $0.credentialGateways = $1
        },
        .text("deployment", help: "Deployment file (services: name → host:port) from which the other services become peers.") { $0.deployment = $1 },
    ]

    /// Every setting this configuration reads, the host's and then the service's: (file key,
    /// environment variable, flag, help, whether a file gives a list).
    public var allSettings: [(key: String, environment: String, flag: String, help: String, isList: Bool)] {
        func rows<Owner>(_ table: [Setting<Owner>]) -> [(key: String, environment: String, flag: String, help: String, isList: Bool)] {
            table.map { ($0.key, $0.environmentVariable, $0.flag, $0.help, $0.isList) }
        }
        func ownRows<Settings: ServiceSettings>(_: Settings) -> [(key: String, environment: String, flag: String, help: String, isList: Bool)] {
            rows(Settings.settings)
        }
        return rows(Self.settings) + ownRows(own)
    }

    /// Applies a JSON config file (`ConfigurationFile`): its peers, then each setting as a flag's
    /// value would be given.
    mutating func apply(file path: String) throws {
        let known = Dictionary(allSettings.map { ($0.key, $0.isList) }, uniquingKeysWith: { first, _ in first })
        let file = try ConfigurationFile(contentsOf: path, known: known)
        if let peers = file.peers { self.peers = peers }
        for assignment in file.assignments { try set(assignment.key, assignment.value) }
    }

    /// Applies `CALLTRACE_*` variables, including `CALLTRACE_PEER_<NAME>=host:port`.
    mutating func apply(environment: [String: String]) throws {
        for setting in allSettings {
            if let value = environment[setting.environment] { try set(setting.key, value) }
        }
        for (variable, value) in environment where variable.hasPrefix("CALLTRACE_PEER_") {
            peers[variable.dropFirst("CALLTRACE_PEER_".count).lowercased()] = value
        }
    }

    /// Sets one setting, the host's or the service's, by its file key.
    public mutating func set(_ key: String, _ value: String) throws {
        if let setting = Self.settings.first(where: { $0.key == key }) {
            try setting.apply(&self, value)
        } else if try !own.set(key, value) {
            throw ConfigurationError("unknown setting \(key)")
        }
    }

    /// Takes the peers `deployment` names that `peers` does not, leaving out `service` itself:
    /// the services, and of the gateways those in `gateways` (the service's `gatewayPeers`).
    mutating func applyDeployment(service: String, gateways: Set<String>) throws {
        guard let deployment else { return }
        let named: Deployment
        do {
            named = try Deployment.load(deployment)
        } catch {
            throw ConfigurationError("\(error)")
        }
        let called = named.gateways.filter { gateways.contains($0.key) }
        for (name, address) in named.services.merging(called, uniquingKeysWith: { service, _ in service })
        where name != service && peers[name] == nil {
            peers[name] = address
        }
        deploymentGateways = Set(named.gateways.keys)
    }

    /// The TLS material the service presents and checks peers with.
    public var credentials: TLSCredentials? {
        guard let certificate, let privateKey, let ca else { return nil }
        return TLSCredentials(certificateChainPath: certificate, privateKeyPath: privateKey, trustRootsPath: ca, revocationListPath: crl)
    }

    /// The folder for the service's own files: `data_folder`, or the SQLite database's folder.
    ///
    /// - Throws: `ConfigurationError` for a PostgreSQL database without `data_folder` (its URL
    ///   names no folder, and a guess would put files where no one looks).
    public func dataFolder() throws -> String {
        if let dataFolderSetting { return dataFolderSetting }
        guard !databaseIsPostgres else {
            throw ConfigurationError("with a PostgreSQL database, set data_folder: the folder where \(serviceName) keeps its own files")
        }
        let folder = (database as NSString).deletingLastPathComponent
        return folder.isEmpty ? "." : folder
    }

    /// Whether `database` names a PostgreSQL database rather than a SQLite file.
    public var databaseIsPostgres: Bool { Self.isPostgres(database) }

    /// The key store's path: configured, or beside the master key, named after the database
    /// (after the service, for a PostgreSQL database).
    public var keyStorePath: String {
        if let keyStore { return keyStore }
        let name = databaseIsPostgres ? "\(serviceName).sqlite" : URL(fileURLWithPath: database).lastPathComponent
        let ext = (name as NSString).pathExtension
        let file = ext.isEmpty ? name + ".keys" : (name as NSString).deletingPathExtension + ".keys." + ext
        let folder = masterKey.map { ($0 as NSString).deletingLastPathComponent } ?? ""
        return folder.isEmpty ? file : folder + "/" + file
    }

    /// Whether the key store is a PostgreSQL database (replicas share it) rather than a SQLite file.
    public var keyStoreIsPostgres: Bool { Self.isPostgres(keyStorePath) }

    static func isPostgres(_ location: String) -> Bool { location.hasPrefix("postgres://") || location.hasPrefix("postgresql://") }

    /// Whether the key store sits in the database's folder, where a copy of the data directory
    /// (a backup, a snapshot) would take the keys along and a shred could be undone.
    public var keyStoreBesideDatabase: Bool {
        guard !databaseIsPostgres, !keyStoreIsPostgres else { return false }
        func folder(_ path: String) -> String {
            URL(fileURLWithPath: (path as NSString).deletingLastPathComponent).standardizedFileURL.path
        }
        return folder(keyStorePath) == folder(database)
    }

    /// Whether the key store is a database on the PostgreSQL server (host and port) that holds
    /// the service's database: a backup of that server (`pg_basebackup`, a disk snapshot) would
    /// hold the keys a shred destroys.
    public var keyStoreOnDatabaseServer: Bool {
        guard databaseIsPostgres, keyStoreIsPostgres, let database = PostgresAddress.server(of: database),
              let keys = PostgresAddress.server(of: keyStorePath) else { return false }
        return database == keys
    }

    /// Checks what must be present and well-formed.
    func validated() throws -> (host: String, port: Int) {
        for (name, value) in [("certificate", certificate), ("private_key", privateKey), ("ca", ca), ("master_key", masterKey)] where value == nil {
            throw ConfigurationError("\(name) is not configured (config key \(name), or CALLTRACE_\(name.uppercased()))")
        }
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw ConfigurationError("listen must be host:port, not \(listen)")
        }
        for (name, address) in peers where Deployment.addresses(address) == nil {
            throw ConfigurationError("peer \(name) must be host:port, not \(address)")
        }
        try own.validate()
        return (String(listen[..<colon]), port)
    }
}
