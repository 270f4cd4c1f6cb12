public import CallTraceRPC
import CallTraceStorage
import CallTraceSync
import Foundation

/// A service as a process of its own on its `ServiceSetup`'s stores and port, which a test
/// kills with SIGKILL at any moment and starts again on the same stores, as an operator's
/// supervisor would.
public final class ServiceProcess: ServiceEndpoint, @unchecked Sendable {
    public let setup: ServiceSetup
    /// Where its peers are (`CALLTRACE_PEER_*`).
    public let environment: [String: String]
    /// Its own flags beyond the setup's (a gateway's HTTP listener, say).
    public let extraFlags: [String]
    private let running = Locked<RunningProcess?>(nil)
    private let clients = Locked<[String: RPCClient]>([:])

    public init(_ setup: ServiceSetup, environment: [String: String], flags: [String] = []) {
        self.setup = setup
        self.environment = environment
        extraFlags = flags
    }

    /// Starts it (again), and waits until it answers SERVING.
    public func start() async throws {
        let process = try setup.start(setup.flags + extraFlags + ["--log-format", "json"], environment: environment)
        running.withLock { $0 = process }
        try await setup.waitUntilServing(try setup.client())
    }

    /// Its latest run's process id, while it runs.
    public var pid: pid_t? { running.withLock { $0?.pid } }

    /// Waits until its latest run wrote `text` (a line of its log).
    public func waitForOutput(containing text: String) async -> Bool {
        guard let process = running.withLock({ $0 }) else { return false }
        return await process.waitForOutput(containing: text)
    }

    /// kill -9; how it ended (128 + SIGKILL), nil if it did not.
    @discardableResult
    public func kill() async -> Int32? {
        guard let process = running.withLock({ $0 }) else { return nil }
        process.signal(SIGKILL)
        return await process.waitForExit()?.status
    }

    /// SIGTERM, as a supervisor stops it: it drains and exits; how it ended. One that has not
    /// ended within a minute is killed (SIGKILL) and answers nil.
    @discardableResult
    public func stop() async -> Int32? {
        guard let process = running.withLock({ $0 }) else { return nil }
        process.signal(SIGTERM)
        if let ended = await process.waitForExit() { return ended.status }
        process.signal(SIGKILL)
        _ = await process.waitForExit()
        return nil
    }

    /// What its latest run wrote so far (its log), standard output then standard error.
    public var log: String {
        guard let process = running.withLock({ $0 }) else { return "" }
        return process.stdout + process.stderr
    }

    /// Clients reconnect by themselves after a restart, so one per identity serves the whole test.
    public func client(identity: String) throws -> RPCClient {
        if let known = clients.withLock({ $0[identity] }) { return known }
        let made = try setup.client(identity: identity)
        return clients.withLock { clients in
            if let known = clients[identity] { return known }
            clients[identity] = made
            return made
        }
    }

    /// The gateway most of a firm's calls come through.
    public func client() throws -> RPCClient { try client(identity: TemporaryPKI.identity("gateway", "web")) }
}

/// Identity, media, transcript and compliance, each a process of its own over one PKI, calling
/// each other through their ports over mutual TLS: a deployment whose services a test kills.
public final class ProcessDeployment: @unchecked Sendable {
    public static let names = ["identity", "media", "transcript", "compliance"]
    public let pki: TemporaryPKI
    public let services: [String: ServiceProcess]
    /// Where the four are (`CALLTRACE_PEER_*`), for a gateway started beside them.
    public let peerEnvironment: [String: String]

    public init() async throws {
        let pki = try TemporaryPKI()
        self.pki = pki
        let setups = try Dictionary(uniqueKeysWithValues: Self.names.map { ($0, try ServiceSetup(service: $0, pki: pki)) })
        let peers = Dictionary(uniqueKeysWithValues: setups.map { ("CALLTRACE_PEER_\($0.key.uppercased())", "127.0.0.1:\($0.value.port)") })
        peerEnvironment = peers
        services = setups.mapValues { ServiceProcess($0, environment: peers) }
        for name in Self.names { try await services[name]!.start() }
    }

    public var identity: ServiceProcess { services["identity"]! }
    public var media: ServiceProcess { services["media"]! }
    public var transcript: ServiceProcess { services["transcript"]! }
    public var compliance: ServiceProcess { services["compliance"]! }

    /// Where media keeps its sealed recordings (beside its database, by default).
    public var recordingsFolder: String { (media.setup.database as NSString).deletingLastPathComponent + "/recordings" }
    /// Where compliance keeps its sealed bundles.
    public var bundlesFolder: String { (compliance.setup.database as NSString).deletingLastPathComponent + "/bundles" }

    public func stop() async {
        for service in services.values { await service.kill() }
    }

    /// What is still busy in the four services' databases (and `others`', by name): a durable
    /// job running, due or retrying, or an audit event not yet sent; nil when all are idle.
    public func busy(also others: [String: String] = [:]) throws -> String? {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var found: [String] = []
        let databases = Self.names.map { ($0, services[$0]!.setup.database) } + others.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        for (name, path) in databases {
            for row in try Database.query(readOnly: path, """
                SELECT kind, state, attempts FROM jobs WHERE state = 'running' OR (state = 'ready' AND (attempts > 0 OR run_at_unix_ms <= ?))
                """, bindings: [now]) {
                found.append("\(name) job \(row.text("kind") ?? "") \(row.text("state") ?? "") after \(row.int("attempts") ?? 0) attempts")
            }
            let unsent = try Database.query(readOnly: path, "SELECT COUNT(*) AS n FROM audit_outbox")[0].int("n") ?? 0
            if unsent > 0 { found.append("\(name): \(unsent) audit events unsent") }
        }
        return found.isEmpty ? nil : found.joined(separator: "; ")
    }
}
