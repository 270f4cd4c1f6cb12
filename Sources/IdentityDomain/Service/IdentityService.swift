import CallTraceAPI
public import CallTraceRPC
public import CallTraceServiceHost
public import CallTraceStorage
import CallTraceKeys
import CallTraceOutbound

/// The identity service: organisations, named users, credentials, sessions and tokens, roles,
/// support grants, service and gateway principals (DESIGN.md §3). `services/identity/main.swift`
/// runs it as a process; tests run it in process.
public struct IdentityService: CallTraceService {
    public typealias Settings = IdentitySettings
    public static let name = "identity"
    /// How the service names itself in the audit trail, when it acts on its own (a schedule, a job).
    static let actor = Principal.serviceActor(name)
    public static let defaultPort = DefaultPorts.identity
    public static let requiredPeers: [String: String] = ["compliance": "to forward its audit events"]
    /// Its own tables, in order (the host's shared tables migrate on their own track first; the
    /// gaps in the numbering are versions those once took here).
    public static let migrations = [Migration(version: 2, SQLiteIdentityRepository.schema), Migration(version: 3, SQLiteIdentityRepository.schemaV3),
                                    Migration(version: 6, SQLiteIdentityRepository.schemaV6), Migration(version: 7, SQLiteIdentityRepository.schemaV7),
                                    Migration(version: 8, SQLiteIdentityRepository.schemaV8), Migration(version: 9, SQLiteIdentityRepository.alerts)]

    let identity: IdentityHandler
    let alerts: AlertHandler

    public init(context: ServiceContext) throws {
        let settings = context.configuration[Settings.self]
        let delivery = try Self.delivery(settings, context)
        let rules = IdentityRules(repository: SQLiteIdentityRepository(database: context.database), keys: context.keys,
                                  outbox: context.outbox, delivery: delivery, clock: context.clock,
                                  hasher: PasswordHasher(logN: settings.passwordHashLogN), blocking: context.blocking,
                                  mailLinkBase: settings.mailLinkBase)
        identity = IdentityHandler(rules: rules, credentialGateways: context.configuration.credentialGateways,
                                   adminOperators: settings.adminOperators)
        alerts = AlertHandler(rules: rules)
        context.jobs.register(Housekeeping(rules: rules))
        try context.jobs.schedule(Housekeeping.Purge.kind, every: .seconds(3600), Housekeeping.Purge())
    }

    public var rpcServices: [any RPCService] { [identity, alerts] }

    /// E-mail over SMTP with TLS (`smtp_url`) in production, a file outbox (`mail_outbox`) in
    /// development: exactly one of them.
    static func delivery(_ configuration: IdentitySettings, _ context: ServiceContext) throws -> any TokenDelivery {
        switch (configuration.smtpURL, configuration.mailOutbox) {
        case (nil, nil):
            throw ConfigurationError("identity delivers invitation and reset tokens by e-mail (smtp_url) or, in development, to a folder (mail_outbox): configure one")
        case (.some, .some):
            throw ConfigurationError("smtp_url and mail_outbox are both configured: tokens go one way; remove one")
        case (nil, let folder?):
            return try FileOutboxDelivery.checked(folder: folder)
        case (let url?, nil):
            guard let from = configuration.smtpFrom else { throw ConfigurationError("smtp_url needs smtp_from, the sender address") }
            guard let linkBase = configuration.mailLinkBase else {
                throw ConfigurationError("smtp_url needs mail_link_base, the https:// base of the web pages the e-mailed links open")
            }
            var settings = SMTPSettings(url: url, from: from, caFile: configuration.smtpCA)
            if let path = configuration.smtpCredentials {
                (settings.username, settings.password) = try SMTPSettings.credentials(from: path)
            }
            let mail = MailDelivery(settings: try settings.validated(), linkBase: linkBase, jobs: context.jobs, keys: context.keys,
                                    clock: context.clock, blocking: context.blocking)
            context.jobs.register(mail, maxAttempts: 20)
            context.jobs.register(MailDelivery.AlertSender(delivery: mail), maxAttempts: 20)
            return mail
        }
    }
}

/// Hourly: expired sessions, stale failed-login counts and used or expired tokens are deleted.
struct Housekeeping: DurableJobHandler {
    struct Purge: PayloadFreeJob { static let kind = "identity.purge" }
    let rules: IdentityRules

    func run(_ work: Purge, job: Job) async throws -> JobOutcome {
        _ = try await rules.purgeExpired()
        _ = try await rules.clearOffboarded()
        return .done
    }
}
