public import CallTraceRPC
import Foundation
import CallTraceSync

/// A service as a process of its own on its `ServiceSetup`'s stores and port, which a test
/// kills with SIGKILL at any moment and starts again on the same stores, as an operator's
/// supervisor would.
public final class ServiceProcess: ServiceEndpoint, @unchecked Sendable {
    public let setup: ServiceSetup
    /// Where its peers are (`CALLTRACE_PEER_*`).
    public let environment: [String: String]
    private let running = Locked<RunningProcess?>(nil)
    private let clients = Locked<[String: RPCClient]>([:])

    public init(_ setup: ServiceSetup, environment: [String: String]) {
        self.setup = setup
        self.environment = environment
    }

    /// Starts it (again), and waits until it answers SERVING.
    public func start() async throws {
        let process = try setup.start(setup.flags + ["--log-format", "json"], environment: environment)
        running.withLock { $0 = process }
        try await setup.waitUntilServing(try setup.client())
    }

    /// kill -9; how it ended (128 + SIGKILL), nil if it did not.
    @discardableResult
    public func kill() async -> Int32? {
        guard let process = running.withLock({ $0 }) else { return nil }
        process.signal(SIGKILL)
        return await process.waitForExit()?.status
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

    public init() async throws {
        let pki = try TemporaryPKI()
        self.pki = pki
        let setups = try Dictionary(uniqueKeysWithValues: Self.names.map { ($0, try ServiceSetup(service: $0, pki: pki)) })
        let peers = Dictionary(uniqueKeysWithValues: setups.map { ("CALLTRACE_PEER_\($0.key.uppercased())", "127.0.0.1:\($0.value.port)") })
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
}
