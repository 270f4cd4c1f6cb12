import CallTraceAPI
public import CallTraceRPC
public import CallTraceServiceHost
public import CallTraceStorage
import ComplianceDeadlines
import ComplianceDocuments
import Foundation

/// The compliance service: the audit trail, retention policies, deletion and purge jobs,
/// subject-request cases, offboarding cases, notice templates, the sub-processor register and
/// per-organisation compliance settings (DESIGN.md §3). Built so far: the audit trail (P8,
/// P15), retention (P9), deletion across services (P10), subject requests with the ICO deadline
/// engine (P13), bundles, matter files (P14) and offboarding with a signed certificate (P11),
/// notices (P3), the sub-processor register, records of processing and agreements (P5, P12).
public struct ComplianceService: CallTraceService {
    public typealias Settings = ComplianceSettings
    public static let name = "compliance"
    /// How the service names itself in the audit trail, when it acts on its own (a schedule, a job).
    static let actor = Principal.serviceActor(name)
    public static let defaultPort = DefaultPorts.compliance
    /// Its own audit events are appended locally.
    public static let requiredPeers: [String: String] = ["identity": "to authorise users and operators",
                                                         "media": "to purge and delete recordings (retention, deletion, erasure)",
                                                         "transcript": "to purge and delete call records and transcripts, find a subject's calls, suppress callers"]
    /// Its own tables, in order (the host's shared tables migrate on their own track first; the
    /// gaps in the numbering are versions those once took here).
    public static let migrations = [Migration(version: 2, Self.receivedEvents),
                                    Migration(version: 5, SQLiteAuditChainRepository.schema),
                                    Migration(version: 6, SQLiteComplianceRepository.schema),
                                    Migration(version: 7, SQLiteComplianceRepository.bundlesSchema),
                                    Migration(version: 8, SQLiteComplianceRepository.documentsSchema),
                                    Migration(version: 9, SQLiteComplianceRepository.offboardingExportSchema),
                                    Migration(version: 10, SQLiteComplianceRepository.repeatedDeletionsSchema),
                                    Migration(version: 11, SQLiteAuditChainRepository.checkpointsSchema)]

    /// Events as received before the chain existed (schema 2); moved into the chain at start-up.
    static let receivedEvents = """
        CREATE TABLE audit_events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            idempotency_key TEXT NOT NULL UNIQUE,
            org_id TEXT NOT NULL,
            source_service TEXT NOT NULL,
            event BLOB NOT NULL,
            received_at_unix_ms INTEGER NOT NULL
        );
        CREATE INDEX audit_events_by_org ON audit_events (org_id, seq);
        """

    let handlers: [any RPCService]

    public init(context: ServiceContext) throws {
        guard let authorizer = context.authorizer else { throw ConfigurationError("compliance needs its identity peer") }
        guard let media = context.peers["media"], let transcript = context.peers["transcript"] else {
            throw ConfigurationError("compliance needs its media and transcript peers")
        }
        let trail = AuditTrail(repository: SQLiteAuditChainRepository(database: context.database), keys: context.keys, clock: context.clock)
        let moved = try trail.importUnchained()
        if moved > 0 { context.logger.notice("audit events moved into the chain", metadata: ["events": "\(moved)"]) }
        // Compliance's own events go straight into its trail.
        context.outbox.forward { events in try await trail.append(events, from: ComplianceService.name) }
        guard let identity = context.peers["identity"] else { throw ConfigurationError("compliance needs its identity peer") }
        let services = PeerCallData(media: media, transcript: transcript, identity: identity)
        let repository = SQLiteComplianceRepository(database: context.database)
        let retention = RetentionRules(repository: repository, jobs: context.jobs, outbox: context.outbox, clock: context.clock)
        let deletions = DeletionRules(repository: repository, jobs: context.jobs, outbox: context.outbox, clock: context.clock)
        // Bundles live in the data folder (beside a SQLite database), sealed; what a crash left
        // half-written goes at start-up (on PostgreSQL, where replicas may share the folder, only
        // what is a day old: a younger one waits for a later start-up).
        let folder = try context.configuration.dataFolder() + "/bundles"
        let blobs = try FileBlobStore(folder: folder)
        let leftovers = try blobs.removeLeftovers(writtenBefore: context.sweepCutoff(sparing: .seconds(86_400))
            .map { Date(timeIntervalSince1970: TimeInterval($0) / 1000) })
        if !leftovers.isEmpty {
            context.logger.notice("start-up sweep removed unfinished bundles", metadata: [
                "files": "\(leftovers.count)", "removed": "\(leftovers.prefix(20).joined(separator: ", "))"])
        }
        let bundles = BundleRules(repository: repository, jobs: context.jobs, outbox: context.outbox, clock: context.clock, keys: context.keys,
                                  blobs: blobs, deletions: deletions)
        let requests = SubjectRequestRules(repository: repository, deletions: deletions, bundles: bundles, keys: context.keys, outbox: context.outbox,
                                           clock: context.clock, holidays: try Self.holidays(context.configuration[Settings.self]))
        // The deployment's signing key: deletion certificates and audit checkpoints (one key for the CLI to pin).
        let signer = try context.keys.signer("deletion-certificates")
        let offboarding = OffboardingRules(repository: repository, chain: SQLiteAuditChainRepository(database: context.database), bundles: bundles,
                                           jobs: context.jobs, outbox: context.outbox, clock: context.clock, keys: context.keys, signer: signer)
        let checkpoints = AuditCheckpoints(repository: SQLiteAuditChainRepository(database: context.database), signer: signer, clock: context.clock)
        context.jobs.register(AuditCheckpointDailyJob(checkpoints: checkpoints))
        try context.jobs.schedule("audit-checkpoints", dailyAt: 1, 0, in: Day.london, AuditCheckpointDaily())
        // Both wait out any outage of media or transcript: a deletion or a retention run is never given up.
        context.jobs.register(RetentionRunJob(rules: retention, services: services), maxAttempts: Int.max)
        context.jobs.register(RetentionDailyJob(rules: retention))
        context.jobs.register(DeletionJob(rules: deletions, services: services), maxAttempts: Int.max)
        try context.jobs.schedule("retention", dailyAt: 2, 0, in: Day.london, RetentionDaily())
        context.jobs.register(BundleJob(rules: bundles, contents: BundleContents(services: services, trail: trail, requests: requests, checkpoints: checkpoints)),
                              maxAttempts: BundleRules.maxAttempts)
        context.jobs.register(BundleExpiryJob(rules: bundles))
        try context.jobs.schedule("bundle-expiry", every: .seconds(3600), BundleExpiry())
        context.jobs.register(OffboardingJob(rules: offboarding, services: services), maxAttempts: Int.max)
        // Each morning, whoever chose it hears of requests falling due (identity sends the e-mail).
        context.jobs.register(SubjectRequestsDueJob(rules: requests, identity: .init(identity)), maxAttempts: 12)
        try context.jobs.schedule("requests-due-alerts", dailyAt: 7, 30, in: Day.london, SubjectRequestsDue())
        let register = try context.configuration[Settings.self].subprocessorsFile.map(SubProcessorRegister.load) ?? .shipped
        let documents = DocumentRules(repository: repository, register: register, retention: retention, services: services, outbox: context.outbox,
                                      clock: context.clock)
        handlers = [AuditHandler(trail: trail, checkpoints: checkpoints, authorizer: authorizer), RetentionHandler(rules: retention, authorizer: authorizer),
                    DeletionHandler(rules: deletions, services: services, authorizer: authorizer),
                    SubjectRequestHandler(rules: requests, services: services, authorizer: authorizer),
                    BundleHandler(rules: bundles, authorizer: authorizer),
                    MatterHandler(bundles: bundles, repository: repository, services: services, authorizer: authorizer),
                    OffboardingHandler(rules: offboarding, services: services, authorizer: authorizer),
                    NoticeHandler(rules: documents, authorizer: authorizer), RegisterHandler(rules: documents, authorizer: authorizer)]
    }

    public var rpcServices: [any RPCService] { handlers }

    /// The shipped UK bank holidays, or the operator's newer GOV.UK file (`bank_holidays_file`).
    static func holidays(_ configuration: ComplianceSettings) throws -> BankHolidays {
        guard let file = configuration.bankHolidaysFile else { return .shipped }
        do { return try BankHolidays.load(from: file) } catch {
            throw ConfigurationError("bank_holidays_file \(file): \(error)")
        }
    }
}
