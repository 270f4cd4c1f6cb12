public import CallTraceTLS
import CallTraceProto
import CallTraceSync
import Foundation
public import Logging
import Synchronization

/// A ctrpc/1 server: mutual TLS on one TCP port, a router of methods, health and info.
///
/// Threads: one accepts connections; each connection gets one thread that performs its
/// handshake and then becomes its I/O thread, reading its frames. Handlers start on that I/O
/// thread (it is their task executor) and must not block it: database statements run on the
/// database's own queue, CPU-heavy or blocking work elsewhere (the service host's BlockingPool).
public final class RPCServer: Sendable {
    /// Everything a server is configured with. Every default is stated.
    public struct Configuration: Sendable {
        /// Listen host. Default `127.0.0.1`.
        public var host = "127.0.0.1"
        /// Listen port; 0 picks a free one (see `RPCServer.port`). Default 0.
        public var port = 0
        /// Our certificate, key and the deployment CA.
        public var credentials: TLSCredentials
        /// What `GetServerInfo` reports.
        public var info: ServerInfo
        public var limits = Limits.defaults
        /// The gateways (by name: `spiffe://<domain>/gateway/<name>`) whose `x-client-address`
        /// is believed: the web backend that sees end users' addresses. Default `["web"]`.
        public var clientAddressGateways: Set<String> = ["web"]

        public init(credentials: TLSCredentials, info: ServerInfo) {
            self.credentials = credentials
            self.info = info
        }
    }

    /// Who this server is, for `GetServerInfo`.
    public struct ServerInfo: Sendable {
        /// The service's short name, e.g. `identity`.
        public var serviceName: String
        /// The software version.
        public var version: String
        /// The database schema version (0 without a database).
        public var schemaVersion: UInt32

        public init(serviceName: String, version: String, schemaVersion: UInt32 = 0) {
            self.serviceName = serviceName
            self.version = version
            self.schemaVersion = schemaVersion
        }
    }

    /// Resource limits.
    public struct Limits: Sendable {
        /// Largest frame accepted. Default 4 MiB.
        public var maxFrameBytes = 4 << 20
        /// Message bytes a caller may send ahead on each call before we grant more. Default 1 MiB.
        public var initialWindowBytes = 1 << 20
        /// Established (authenticated) connections; more are refused with a RESOURCE_EXHAUSTED
        /// goaway. Default 1024, and never more than the process's descriptor limit allows
        /// (three descriptors each; see `RPCServer.effectiveMaxConnections`).
        public var maxConnections = 1024
        /// Established connections of one peer identity; more are refused like the above. Default 128.
        public var maxConnectionsPerPeer = 128
        /// Operator connections admitted beyond `maxConnections`, so `calltrace health` still
        /// answers on a full server. Default 8.
        public var reservedOperatorConnections = 8
        /// Connections still in their TLS handshake or settings exchange, in all; past it the
        /// oldest is cut. Default 64.
        public var maxPendingHandshakes = 64
        /// The same, from one source address. Default 16.
        public var maxPendingHandshakesPerAddress = 16
        /// Calls in flight per connection; more are refused with RESOURCE_EXHAUSTED. Default 256.
        public var maxConcurrentCallsPerConnection = 256
        /// Request bytes the calls in flight on one connection may hold: each unary or
        /// server-streaming call its request, each client-streaming call its window. A call
        /// past it is refused with RESOURCE_EXHAUSTED. Default 64 MiB.
        public var maxRequestBytesPerConnection = 64 << 20
        /// Bytes queued for a peer that does not read, past which the connection stops reading
        /// its requests until they drain. Default 16 MiB.
        public var maxOutboundBytesPerConnection = 16 << 20
        /// Time for a client to complete TLS and send its settings. Default 5 s.
        public var handshakeTimeout: Duration = .seconds(5)
        /// A connection with no calls for this long is closed. Default 5 min.
        public var idleTimeout: Duration = .seconds(300)
        /// A connection older than this gets a goaway and closes once its calls are done, so a
        /// revoked or expired certificate, or a rotated CA, takes effect within it. Default 1 h.
        public var maxConnectionAge: Duration = .seconds(3600)
        /// The longest deadline a call may ask for; a larger `timeout_ms` counts as this. Default 1 h.
        public var maxCallTimeout: Duration = .seconds(3600)

        public static var defaults: Limits { Limits() }
    }

    let core: ServerCore
    /// Nil for a server reached only in process (`init(inProcess:info:services:)`).
    private let listener: TCPListener?
    private let credentials: TLSCredentials?

    /// The port the server listens on; 0 for a server reached only in process.
    public var port: Int { listener?.port ?? 0 }
    /// Our own identity, from our certificate (or as given to an in-process server).
    public var identity: String { core.identity }
    /// `Limits.maxConnections`, lowered to what the process's descriptor limit can serve.
    public var effectiveMaxConnections: Int { core.maxConnections }

    /// Loads TLS material, binds the port and starts serving `services`.
    ///
    /// - Throws: `TLSError` naming the bad file, key mismatch, wrong CA or busy port.
    ///
    /// - Parameter serving: false for a server that is still starting (migrating its database):
    ///   health answers NOT_SERVING and application methods UNAVAILABLE until `setServing(true)`.
    public init(configuration: Configuration, services: [any RPCService], serving: Bool = true,
                logger: Logger = Logger(label: "calltrace.rpc")) throws {
        let tls = try TLSContext.shared(role: .server, credentials: configuration.credentials)
        guard let own = PeerIdentity(uri: tls.identity) else {
            throw TLSError(.configuration, "certificate identity \(tls.identity) is not spiffe://<trust-domain>/<kind>/<name>")
        }
        let core = ServerCore(tls: tls, identity: tls.identity, trustDomain: own.trustDomain, limits: configuration.limits,
                              info: configuration.info, log: logger, clientAddressGateways: configuration.clientAddressGateways)
        if core.maxConnections < configuration.limits.maxConnections {
            logger.warning("connections limited by the descriptor limit", metadata: [
                "max_connections": "\(core.maxConnections)", "configured": "\(configuration.limits.maxConnections)",
                "hint": "raise LimitNOFILE (systemd) or ulimit -n"])
        }
        Self.setUp(services, serving: serving, core: core)
        let listener = try TCPListener(host: configuration.host, port: configuration.port)
        self.listener = listener
        self.credentials = configuration.credentials
        self.core = core
        let thread = Thread { [core] in Self.acceptLoop(listener: listener, core: core) }
        thread.name = "ctrpc-accept"
        thread.start()
        logger.info("listening", metadata: ["address": "\(configuration.host):\(listener.port)", "identity": "\(tls.identity)"])
    }

    /// A server reached only in process, by `RPCClient(inProcess:as:)`: no port, no TLS, no
    /// certificates. Routing, peer policies, admission, limits, deadlines, flow control and
    /// drain are those of a server on a socket, so handlers can be exercised without one.
    ///
    /// - Parameter identity: the server's SPIFFE id, as its certificate would carry it; its
    ///   trust domain is the only one whose peers are served.
    /// - Throws: `TLSError(.configuration)` when `identity` is not
    ///   `spiffe://<trust-domain>/<kind>/<name>`.
    public init(inProcess identity: String, info: ServerInfo, limits: Limits = .defaults, services: [any RPCService],
                serving: Bool = true, clientAddressGateways: Set<String> = ["web"], logger: Logger = Logger(label: "calltrace.rpc")) throws {
        guard let own = PeerIdentity(uri: identity) else {
            throw TLSError(.configuration, "server identity \(identity) is not spiffe://<trust-domain>/<kind>/<name>")
        }
        let core = ServerCore(tls: nil, identity: identity, trustDomain: own.trustDomain, limits: limits, info: info, log: logger,
                              clientAddressGateways: clientAddressGateways)
        Self.setUp(services, serving: serving, core: core)
        self.listener = nil
        self.credentials = nil
        self.core = core
    }

    /// The method table (the ops services, then `services`) and the initial serving state.
    private static func setUp(_ services: [any RPCService], serving: Bool, core: ServerCore) {
        var router = RPCRouter()
        core.serving.store(serving, ordering: .relaxed)
        core.started.store(serving, ordering: .relaxed)
        OpsService(core: core).register(with: &router)
        for service in services { service.register(with: &router) }
        core.router = router
    }

    /// Reads the TLS material again — certificate, key, CA and revocation list — for the
    /// connections accepted from now on (SIGHUP in a service): a renewed certificate or a new
    /// CRL takes effect without a restart. Connections already open keep theirs until they
    /// reach `Limits.maxConnectionAge`.
    ///
    /// - Throws: `TLSError` when the material does not load or names another identity; the
    ///   server keeps serving with what it had.
    public func reloadCredentials() throws {
        guard let credentials else { throw TLSError(.configuration, "an in-process server has no TLS material to reload") }
        let fresh = try TLSContext.shared(role: .server, credentials: credentials)
        let current = identity
        guard fresh.identity == current else {
            throw TLSError(.configuration, "the reloaded certificate names \(fresh.identity), not \(current)")
        }
        core.tls.withLock { $0 = fresh }
    }

    /// Adds services to a server created with `serving: false`, before `setServing(true)`:
    /// a service host binds its port first and builds its services after migrating.
    public func install(_ services: [any RPCService]) {
        precondition(!core.started.load(ordering: .acquiring), "install services before the server starts serving")
        var router = core.router
        for service in services { service.register(with: &router) }
        core.router = router
    }

    /// Health: SERVING or NOT_SERVING for every name. Servers start SERVING.
    public func setServing(_ serving: Bool) {
        if serving { core.started.store(true, ordering: .releasing) }
        core.serving.store(serving, ordering: .releasing)
    }

    public var isServing: Bool { core.serving.load(ordering: .acquiring) }

    /// Values `GetMetrics` reports beside the call metrics (e.g. the audit outbox's backlog and
    /// dead letters), asked for on each request.
    public func reportGauges(_ provider: @escaping @Sendable () async -> [(name: String, value: Double)]) {
        core.gauges.withLock { $0 = provider }
    }

    /// Graceful stop: report NOT_SERVING, send every connection a goaway, refuse new application
    /// calls with UNAVAILABLE, let those in flight finish for up to `gracePeriod`, then end the
    /// rest with UNAVAILABLE and close every connection and the listener.
    ///
    /// Until then the server still accepts connections and answers health (`NOT_SERVING`), server
    /// info and metrics on old and new ones, so load balancers and `calltrace health` see the drain.
    public func shutdown(gracePeriod: Duration = .seconds(10)) async {
        setServing(false)
        core.stopping.store(true, ordering: .sequentiallyConsistent)
        for connection in core.allConnections() { connection.drainForShutdown(announce: true) }
        let deadline = ContinuousClock.now + gracePeriod
        while core.allConnections().contains(where: { $0.applicationCalls > 0 }) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        core.closed.store(true, ordering: .sequentiallyConsistent)
        listener?.shutdown()
        for connection in core.allConnections() { connection.terminate(RPCError(.unavailable, "server shut down")) }
        while !core.allConnections().isEmpty && ContinuousClock.now < deadline + .seconds(2) {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Immediate stop: no drain. Calls in flight end with UNAVAILABLE; connections close.
    public func stop() {
        core.stopping.store(true, ordering: .sequentiallyConsistent)
        core.closed.store(true, ordering: .sequentiallyConsistent)
        setServing(false)
        listener?.shutdown()
        for connection in core.allConnections() { connection.terminate(RPCError(.unavailable, "server stopped")) }
    }

    private static func acceptLoop(listener: TCPListener, core: ServerCore) {
        while let (fd, address) = listener.accept() {
            guard let ticket = core.handshakes.admit(fd: fd, address: HandshakeGate.host(of: address)) else {
                Glibc.close(fd)
                core.log.warning("connection refused: out of descriptors", metadata: ["peer_address": "\(address)"])
                continue
            }
            guard let tls = core.tls.withLock({ $0 }) else { continue }  // (a listener always has TLS)
            let thread = Thread { Self.serve(fd: fd, address: address, ticket: ticket, tls: tls, core: core) }
            thread.name = "ctrpc-conn"
            thread.stackSize = 512 * 1024
            thread.start()
        }
    }

    /// Handshake on this connection's own thread, then hand over to its I/O loop.
    private static func serve(fd: Int32, address: String, ticket: UInt64, tls: TLSContext, core: ServerCore) {
        let deadline = ContinuousClock.now + core.limits.handshakeTimeout
        do {
            // Whatever happens, the connection leaves the handshake budget when this returns.
            defer { core.handshakes.finish(ticket) }
            let stream = try TLSStream.accept(fd: fd, peerAddress: address, context: tls, timeout: core.limits.handshakeTimeout)
            guard let peer = PeerIdentity(uri: stream.peerIdentity), peer.trustDomain == core.trustDomain else {
                stream.shutdown()
                throw TLSError(.peerRefused, "peer identity \(stream.peerIdentity) is not in trust domain \(core.trustDomain)")
            }
            try establish(stream, peer: peer, deadline: deadline, core: core)
        } catch {
            core.log.notice("connection refused", metadata: ["peer_address": "\(address)", "reason": "\(error)"])
        }
    }

    /// An authenticated stream becomes a connection: settings both ways, the connection caps,
    /// then its I/O thread. The same for TLS and in-process streams.
    private static func establish(_ stream: any ByteStream, peer: PeerIdentity, deadline: ContinuousClock.Instant, core: ServerCore) throws {
        let frames = try FrameConnection(stream: stream, maxFrameBytes: core.limits.maxFrameBytes,
                                         maxOutboundBytes: core.limits.maxOutboundBytesPerConnection)
        var settings = WireFrame.Settings()
        settings.maxFrameBytes = UInt32(core.limits.maxFrameBytes)
        settings.initialWindowBytes = UInt32(core.limits.initialWindowBytes)
        settings.maxConcurrentCalls = UInt32(core.limits.maxConcurrentCallsPerConnection)
        let peerSettings = try frames.exchangeSettings(settings, deadline: deadline)
        let connection = ServerConnection(connection: frames, peer: peer, peerSettings: peerSettings, core: core)
        if let refusal = core.add(connection) {
            core.log.notice("connection refused", metadata: ["peer": "\(peer)", "peer_address": "\(stream.peerAddress)", "reason": "\(refusal.message)"])
            frames.refuse(refusal)
            return
        }
        frames.start(delegate: connection, name: "ctrpc-conn")
        if core.stopping.load(ordering: .sequentiallyConsistent) { connection.drainForShutdown(announce: false) }
    }

    /// Serves the server end of an in-process pipe for `peer` (`RPCClient(inProcess:as:)`), on a
    /// thread of its own as a socket's handshake is: the settings exchange waits for the client.
    /// `peer` stands where a verified certificate's identity would; another trust domain's is
    /// refused as over TLS, by closing.
    static func serve(inProcess stream: InProcessStream, peer: PeerIdentity, core: ServerCore) {
        let thread = Thread {
            do {
                guard peer.trustDomain == core.trustDomain else {
                    stream.shutdown()
                    throw TLSError(.peerRefused, "peer identity \(peer) is not in trust domain \(core.trustDomain)")
                }
                try establish(stream, peer: peer, deadline: ContinuousClock.now + core.limits.handshakeTimeout, core: core)
            } catch {
                core.log.notice("connection refused", metadata: ["peer_address": "\(stream.peerAddress)", "reason": "\(error)"])
            }
        }
        thread.name = "ctrpc-conn"
        thread.stackSize = 512 * 1024
        thread.start()
    }
}

/// State shared by the accept thread, the connections and the ops service.
final class ServerCore: @unchecked Sendable {
    let trustDomain: String
    /// The TLS context new connections handshake with (replaced by `reloadCredentials`); nil for
    /// a server reached only in process.
    let tls: Locked<TLSContext?>
    /// Our SPIFFE id (the certificate's; a reload keeps it).
    let identity: String
    let limits: RPCServer.Limits
    let info: RPCServer.ServerInfo
    let log: Logger
    let startedAt = ContinuousClock.now
    let metrics = CallMetrics()
    let gauges = Locked<(@Sendable () async -> [(name: String, value: Double)])?>(nil)
    let serving = Atomic<Bool>(true)
    /// Set when the server starts to drain: connections that finish their handshake after it
    /// are admitted already draining (health and info only).
    let stopping = Atomic<Bool>(false)
    /// Set when the server closes its connections: connections that finish their handshake after it are refused.
    let closed = Atomic<Bool>(false)
    /// False until the server first reports SERVING: application calls are refused meanwhile.
    let started = Atomic<Bool>(true)
    private let routes = Locked(RPCRouter())
    /// The method table; replaced only by `RPCServer.install` while the server is starting.
    var router: RPCRouter {
        get { routes.withLock { $0 } }
        set { routes.withLock { $0 = newValue } }
    }

    private struct Connections {
        var open: [ObjectIdentifier: ServerConnection] = [:]
        var perPeer: [PeerIdentity: Int] = [:]
        var operators = 0
    }
    private let connections = Locked(Connections())
    /// Connections still in their handshake.
    let handshakes: HandshakeGate
    /// `limits.maxConnections`, lowered to what the descriptor limit can serve.
    let maxConnections: Int

    /// Gateways whose `x-client-address` is believed.
    let clientAddressGateways: Set<String>

    init(tls: TLSContext?, identity: String, trustDomain: String, limits: RPCServer.Limits, info: RPCServer.ServerInfo, log: Logger,
         clientAddressGateways: Set<String> = ["web"]) {
        self.tls = Locked(tls)
        self.identity = identity
        self.clientAddressGateways = clientAddressGateways
        self.trustDomain = trustDomain
        self.limits = limits
        self.info = info
        self.log = log
        self.handshakes = HandshakeGate(limit: limits.maxPendingHandshakes, perAddressLimit: limits.maxPendingHandshakesPerAddress)
        // Each established connection holds three descriptors (socket, wake-up pipe), each
        // pending handshake two; some are kept for databases, logs and outgoing connections.
        let descriptors = DescriptorLimit.raiseToHard()
        let affordable = (descriptors - 128 - 2 * limits.maxPendingHandshakes - 3 * limits.reservedOperatorConnections) / 3
        self.maxConnections = max(1, min(limits.maxConnections, affordable))
    }

    /// Admits an established connection, or says why not: the server is full, or this peer has
    /// too many connections. Operators keep a few connections beyond the total.
    func add(_ connection: ServerConnection) -> RPCError? {
        connections.withLock { state in
            guard !closed.load(ordering: .sequentiallyConsistent) else { return RPCError(.unavailable, "server is shutting down") }
            let peer = connection.peer
            let isOperator = peer.kind == .operator
            let full = isOperator ? state.open.count >= maxConnections + limits.reservedOperatorConnections
                                  : state.open.count - state.operators >= maxConnections
            guard !full else {
                return RPCError(.resourceExhausted, "too many connections (limit \(maxConnections))")
            }
            guard state.perPeer[peer, default: 0] < limits.maxConnectionsPerPeer else {
                return RPCError(.resourceExhausted, "too many connections from \(peer) (limit \(limits.maxConnectionsPerPeer))")
            }
            state.open[ObjectIdentifier(connection)] = connection
            state.perPeer[peer, default: 0] += 1
            if isOperator { state.operators += 1 }
            return nil
        }
    }

    func connectionClosed(_ connection: ServerConnection) {
        connections.withLock { state in
            if state.open.removeValue(forKey: ObjectIdentifier(connection)) != nil {
                if connection.peer.kind == .operator { state.operators -= 1 }
                state.perPeer[connection.peer, default: 1] -= 1
                if state.perPeer[connection.peer] == 0 { state.perPeer[connection.peer] = nil }
            }
        }
    }

    func allConnections() -> [ServerConnection] { connections.withLock { Array($0.open.values) } }

    /// One finished or refused call, for the log.
    /// `stripe`: the connection's metrics table (`CallMetrics.stripe()`).
    func record(method: String, peer: PeerIdentity, callID: UInt64, org: String? = nil, code: StatusCode, duration: Duration, stripe: Int) {
        metrics.record(method: method, code: code, duration: duration, stripe: stripe)
        let level: Logger.Level = code == .ok ? .debug : .info
        log.log(level: level, "call", metadata: {
            var metadata: Logger.Metadata = [
                "method": "\(method)", "peer": "\(peer)", "call_id": "\(callID)", "status": "\(code)",
                "duration_us": "\(duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000)",
            ]
            if let org { metadata["org"] = "\(org)" }
            return metadata
        }())
    }
}

/// The process's limit on open descriptors (`RLIMIT_NOFILE`).
enum DescriptorLimit {
    /// Raises the soft limit to the hard one (at most 1,048,576), once per process, and returns
    /// the soft limit in force.
    static func raiseToHard() -> Int { raised }

    private static let raised: Int = {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        let wanted = min(limit.rlim_max, 1 << 20)
        if limit.rlim_cur < wanted {
            var raised = limit
            raised.rlim_cur = wanted
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return Int(clamping: limit.rlim_cur)
    }()
}
