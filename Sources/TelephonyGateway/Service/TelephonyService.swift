import CallTraceAPI
import CallTraceHTTP
import CallTraceOutbound
public import CallTraceRPC
public import CallTraceServiceHost
public import CallTraceStorage
import Hummingbird
import Logging
public import ServiceLifecycle
import Twilio

/// The telephony gateway: Twilio's webhooks and REST API on one side, the four services on the
/// other (issue 31). It runs on the host as a service does (settings, logs, keys, health and
/// drain over ctrpc/1, durable jobs), under its gateway certificate
/// (`spiffe://<domain>/gateway/telephony`) — the gateway the ingest RPCs are limited to — and
/// takes Twilio's webhooks over HTTP behind nginx. It keeps only what a webhook edge must: the
/// answers it gave, the calls in flight, the recordings it is moving (DESIGN §2a).
/// `services/telephony/main.swift` runs it as a process; tests run it in process.
public struct TelephonyService: CallTraceService {
    public typealias Settings = TelephonySettings
    public static let name = "telephony"
    public static let defaultPort = DefaultPorts.telephony
    public static let certificateKind = PeerIdentity.Kind.gateway
    public static let requiredPeers: [String: String] = [
        "transcript": "to start and complete calls (and learn how to route them)", "media": "to store recordings fetched from Twilio",
        "identity": "to authorise the people who change numbers and place call backs", "compliance": "to forward its audit events",
    ]
    public static let migrations = [Migration(version: 1, SQLiteTelephonyRepository.schema),
                                    Migration(version: 2, SQLiteTelephonyRepository.numbersAndCallbacks)]

    let listener: HTTPListener<Router<BasicRequestContext>>
    let transfer: RecordingTransfer
    let counters: TelephonyCounters
    public let rpcServices: [any RPCService]

    public init(context: ServiceContext) throws {
        let settings = context.configuration[Settings.self]
        guard let address = HTTPListenAddress(settings.httpListen), let publicURL = PublicURL(settings.publicURL) else {
            throw ConfigurationError("http_listen or public_url is malformed")  // both are checked as they are read
        }
        try ListenCheck.check(address)
        let authToken: String
        do {
            authToken = try SecretFile.read(settings.twilioAuthTokenFile).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            throw ConfigurationError("twilio_auth_token_file: \(error)")
        }
        guard !authToken.isEmpty else { throw ConfigurationError("twilio_auth_token_file \(settings.twilioAuthTokenFile) is empty") }
        let twilio: TwilioClient
        do {
            twilio = try TwilioClient(configuration: .init(accountSID: settings.twilioAccountSID, baseURL: settings.twilioAPIURL),
                                      apiKey: try TwilioAPIKey.read(from: settings.twilioAPIKeyFile),
                                      transport: CurlHTTPS(caFile: settings.twilioCAFile, maxResponseBytes: 4 << 20))
        } catch {
            throw ConfigurationError("\(error)")
        }
        let repository = SQLiteTelephonyRepository(database: context.database)
        let transcript = Calltrace_Transcript_V1_CallServiceClient(context.peers["transcript"]!)
        let counters = TelephonyCounters()
        self.counters = counters
        let plan = CallPlan(urls: WebhookURLs(base: publicURL.base), voice: settings.voice)
        let calls = InboundCalls(repository: repository, transcript: transcript, jobs: context.jobs, plan: plan,
                                 clock: context.clock, counters: counters, logger: context.logger)
        guard let authorizer = context.authorizer else { throw ConfigurationError("peer identity is not configured") }
        let callbacks = Callbacks(repository: repository, transcript: transcript, twilio: twilio, authorizer: authorizer, keys: context.keys,
                                  plan: plan, clock: context.clock, logger: context.logger)
        rpcServices = [
            NumberHandler(twilio: twilio, trackingNumbers: .init(context.peers["transcript"]!), repository: repository, authorizer: authorizer, outbox: context.outbox, urls: plan.urls,
                          defaultBundle: settings.twilioBundleSID, defaultAddress: settings.twilioAddressSID, clock: context.clock),
            callbacks,
        ]
        transfer = RecordingTransfer(repository: repository, twilio: twilio, media: .init(context.peers["media"]!),
                                     clock: context.clock, counters: counters, logger: context.logger)
        // An outage of transcript or media delays these and loses nothing: tried again for about
        // two days (the queue's backoff reaches 10 minutes between attempts).
        context.jobs.register(CompleteCallHandler(transcript: transcript), maxAttempts: Self.jobAttempts)
        context.jobs.register(TransferRecordingHandler(transfer: transfer), maxAttempts: Self.jobAttempts)
        context.jobs.register(ForgetAnsweredHandler(repository: repository, clock: context.clock))
        try context.jobs.schedule(ForgetAnswered.kind, every: .seconds(3600), ForgetAnswered())
        let webhooks = TwilioWebhooks(calls: calls, callbacks: callbacks, signature: TwilioSignature(authToken: authToken), accountSID: settings.twilioAccountSID,
                                      publicBase: publicURL.base, repository: repository, keys: context.keys, clock: context.clock,
                                      counters: counters, logger: context.logger)
        listener = HTTPListener(address: address, serving: "Twilio's webhooks", logger: context.logger) { webhooks.router() }
    }

    /// Attempts of a call's completion or a recording's move before it is dead-lettered.
    static let jobAttempts = 300

    public var companions: [any ServiceLifecycle.Service] { [listener] }

    public func gauges() async -> [(name: String, value: Double)] {
        counters.gauges + [("telephony_recordings_at_twilio_over_a_day", Double(await transfer.stillAtTwilio()))]
    }

    /// The HTTP port once listening (tests bind port 0); nil when the listener failed.
    public func httpPort() async -> Int? { await listener.port() }
}

/// Hourly: answers kept for retries, calls long completed, and call backs staff never answered, forgotten.
struct ForgetAnswered: PayloadFreeJob {
    static let kind = "telephony.forget_answered"
}

struct ForgetAnsweredHandler: DurableJobHandler {
    let repository: any TelephonyRepository
    let clock: any WallClock
    func run(_ work: ForgetAnswered, job: Job) async throws -> JobOutcome {
        let cutoff = clock.nowUnixMs - TwilioWebhooks.receiptsKeptMs
        let abandoned = cutoff - 6 * TwilioWebhooks.receiptsKeptMs  // a week without its end
        let unanswered = clock.nowUnixMs - Callbacks.pendingKeptMs
        _ = try await repository.write { tx in
            try tx.deleteReceipts(before: cutoff) + tx.deleteCalls(completedBefore: cutoff, startedBefore: abandoned)
                + tx.deleteCallbacks(placedBefore: unanswered)
        }
        return .done
    }
}
