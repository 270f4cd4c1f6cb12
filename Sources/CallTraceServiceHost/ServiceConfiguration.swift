import CallTraceAPI
import CallTraceRPC
public import CallTraceTLS
import Foundation

/// One service's settings: from a JSON file, then `CALLTRACE_*` environment variables, then
/// command-line flags, each overriding the one before. Every key and default is listed in the
/// service's README (`services/<name>/README.md`).
public struct ServiceConfiguration: Sendable, Equatable {
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
    /// The service's SQLite database. Default `<name>.sqlite` in the working directory.
    public var database: String
    /// The key store: wrapped per-organisation keys, a separate SQLite file that data backups
    /// never contain. Default: beside the master key, named after the database with `.keys`
    /// before its extension (`/etc/calltrace/keys/identity/identity.keys.sqlite`), so that a copy of the
    /// data directory never holds the keys a crypto-shred destroys. The database records which
    /// key store it was served with: start-up refuses another, or none (`KeyStoreBinding`).
    public var keyStore: String?
    /// A 32-byte key file, mode 0600. Required.
    public var masterKey: String?
    /// Other services this one calls: name → `host:port` (their identity is
    /// `spiffe://<trust-domain>/service/<name>`). Default none, or those of `deployment`.
    public var peers: [String: String]
    /// The deployment file (`services`: name → host:port) shared by the services and the CLI:
    /// every other service it names becomes a peer, unless `peers` names it. Default none.
    public var deployment: String?
    /// `text` or `json`. Default `text`.
    public var logFormat: String
    /// `trace`, `debug`, `info`, `notice`, `warning`, `error`. Default `info`.
    public var logLevel: String
    /// Seconds calls in flight may take to finish after SIGTERM. Default 10.
    public var drainSeconds: Int
    /// The gateways (names, as in `spiffe://<domain>/gateway/<name>`) that may make credential
    /// calls (login, invitation, password reset) and whose `x-client-address` is believed: the
    /// web backend. Default `["web"]`.
    public var credentialGateways: [String] = ["web"]
    /// Media and transcript: the gateways (names, as in `spiffe://<domain>/gateway/<name>`) that
    /// report calls as themselves — start and complete calls, upload recordings, give a call's
    /// first transcript: the telephony gateway. Any other gateway (the web backend) acts only
    /// with a user's token. Default `["telephony"]`.
    public var telephonyGateways: [String] = ["telephony"]
    /// Identity only: the folder where invitation and reset tokens are delivered as files (a
    /// development mailbox). Required by identity; other services ignore it. Default none.
    public var mailOutbox: String?
    /// Identity only: e-mail delivery of invitation and reset tokens, instead of `mail_outbox`:
    /// `smtps://host:465` (implicit TLS) or `smtp://host:587` (STARTTLS, required). Default none.
    public var smtpURL: String?
    /// Identity only: the sender address of those e-mails. Required with `smtp_url`.
    public var smtpFrom: String?
    /// Identity only: PEM CA certificates for the mail server; default the system's.
    public var smtpCA: String?
    /// Identity only: a file (mode 0600) holding the mail server's user name on its first line
    /// and password on its second. Default none (no login).
    public var smtpCredentials: String?
    /// Identity only: the web backend's base URL the e-mailed links point at
    /// (`<base>/accept-invitation?token=…`, `<base>/reset-password?token=…`). Required with `smtp_url`.
    public var mailLinkBase: String?
    /// Identity only: log2 of scrypt's N for new password hashes. Not a setting (no file key,
    /// variable or flag): every deployment hashes at 15; only in-process tests lower it (10) to
    /// keep the suite fast, running the same code.
    public var passwordHashLogN = 15
    /// Media only: the folder of the sealed recording files. Default `recordings/` beside the database.
    public var blobStore: String?
    /// Identity only: the operators (names, as in `spiffe://<domain>/operator/<name>`) who may
    /// create and suspend organisations; empty lets every operator certificate do so. Default empty.
    public var adminOperators: [String] = []
    /// Transcript only: Deepgram's API (EU: `https://api.eu.deepgram.com`). Default `https://api.deepgram.com`.
    public var deepgramURL = "https://api.deepgram.com"
    /// Transcript only: a 0600 file holding the Deepgram API key; without it the deepgram engine is off.
    public var deepgramKeyFile: String?
    /// Transcript only: Anthropic's API. Default `https://api.anthropic.com`.
    public var anthropicURL = "https://api.anthropic.com"
    /// Transcript only: a 0600 file holding the Anthropic API key; without it only `local` analysis runs.
    public var anthropicKeyFile: String?
    /// Transcript only: the Anthropic model. Default `claude-sonnet-4-5`.
    public var anthropicModel = "claude-sonnet-4-5"
    /// Transcript only: PEM CA certificates the sub-processors' HTTPS certificates must chain to; default the system's.
    public var outboundCA: String?
    /// Compliance only: the operator-maintained sub-processor register (JSON); default the list shipped with the trust page.
    public var subprocessorsFile: String?
    /// Compliance only: GOV.UK's bank-holidays.json, newer than the one shipped (2024–2027).
    public var bankHolidaysFile: String?

    public static func defaults(service: String, port: Int) -> ServiceConfiguration {
        ServiceConfiguration(listen: "127.0.0.1:\(port)", certificate: nil, privateKey: nil, ca: nil,
                             database: "\(service).sqlite", keyStore: nil, masterKey: nil, peers: [:], logFormat: "text",
                             logLevel: "info", drainSeconds: 10)
    }

    /// The file keys, each with its environment variable.
    static let keys: [(file: String, environment: String)] = [
        ("listen", "CALLTRACE_LISTEN"), ("certificate", "CALLTRACE_CERTIFICATE"),
        ("private_key", "CALLTRACE_PRIVATE_KEY"), ("ca", "CALLTRACE_CA"), ("crl", "CALLTRACE_CRL"), ("database", "CALLTRACE_DATABASE"), ("key_store", "CALLTRACE_KEY_STORE"),
        ("master_key", "CALLTRACE_MASTER_KEY"), ("log_format", "CALLTRACE_LOG_FORMAT"),
        ("log_level", "CALLTRACE_LOG_LEVEL"), ("drain_seconds", "CALLTRACE_DRAIN_SECONDS"),
        ("credential_gateways", "CALLTRACE_CREDENTIAL_GATEWAYS"), ("telephony_gateways", "CALLTRACE_TELEPHONY_GATEWAYS"), ("mail_outbox", "CALLTRACE_MAIL_OUTBOX"),
        ("admin_operators", "CALLTRACE_ADMIN_OPERATORS"), ("smtp_url", "CALLTRACE_SMTP_URL"), ("smtp_from", "CALLTRACE_SMTP_FROM"),
        ("smtp_ca", "CALLTRACE_SMTP_CA"), ("smtp_credentials", "CALLTRACE_SMTP_CREDENTIALS"), ("mail_link_base", "CALLTRACE_MAIL_LINK_BASE"),
        ("blob_store", "CALLTRACE_BLOB_STORE"), ("deepgram_url", "CALLTRACE_DEEPGRAM_URL"), ("deepgram_key_file", "CALLTRACE_DEEPGRAM_KEY_FILE"),
        ("anthropic_url", "CALLTRACE_ANTHROPIC_URL"), ("anthropic_key_file", "CALLTRACE_ANTHROPIC_KEY_FILE"),
        ("anthropic_model", "CALLTRACE_ANTHROPIC_MODEL"), ("outbound_ca", "CALLTRACE_OUTBOUND_CA"),
        ("subprocessors_file", "CALLTRACE_SUBPROCESSORS_FILE"), ("bank_holidays_file", "CALLTRACE_BANK_HOLIDAYS_FILE"),
        ("deployment", "CALLTRACE_DEPLOYMENT"),
    ]

    /// The levels `log_level` accepts.
    static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// Applies a JSON config file. Unknown keys are refused (a typo must not pass silently).
    mutating func apply(file path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("config file \(path) cannot be read")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ConfigurationError("config file \(path) is not a JSON object")
        }
        let known = Set(Self.keys.map(\.file) + ["peers"])
        if let unknown = object.keys.filter({ !known.contains($0) }).sorted().first {
            throw ConfigurationError("config file \(path): unknown key \"\(unknown)\"")
        }
        for (key, value) in object {
            if key == "peers" {
                guard let peers = value as? [String: String] else {
                    throw ConfigurationError("config file \(path): peers must map service names to \"host:port\"")
                }
                self.peers = peers
            } else if key == "drain_seconds" {
                guard let seconds = value as? Int else {
                    throw ConfigurationError("config file \(path): drain_seconds must be a whole number of seconds from 0 to 3600")
                }
                try set(key, String(seconds))
            } else if ["credential_gateways", "telephony_gateways", "admin_operators"].contains(key) {
                guard let names = value as? [String] else {
                    throw ConfigurationError("config file \(path): \(key) must be a list of names")
                }
                try set(key, names.joined(separator: ","))
            } else {
                guard let text = value as? String else { throw ConfigurationError("config file \(path): \(key) must be a string") }
                try set(key, text)
            }
        }
    }

    /// Applies `CALLTRACE_*` variables, including `CALLTRACE_PEER_<NAME>=host:port`.
    mutating func apply(environment: [String: String]) throws {
        for (file, variable) in Self.keys {
            if let value = environment[variable] { try set(file, value) }
        }
        for (variable, value) in environment where variable.hasPrefix("CALLTRACE_PEER_") {
            peers[variable.dropFirst("CALLTRACE_PEER_".count).lowercased()] = value
        }
    }

    mutating func set(_ key: String, _ value: String) throws {
        switch key {
        case "listen": listen = value
        case "certificate": certificate = value
        case "private_key": privateKey = value
        case "ca": ca = value
        case "crl": crl = value
        case "database": database = value
        case "key_store": keyStore = value
        case "master_key": masterKey = value
        case "log_format":
            guard ["text", "json"].contains(value) else { throw ConfigurationError("log_format must be text or json, not \(value)") }
            logFormat = value
        case "log_level":
            guard Self.logLevels.contains(value) else {
                throw ConfigurationError("log_level must be one of \(Self.logLevels.joined(separator: ", ")), not \(value)")
            }
            logLevel = value
        case "drain_seconds":
            guard let seconds = Int(value), (0...3600).contains(seconds) else {
                throw ConfigurationError("drain_seconds must be a whole number of seconds from 0 to 3600, not \(value)")
            }
            drainSeconds = seconds
        case "credential_gateways":
            let names = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard names.allSatisfy({ PeerIdentity(uri: "spiffe://x/gateway/\($0)") != nil }) else {
                throw ConfigurationError("credential_gateways must name gateways (a-z 0-9 - . _), not \(value)")
            }
            credentialGateways = names
        case "telephony_gateways":
            let names = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard names.allSatisfy({ PeerIdentity(uri: "spiffe://x/gateway/\($0)") != nil }) else {
                throw ConfigurationError("telephony_gateways must name gateways (a-z 0-9 - . _), not \(value)")
            }
            telephonyGateways = names
        case "mail_outbox": mailOutbox = value
        case "smtp_url":
            guard value.hasPrefix("smtps://") || value.hasPrefix("smtp://") else {
                throw ConfigurationError("smtp_url must start with smtps:// (implicit TLS) or smtp:// (STARTTLS), not \(value)")
            }
            smtpURL = value
        case "blob_store": blobStore = value
        case "deepgram_url", "anthropic_url":
            guard value.hasPrefix("https://"), URL(string: value)?.host != nil else { throw ConfigurationError("\(key) must be an https:// URL, not \(value)") }
            if key == "deepgram_url" { deepgramURL = value } else { anthropicURL = value }
        case "deepgram_key_file": deepgramKeyFile = value
        case "anthropic_key_file": anthropicKeyFile = value
        case "anthropic_model":
            guard !value.isEmpty, value.count <= 100, value.allSatisfy({ $0.isLetter || $0.isNumber || "-._".contains($0) }) else {
                throw ConfigurationError("anthropic_model must be a model name (letters, digits, - . _), not \(value)")
            }
            anthropicModel = value
        case "outbound_ca": outboundCA = value
        case "subprocessors_file": subprocessorsFile = value
        case "bank_holidays_file": bankHolidaysFile = value
        case "deployment": deployment = value
        case "smtp_from": smtpFrom = value
        case "smtp_ca": smtpCA = value
        case "smtp_credentials": smtpCredentials = value
        case "mail_link_base":
            guard value.hasPrefix("https://") else { throw ConfigurationError("mail_link_base must be an https:// URL, not \(value)") }
            mailLinkBase = value
        case "admin_operators":
            let names = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard names.allSatisfy({ PeerIdentity(uri: "spiffe://x/operator/\($0)") != nil }) else {
                throw ConfigurationError("admin_operators must name operators (a-z 0-9 - . _), not \(value)")
            }
            adminOperators = names
        default: throw ConfigurationError("unknown setting \(key)")
        }
    }

    /// Takes the peers `deployment` names that `peers` does not, leaving out `service` itself.
    mutating func applyDeployment(service: String) throws {
        guard let deployment else { return }
        let services: [String: String]
        do {
            services = try Deployment.load(deployment).services
        } catch {
            throw ConfigurationError("\(error)")
        }
        for (name, address) in services where name != service && peers[name] == nil { peers[name] = address }
    }

    /// The TLS material the service presents and checks peers with.
    public var credentials: TLSCredentials? {
        guard let certificate, let privateKey, let ca else { return nil }
        return TLSCredentials(certificateChainPath: certificate, privateKeyPath: privateKey, trustRootsPath: ca, revocationListPath: crl)
    }

    /// The key store's path: configured, or beside the master key, named after the database.
    public var keyStorePath: String {
        if let keyStore { return keyStore }
        let name = URL(fileURLWithPath: database).lastPathComponent
        let ext = (name as NSString).pathExtension
        let file = ext.isEmpty ? name + ".keys" : (name as NSString).deletingPathExtension + ".keys." + ext
        let folder = masterKey.map { ($0 as NSString).deletingLastPathComponent } ?? ""
        return folder.isEmpty ? file : folder + "/" + file
    }

    /// Whether the key store sits in the database's folder, where a copy of the data directory
    /// (a backup, a snapshot) would take the keys along and a shred could be undone.
    public var keyStoreBesideDatabase: Bool {
        func folder(_ path: String) -> String {
            URL(fileURLWithPath: (path as NSString).deletingLastPathComponent).standardizedFileURL.path
        }
        return folder(keyStorePath) == folder(database)
    }

    /// Checks what must be present and well-formed.
    func validated() throws -> (host: String, port: Int) {
        for (name, value) in [("certificate", certificate), ("private_key", privateKey), ("ca", ca), ("master_key", masterKey)] where value == nil {
            throw ConfigurationError("\(name) is not configured (config key \(name), or CALLTRACE_\(name.uppercased()))")
        }
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw ConfigurationError("listen must be host:port, not \(listen)")
        }
        for (name, address) in peers where address.split(separator: ":").count != 2 {
            throw ConfigurationError("peer \(name) must be host:port, not \(address)")
        }
        return (String(listen[..<colon]), port)
    }
}

/// A configuration problem, reported as one line.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
