public import CallTraceRPC
public import CallTraceServiceHost
import CallTraceStorage
import CallTraceSync
import Foundation
public import Logging

/// A service started inside the test process, at a port of its own, with a temporary
/// PKI, master key, database and mail outbox (`ServiceSetup`), a `TestClock` its rules read,
/// and a log captured in memory. Reached over the in-process transport, or over real mutual TLS
/// like a process (`TestTransport`), but it starts in milliseconds and time moves only when the
/// test moves it.
public final class InProcessService: @unchecked Sendable {
    public let setup: ServiceSetup
    public let transport: TestTransport
    public let instance: ServiceInstance
    public let clock: TestClock
    public let log: CapturedLog
    public let name: String
    /// Starts the same service again on the same stores (see `restarted()`).
    private let again: @Sendable (Int, (inout ServiceConfiguration) -> Void) async throws -> InProcessService

    private init(setup: ServiceSetup, transport: TestTransport, instance: ServiceInstance, clock: TestClock, log: CapturedLog, name: String,
                 again: @escaping @Sendable (Int, (inout ServiceConfiguration) -> Void) async throws -> InProcessService) {
        self.setup = setup
        self.transport = transport
        self.instance = instance
        self.clock = clock
        self.log = log
        self.name = name
        self.again = again
    }

    /// Starts `service`; `peers` maps other services' names to their ports.
    /// - Parameters:
    ///   - transport: how it and its peers are reached; services that call each other share one.
    ///   - pki: share one deployment PKI between services that call each other.
    ///   - blocking: the pool for the service's blocking work; a test's own can be held full.
    ///   - logLevel: what the captured log keeps; benchmarks pass a deployment's `.info`, so
    ///     each call's debug line is not formatted into memory.
    public static func start<Service: CallTraceService>(_ service: Service.Type, clock: TestClock = TestClock(),
                                                        peers: [String: Int] = [:], pki: TemporaryPKI? = nil,
                                                        blocking: BlockingPool = .shared, logLevel: Logger.Level = .debug,
                                                        transport: TestTransport = .current,
                                                        adjust: (inout ServiceConfiguration) -> Void = { _ in }) async throws -> InProcessService {
        let setup = try ServiceSetup(service: Service.name, kind: Service.certificateKind.rawValue, pki: pki)
        // A port below the kernel's ephemeral range (`freePort`): `restarted()` binds it again,
        // and a port the kernel picked could meanwhile be another test's, or a connection's.
        var configuration = ServiceConfiguration.defaults(service: Service.name, port: try freePort(), settings: Service.Settings.self)
        configuration.certificate = setup.credentials.certificateChainPath
        configuration.privateKey = setup.credentials.privateKeyPath
        configuration.ca = setup.credentials.trustRootsPath
        configuration.masterKey = setup.masterKey
        configuration.database = setup.database
        if let server = TestDatabases.postgres {
            // A database of its own (and, for replicas, a key store beside it on the server).
            let name = "\(Service.name)_\(UUID().uuidString.prefix(8).lowercased())"
            configuration.database = try server.newDatabase(named: name)
            configuration.databasePasswordFile = server.passwordFile
            if TestDatabases.sharedKeyStore {
                configuration.keyStore = try server.newDatabase(named: name + "_keys")
                configuration.keyStorePasswordFile = server.passwordFile
            }
            configuration.dataFolderSetting = (setup.database as NSString).deletingLastPathComponent
        }
        // Identity's development mailbox (a service without that setting has no use for it).
        if configuration.allSettings.contains(where: { $0.key == "mail_outbox" }) { try configuration.set("mail_outbox", setup.mailbox) }
        configuration.peers = peers.mapValues { "127.0.0.1:\($0)" }
        // The same code at a lower work factor (identity's scrypt at 1/32): the suite stays fast (process tests keep the real cost).
        configuration.own.lowerCostsForTests()
        for peer in Service.requiredPeers.keys where configuration.peers[peer] == nil {
            configuration.peers[peer] = "127.0.0.1:\(ServiceSetup.nothingListens)"
        }
        adjust(&configuration)
        return try await start(service, setup: setup, transport: transport, configuration: configuration, clock: clock, blocking: blocking,
                               logLevel: logLevel)
    }

    private static func start<Service: CallTraceService>(_ service: Service.Type, setup: ServiceSetup, transport: TestTransport,
                                                         configuration: ServiceConfiguration, clock: TestClock, blocking: BlockingPool,
                                                         logLevel: Logger.Level) async throws -> InProcessService {
        let log = CapturedLog()
        let instance = try await ServiceInstance.start(service, configuration: configuration, logger: log.logger(level: logLevel), clock: clock,
                                                       blocking: blocking, transport: transport == .tls ? .tls : .inProcess(network))
        return InProcessService(setup: setup, transport: transport, instance: instance, clock: clock, log: log, name: Service.name) { port, adjust in
            var configuration = configuration
            configuration.listen = "127.0.0.1:\(port)"
            adjust(&configuration)
            return try await start(service, setup: setup, transport: transport, configuration: configuration, clock: clock, blocking: blocking,
                                   logLevel: logLevel)
        }
    }

    /// Where the services started over the in-process transport are, by the address they would
    /// listen on: ports from `freePort`, one per service in the test process.
    private static let network = InProcessNetwork()

    /// After `stop()`: the same service started again on the same port, database, keys and
    /// clock — what a restart of the process leaves, in milliseconds — with `adjust`'s changes.
    public func restarted(adjust: (inout ServiceConfiguration) -> Void = { _ in }) async throws -> InProcessService {
        try await again(instance.port, adjust)
    }

    /// Another replica of this service, as a second process of a deployment would be: the same
    /// configuration (database, key store, master key, peers) and clock, at a port of its own.
    /// Only on PostgreSQL with a shared key store (`TestDatabases.postgres`, `sharedKeyStore`):
    /// a SQLite database or key store is one process's.
    public func replica(adjust: (inout ServiceConfiguration) -> Void = { _ in }) async throws -> InProcessService {
        try await again(try freePort(), adjust)
    }

    /// A client presenting `identity` (default: the `web` gateway), kept for this instance's
    /// life and shared by later calls naming the same identity, as a gateway keeps its one
    /// connection: a test's many calls do not each pay a new TLS handshake.
    public func client(identity: String = TemporaryPKI.identity("gateway", "web")) throws -> RPCClient {
        if let known = clients.withLock({ $0[identity] }) { return known }
        let made = try newClient(identity: identity)
        return clients.withLock { clients in
            if let known = clients[identity] { return known }
            clients[identity] = made
            return made
        }
    }

    /// A client of its own, on a connection of its own (a test that closes it, or needs a
    /// connection no other call has used). In process, it presents `identity` where its
    /// certificate would.
    public func newClient(identity: String = TemporaryPKI.identity("gateway", "web")) throws -> RPCClient {
        let target = RPCClient.Target(host: "127.0.0.1", port: instance.port, identity: TemporaryPKI.identity(setup.kind, name))
        switch transport {
        case .tls:
            return try RPCClient(target: target, configuration: .init(credentials: try setup.pki.credentials(for: identity)))
        case .inProcess:
            guard let peer = PeerIdentity(uri: identity) else { throw ConfigurationError("\(identity) is not spiffe://<trust-domain>/<kind>/<name>") }
            return RPCClient(inProcess: Self.network, target: target, as: peer)
        }
    }

    private let clients = Locked<[String: RPCClient]>([:])

    public func stop() async {
        await instance.stop(gracePeriod: .seconds(5))
    }
}

extension InProcessService {
    /// What the service's database holds: a SQLite file and its write-ahead log byte for byte;
    /// on PostgreSQL, every live value of every table (sealed bytes as they are, text as UTF-8;
    /// not the server's files, its dead rows or its log). For the "nothing in the clear" checks.
    public func storedBytes() throws -> Data {
        let database = instance.database
        guard database.dialect == .postgres else {
            let file = try Data(contentsOf: URL(fileURLWithPath: database.path))
            return file + ((try? Data(contentsOf: URL(fileURLWithPath: database.path + "-wal"))) ?? Data())
        }
        return try database.sync { db in
            try db.tableNames().sorted().reduce(into: Data()) { bytes, table in
                for value in try db.query("SELECT * FROM \"\(table)\"").flatMap(\.allValues) {
                    switch value {
                    case .text(let text): bytes.append(Data(text.utf8))
                    case .blob(let blob): bytes.append(blob)
                    default: break
                    }
                    bytes.append(0)
                }
            }
        }
    }
}
