import CallTraceAPI
import CallTraceHTTP
import Hummingbird
import CallTraceOutbound
public import CallTraceRPC
public import CallTraceServiceHost
public import CallTraceStorage
import Logging
public import ServiceLifecycle

/// The web gateway: what a firm's staff open in a browser. It runs on the host as a service does
/// (settings, logs, keys, health and drain over ctrpc/1), under its gateway certificate
/// (`spiffe://<domain>/gateway/web`), and serves pages over HTTP behind nginx. It owns no call
/// data: every page is the answer of a service to the signed-in person's token.
/// `services/web/main.swift` runs it as a process; tests run it in process.
public struct WebService: CallTraceService {
    public typealias Settings = WebSettings
    public static let name = "web"
    public static let defaultPort = DefaultPorts.web
    public static let certificateKind = PeerIdentity.Kind.gateway
    public static let requiredPeers: [String: String] = [
        "identity": "to sign people in and check their sessions", "media": "to play recordings and share them",
        "transcript": "to list calls and show transcripts", "compliance": "to show the audit trail",
    ]
    /// The telephony gateway places the call backs people ask for here (optional: without it the
    /// call's page offers none).
    public static let gatewayPeers: Set<String> = ["telephony"]
    /// Its own tables: the firms' webhook subscriptions and their deliveries (no call data).
    public static let migrations = [Migration(version: 1, SQLiteWebhookRepository.schema)]

    let server: HTTPListener<Router<WebContext>>
    /// What the listener serves: its routes are the table the suite's cross-tenant matrix walks.
    let app: WebApp

    public init(context: ServiceContext) throws {
        let settings = context.configuration[Settings.self]
        guard let address = HTTPListenAddress(settings.httpListen), let publicURL = PublicURL(settings.publicURL) else {
            throw ConfigurationError("http_listen or public_url is malformed")  // both are checked as they are read
        }
        // Behind nginx on this machine without trusted_proxies, every browser would look like
        // nginx: one person's failed sign-ins would lock out the whole firm, and its address
        // list would mean nothing.
        if publicURL.base.hasPrefix("https://"), case .tcp(let host, _) = address, ["127.0.0.1", "::1", "localhost"].contains(host),
           settings.trustedProxies.isEmpty {
            throw ConfigurationError("trusted_proxies is empty, but public_url is https and http_listen is on loopback: set trusted_proxies to nginx's address (127.0.0.1), or every browser looks like nginx to identity")
        }
        try ListenCheck.check(address)
        let assets = try Assets.locate(configured: settings.assets)
        let backend = Backend(peers: context.peers)
        let webhooks = WebhookRules(repository: SQLiteWebhookRepository(database: context.database), keys: context.keys, jobs: context.jobs,
                                    backend: backend, clock: context.clock, blocking: context.blocking,
                                    transport: CurlHTTPS(caFile: settings.webhookCAFile, maxResponseBytes: 1 << 20),
                                    configuration: .init(allowPrivateAddresses: settings.webhookAllowPrivateAddresses),
                                    logger: context.logger)
        context.jobs.register(PollWebhooksHandler(rules: webhooks))
        context.jobs.register(DeliverWebhookHandler(rules: webhooks), maxAttempts: WebhookRules.deliveryAttempts)
        try context.jobs.schedule(PollWebhooks.kind, every: .seconds(settings.webhookPollSeconds), PollWebhooks())
        let statics = try assets.staticFiles()
        guard let script = statics.files[TagScript.name]?.body else { throw WebSetupError("the website tag's script is not in \(assets.folder)/Static (\(TagScript.name))") }
        let app = WebApp(backend: backend, webhooks: webhooks, renderer: try Renderer(library: try assets.templates()),
                         seal: try SessionSeal(keys: context.keys), publicURL: publicURL, statics: statics,
                         clock: context.clock, logger: context.logger, trustedProxies: Set(settings.trustedProxies.map(ClientAddress.canonical)),
                         tagScript: TagScript(script), tagLimits: TagRateLimits(clock: context.clock))
        self.app = app
        server = HTTPListener(address: address, serving: "pages", logger: context.logger) { app.router() }
    }

    public var rpcServices: [any RPCService] { [] }
    public var companions: [any ServiceLifecycle.Service] { [server] }

    /// The HTTP port once listening (tests bind port 0); nil when the listener failed.
    public func httpPort() async -> Int? { await server.port() }
}
