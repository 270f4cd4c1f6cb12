import CallTraceAPI
import CallTraceKeys
public import CallTraceRPC
public import CallTraceStorage
import CallTraceSync
import CallTraceTLS
import Foundation
public import Logging
public import ServiceLifecycle

/// One running service: its server, database, key store and audit forwarding. A process runs
/// one (`calltrace-<name> serve`); tests start any number in process, with a `TestClock`, and
/// reach them over real mutual TLS or, for domain and handler tests, over the in-process
/// transport (`ServiceTransport`).
public final class ServiceInstance: Sendable {
    public let server: RPCServer
    public let database: Database
    public let keyStore: Database
    public let outbox: AuditOutbox
    public let jobs: JobQueue
    /// The service itself (tests reach a gateway's listener through it).
    public let service: any CallTraceService
    /// What runs beside the server until the stop (`CallTraceService.companions`).
    public let companions: [any ServiceLifecycle.Service]
    /// The port it listens on (over the in-process transport, the one its address names).
    public let port: Int

    private init(server: RPCServer, port: Int, database: Database, keyStore: Database, outbox: AuditOutbox, jobs: JobQueue,
                 service: any CallTraceService) {
        self.server = server
        self.port = port
        self.database = database
        self.keyStore = keyStore
        self.outbox = outbox
        self.jobs = jobs
        self.service = service
        self.companions = service.companions
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
        try await start(service, configuration: configuration, logger: logger, clock: clock, blocking: blocking, transport: .tls)
    }

    /// The same over `transport`: the tests' way to run a deployment without sockets. Everything
    /// but the listener and the peers' connections is as above, the TLS material loaded and
    /// checked too.
    package static func start<Service: CallTraceService>(_ service: Service.Type, configuration: ServiceConfiguration,
                                                         logger: Logger, clock: any WallClock = SystemClock(),
                                                         blocking: BlockingPool = .shared,
                                                         transport: ServiceTransport) async throws -> ServiceInstance {
        let name = Service.name
        guard configuration.own is Service.Settings else {
            throw ConfigurationError("the configuration holds \(type(of: configuration.own)), not \(name)'s settings (\(Service.Settings.self))")
        }
        let address = try configuration.validated()
        for (peer, purpose) in Service.requiredPeers.sorted(by: { $0.key < $1.key }) where configuration.peers[peer] == nil {
            throw ConfigurationError("peer \(peer) is not configured; \(name) needs it \(purpose) (the deployment file's services.\(peer), config key peers.\(peer), or CALLTRACE_PEER_\(peer.uppercased())=host:port)")
        }
        let credentials = configuration.credentials!
        // Each check names its problem in one line: key file, TLS material, database, port.
        let masterKey = try MasterKey.load(path: configuration.masterKey!)
        _ = try TLSContext.shared(role: .server, credentials: credentials)
        let (database, keyStore, keys) = try await onStartupThread { () throws -> (Database, Database, KeyRing) in
            let database = try Database.open(configuration.database, passwordFile: configuration.databasePasswordFile)
            do {
                try database.checkSchema(knownUpTo: Service.migrations.map(\.version).max() ?? 0, tracks: [SharedSchema.track])
                // The master key must open the key store, and the key store must be the database's
                // own: never a new, empty one beside sealed data (`KeyStoreBinding`).
                let (keyStore, keys) = try KeyStoreBinding.openKeyStore(configuration: configuration, masterKey: masterKey, for: database, clock: clock)
                return (database, keyStore, keys)
            } catch {
                database.close()
                throw error
            }
        }
        var jobSettings = JobQueue.Configuration()
        jobSettings.lease = .seconds(configuration.jobLeaseSeconds)
        let jobs = JobQueue(database: database, clock: clock, configuration: jobSettings)
        let outbox = AuditOutbox(database: database, service: name, jobs: jobs)
        let server: RPCServer
        let peers: [String: any RPCChannel]
        do {
            let own = try TLSContext.shared(role: .client, credentials: credentials).identity
            // The certificate must name this very service: media never starts as identity, nor a
            // gateway as a service.
            let kind = Service.certificateKind
            guard let identity = PeerIdentity(uri: own), identity.kind == kind, identity.name == name else {
                throw ConfigurationError("certificate \(credentials.certificateChainPath) is for \(own), not spiffe://<trust-domain>/\(kind.rawValue)/\(name)")
            }
            let trustDomain = identity.trustDomain
            peers = try Dictionary(uniqueKeysWithValues: configuration.peers.map { peer, address in
                // A gateway that serves calls of its own (the telephony gateway's numbers and call
                // backs, for the web app) proves to be that gateway.
                let kind = Service.gatewayPeers.contains(peer) ? PeerIdentity.Kind.gateway : .service
                // Several addresses are one peer's replicas: calls spread across them.
                let clients = try (Deployment.addresses(address) ?? []).map { host, port in
                    let target = RPCClient.Target(host: host, port: port, identity: "spiffe://\(trustDomain)/\(kind.rawValue)/\(peer)")
                    return switch transport {
                    case .tls: try RPCClient(target: target, configuration: .init(credentials: credentials))
                    case .inProcess(let network): RPCClient(inProcess: network, target: target, as: identity)
                    }
                }
                return (peer, clients.count == 1 ? clients[0] : ReplicaSet(clients) as any RPCChannel)
            })
            var serverConfiguration = RPCServer.Configuration(
                credentials: credentials,
                info: .init(serviceName: name, version: callTraceVersion,
                            schemaVersion: UInt32(Service.migrations.map(\.version).max() ?? 0)))
            serverConfiguration.host = address.host
            serverConfiguration.port = address.port
            // The deployment's own gateways pass on the address they were told (the telephony
            // gateway, the web app's, for the people whose calls it makes to the services; never
            // one of its own making: it names none).
            serverConfiguration.clientAddressGateways = Set(configuration.credentialGateways).union(configuration.deploymentGateways)
            // The port opens first, answering NOT_SERVING while the schema migrates.
            switch transport {
            case .tls:
                server = try RPCServer(configuration: serverConfiguration, services: [], serving: false, logger: logger)
            case .inProcess(let network):
                server = try RPCServer(inProcess: own, info: serverConfiguration.info, limits: serverConfiguration.limits, services: [],
                                       serving: false, clientAddressGateways: serverConfiguration.clientAddressGateways, logger: logger)
                network.attach(server, at: "\(address.host):\(address.port)")
            }
        } catch {
            database.close()
            keyStore.close()
            throw error
        }
        let context = ServiceContext(database: database, keys: keys, outbox: outbox, jobs: jobs, configuration: configuration,
                                     logger: logger, peers: peers, authorizer: peers["identity"].map { IdentityAuthorizer(identity: $0) },
                                     clock: clock, blocking: blocking)
        let service: Service
        do {
            try await onStartupThread { try database.migrate(Service.migrations, tracks: [SharedSchema.track]) }
            service = try Service(context: context)
            server.install(service.rpcServices)
        } catch {
            server.stop()
            database.close()
            keyStore.close()
            throw error
        }
        if let compliance = peers["compliance"] { outbox.forward(to: compliance) }
        server.reportGauges { [service] in await outbox.gauges() + jobs.gauges() + service.gauges() }
        server.setServing(true)
        jobs.start(logger: logger)
        if configuration.keyStoreBesideDatabase {
            logger.warning("the key store is in the database's folder: a copy of that folder holds the keys a shred destroys; set key_store elsewhere",
                           metadata: ["key_store": "\(configuration.keyStorePath)"])
        }
        if configuration.keyStoreOnDatabaseServer {
            logger.warning("the key store is on the database's PostgreSQL server: a backup of that server holds the keys a shred destroys; keep it on another",
                           metadata: ["key_store": "\(configuration.keyStorePath)"])
        }
        let port = server.port == 0 ? address.port : server.port
        logger.notice("serving", metadata: ["address": "\(address.host):\(port)", "identity": "\(server.identity)",
                                            "schema_version": "\(database.schemaVersion)"])
        return ServiceInstance(server: server, port: port, database: database, keyStore: keyStore, outbox: outbox, jobs: jobs, service: service)
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

/// Runs start-up's blocking work (opening, checking and migrating the databases: on PostgreSQL
/// many round trips) on a thread of its own, never on Swift's cooperative pool, whose few threads
/// serve every task of the process: a test process starting services, or a replica migrating.
private func onStartupThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await handOff { finish in Thread { finish(Result { try work() }) }.start() }
}
