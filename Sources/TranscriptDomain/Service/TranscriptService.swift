public import CallTraceRPC
public import CallTraceServiceHost
public import CallTraceStorage
import CallTraceAPI
import CallTraceOutbound

/// The transcript service: call records (tracking number, marketing source, caller number,
/// direction, times, outcome, matter reference), tracking numbers, transcripts, AI summaries and
/// classifications, processing objections, the numbers' routing and the firms' block lists
/// (DESIGN.md §3). `services/transcript/main.swift` runs
/// it as a process; tests run it in process.
public struct TranscriptService: CallTraceService {
    public typealias Settings = TranscriptSettings
    public static let name = "transcript"
    /// How the service names itself in the audit trail, when it acts on its own (a schedule, a job).
    static let actor = Principal.serviceActor(name)
    public static let defaultPort = DefaultPorts.transcript
    public static let requiredPeers: [String: String] = ["identity": "to authorise users and operators, and e-mail alerts", "compliance": "to forward its audit events",
                                                         "media": "to fetch recordings to transcribe and mute card details in them"]
    /// Its own tables, in order (the host's shared tables migrate on their own track first; the
    /// gaps in the numbering are versions those once took here).
    public static let migrations = [Migration(version: 4, SQLiteCallRepository.schema), Migration(version: 5, SQLiteCallRepository.callEvents),
                                     Migration(version: 6, SQLiteCallRepository.routingAndBlockList), Migration(version: 7, SQLiteCallRepository.websites),
                                     Migration(version: 8, SQLiteCallRepository.reportWord, postgres: SQLiteCallRepository.reportWordPostgres)]

    let handlers: [any RPCService]

    public init(context: ServiceContext) throws {
        guard let authorizer = context.authorizer else { throw ConfigurationError("transcript needs its identity peer") }
        guard let media = context.peers["media"] else { throw ConfigurationError("transcript needs its media peer") }
        guard let compliance = context.peers["compliance"] else { throw ConfigurationError("transcript needs its compliance peer") }
        let settings = context.configuration[Settings.self]
        let calls = CallRules(repository: SQLiteCallRepository(database: context.database), keys: context.keys, outbox: context.outbox,
                              clock: context.clock, notices: ComplianceCallNotices(client: .init(compliance)), jobs: context.jobs)
        // The keys of calls deleted just before a crash go before the first call; beside
        // replicas, those younger than an hour wait for the daily sweep.
        let swept = try calls.sweepKeys(sparingSince: context.sweepCutoff(sparing: CallRules.sweepGrace))
        if swept > 0 { context.logger.notice("start-up sweep destroyed the keys of deleted calls", metadata: ["keys": "\(swept)"]) }
        context.jobs.register(CallKeySweepJob(rules: calls, blocking: context.blocking) { [logger = context.logger] count in
            logger.notice("daily sweep destroyed the keys of deleted calls", metadata: ["keys": "\(count)"])
        })
        try context.jobs.schedule("key-sweep", every: .seconds(86_400), CallKeySweep())
        let transcripts = TranscriptRules(calls: calls, engines: try Self.engines(settings), jobs: context.jobs)
        let maxAttempts = 8
        let recordings = MediaRecordings(client: .init(media))
        context.jobs.register(TranscribeJobHandler(rules: transcripts, media: recordings, maxAttempts: maxAttempts), maxAttempts: maxAttempts)
        // A hand-given transcript may come long before the call's recording is uploaded (a
        // gateway's own speech-to-text during the call): its muting waits about a day and a half.
        let muteAttempts = MuteJobHandler.attempts
        context.jobs.register(MuteJobHandler(rules: transcripts, media: recordings, maxAttempts: muteAttempts), maxAttempts: muteAttempts)
        context.jobs.register(AnalyseJobHandler(rules: transcripts), maxAttempts: maxAttempts)
        // Alerts: identity tells whoever chose them (a day late they are dropped there as stale).
        guard let identity = context.peers["identity"] else { throw ConfigurationError("transcript needs its identity peer") }
        context.jobs.register(CallAlertJobHandler(rules: calls, identity: .init(identity)), maxAttempts: 12)
        context.jobs.register(WeeklySummaryJobs(rules: calls, jobs: context.jobs))
        context.jobs.register(WeeklySummaryJobHandler(rules: calls, identity: .init(identity)), maxAttempts: 12)
        try context.jobs.schedule("weekly-summary", dailyAt: 7, 0, in: WeeklySummary.london, WeeklySummary.Daily())
        handlers = [TrackingNumberHandler(rules: calls, authorizer: authorizer),
                    CallHandler(rules: calls, transcripts: transcripts, authorizer: authorizer,
                                telephonyGateways: settings.telephonyGateways),
                    TranscriptHandler(rules: transcripts, authorizer: authorizer, telephonyGateways: settings.telephonyGateways),
                    SuppressionHandler(rules: calls, authorizer: authorizer), BlockListHandler(rules: calls, authorizer: authorizer),
                    WebsiteHandler(rules: calls.websites, authorizer: authorizer), VisitorHandler(rules: calls.websites)]
    }

    public var rpcServices: [any RPCService] { handlers }

    /// The sub-processors this deployment has keys for: Deepgram with `deepgram_key_file`,
    /// Anthropic with `anthropic_key_file` (0600 files), over HTTPS trusting `outbound_ca` (the
    /// system's CAs when unset). `local` analysis always.
    static func engines(_ configuration: TranscriptSettings) throws -> Engines {
        let transport = CurlHTTPS(caFile: configuration.outboundCA)
        var engines = Engines()
        if configuration.deepgramKeyFile != nil || configuration.anthropicKeyFile != nil {
            do { try Libcurl.load() } catch { throw ConfigurationError("the sub-processors are reached through libcurl: \(error)") }
        }
        do {
            if let file = configuration.deepgramKeyFile {
                engines.transcription["deepgram"] = DeepgramEngine(endpoint: configuration.deepgramURL, apiKey: try Self.key(file), transport: transport)
            }
            if let file = configuration.anthropicKeyFile {
                engines.analysis["anthropic"] = AnthropicEngine(endpoint: configuration.anthropicURL, apiKey: try Self.key(file),
                                                                model: configuration.anthropicModel, transport: transport)
            }
        } catch let error as SecretFileError {
            throw ConfigurationError("API key file \(error)")
        }
        return engines
    }

    static func key(_ file: String) throws -> String {
        let key = try SecretFile.read(file).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !key.isEmpty, !key.contains(where: { $0.isNewline || $0.isWhitespace }) else {
            throw ConfigurationError("API key file \(file) must hold the key alone, on one line")
        }
        return key
    }
}
