public import CallTraceKeys
public import CallTraceRPC
public import CallTraceStorage
public import Logging
public import ServiceLifecycle

/// What a CallTrace service tells the host: its name, its settings, its schema, its RPC
/// handlers. The host knows no service: it reads each one's settings, migrates its tables, runs
/// the durable jobs it registers and serves its handlers, the same way for any.
public protocol CallTraceService: Sendable {
    /// Its own settings (besides those every service has), read from the same file, environment
    /// and flags; in `init`, `context.configuration[Settings.self]`.
    associatedtype Settings: ServiceSettings = NoSettings
    /// The short name, e.g. `identity`; also the last part of its SPIFFE id.
    static var name: String { get }
    /// The port it listens on by default.
    static var defaultPort: Int { get }
    /// Its own tables, in order, on the database's main track (the host's shared tables have a
    /// track of their own: `SharedSchema.track`).
    static var migrations: [Migration] { get }
    /// The other services it cannot work without, with what it needs each for: it refuses to
    /// start when one is not configured, instead of failing every call later.
    static var requiredPeers: [String: String] { get }
    /// The gateways among its peers (those that serve calls of their own, as the telephony
    /// gateway serves the web app's call backs): their certificates name them `gateway/<name>`,
    /// and a deployment file lists them under `gateways`. Default none.
    static var gatewayPeers: Set<String> { get }
    /// Builds the service over its opened database and keys: its rules, its handlers, and its
    /// durable jobs (`context.jobs.register`, `schedule`).
    init(context: ServiceContext) throws
    /// Its RPC services (health and info come with the host).
    var rpcServices: [any RPCService] { get }
    /// The kind its certificate must name: `spiffe://<domain>/<kind>/<name>`. A gateway (the web
    /// app, telephony) is served by the host as a service is, under its gateway certificate.
    static var certificateKind: PeerIdentity.Kind { get }
    /// What else runs beside its RPC server until the stop, such as a gateway's HTTP listener:
    /// they stop first on a stop (in reverse order), then the RPC server drains.
    var companions: [any ServiceLifecycle.Service] { get }
    /// Its own gauges for `GetMetrics` (the host adds its outbox's and job queue's), read when
    /// asked: e.g. the telephony gateway's recordings still at Twilio.
    func gauges() async -> [(name: String, value: Double)]
}

extension CallTraceService {
    public static var certificateKind: PeerIdentity.Kind { .service }
    public static var gatewayPeers: Set<String> { [] }
    public var companions: [any ServiceLifecycle.Service] { [] }
    public func gauges() async -> [(name: String, value: Double)] { [] }
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
    /// Clients of the configured peers, by service name, presenting this service's certificate:
    /// an `RPCClient`, or a `ReplicaSet` for a peer at several addresses.
    public let peers: [String: any RPCChannel]
    /// Asks identity about users' tokens (with a short allow cache); nil without an identity peer.
    public let authorizer: IdentityAuthorizer?
    /// The time the service's rules read (the system clock; a `TestClock` in tests).
    public let clock: any WallClock
    /// Threads for CPU-heavy or blocking work (scrypt, sealing, outgoing HTTP), off the I/O
    /// threads: `BlockingPool.shared`, or a test's own pool that it can hold.
    public let blocking: BlockingPool
}

extension ServiceContext {
    /// What a sweep run at start-up may judge abandoned, as a cutoff in Unix ms: on SQLite, all
    /// of it (nil: this process alone writes the database, and it serves nothing yet); on
    /// PostgreSQL, only what is older than `grace` by the service's clock, since another
    /// replica may be writing — its key or file made a moment before the row that names them.
    public func sweepCutoff(sparing grace: Duration) -> Int64? {
        configuration.databaseIsPostgres ? clock.nowUnixMs - grace.wholeMilliseconds : nil
    }
}

/// The software version every service reports.
public let callTraceVersion = "0.1.0"

