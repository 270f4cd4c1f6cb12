public import CallTraceProto
public import CallTraceTLS
import CallTraceSync
import Foundation
public import SwiftProtobuf

/// A client of one ctrpc/1 server: one multiplexed connection, opened on first use and
/// reopened with backoff after it breaks. Safe to share between many concurrent callers.
public final class RPCClient: RPCChannel {
    /// Where the server is and who it must prove to be.
    public struct Target: Sendable, Hashable {
        public var host: String
        public var port: Int
        /// The SPIFFE id the server's certificate must carry, e.g. `spiffe://example.test/service/identity`.
        public var identity: String

        public init(host: String, port: Int, identity: String) {
            self.host = host
            self.port = port
            self.identity = identity
        }
    }

    /// Client settings. Every default is stated.
    public struct Configuration: Sendable {
        /// Our certificate, key and the deployment CA.
        public var credentials: TLSCredentials
        /// TCP connect plus TLS handshake plus settings exchange. Default 5 s.
        public var connectTimeout: Duration = .seconds(5)
        /// First wait after a failed connection attempt. Default 100 ms.
        public var initialBackoff: Duration = .milliseconds(100)
        /// Longest wait between attempts. Default 5 s.
        public var maxBackoff: Duration = .seconds(5)
        /// Largest frame we accept from the server. Default 4 MiB.
        public var maxFrameBytes = 4 << 20
        /// Response bytes the server may send ahead per call. Default 1 MiB.
        public var initialWindowBytes = 1 << 20
        /// Attempts for an idempotent call that fails with UNAVAILABLE, the first included,
        /// all within the call's timeout. Default 4.
        public var maxAttempts = 4

        public init(credentials: TLSCredentials) {
            self.credentials = credentials
        }
    }

    public let target: Target
    let configuration: Configuration
    private let dialer: Dialer

    /// How a connection is opened.
    private enum Dialer: Sendable {
        /// TCP and mutual TLS to `target`.
        case tls(TLSContext)
        /// A pipe to a server in this process, presenting `peer` where a certificate would.
        case inProcess(ServerCore, peer: PeerIdentity)
        /// A pipe to the server `network` has at the target's address when connecting.
        case network(InProcessNetwork, peer: PeerIdentity)
    }

    private enum ConnectionState {
        case idle
        /// `lastDelay` is the backoff before this attempt (zero for a first attempt).
        case connecting([Waiter], lastDelay: Duration)
        case ready(ClientConnection)
        /// The last attempt failed; the next may start at `retryAt`.
        case backingOff(retryAt: ContinuousClock.Instant, delay: Duration, error: RPCError)
        case closed
    }
    private let state = Locked(ConnectionState.idle)

    /// - Throws: `TLSError(.configuration)` when our TLS material is unusable.
    public init(target: Target, configuration: Configuration) throws {
        self.target = target
        self.configuration = configuration
        self.dialer = .tls(try TLSContext.shared(role: .client, credentials: configuration.credentials))
    }

    /// A client of `server` in this process, calling as `peer`: no socket and no TLS, so tests
    /// can exercise a server's routing, peer policies and handlers without certificates.
    /// Connections, calls, deadlines, flow control, retries and drain behave as over TLS.
    public convenience init(inProcess server: RPCServer, as peer: PeerIdentity) {
        self.init(target: Target(host: "in-process", port: server.port, identity: server.identity), dialer: .inProcess(server.core, peer: peer))
    }

    /// A client of the server `network` has at `target`'s `host:port`, calling as `peer`: no
    /// socket and no TLS, the server's identity checked against `target.identity` as a
    /// certificate's would be. Nothing serving there is a refused connection (UNAVAILABLE,
    /// retried as over TCP).
    public convenience init(inProcess network: InProcessNetwork, target: Target, as peer: PeerIdentity) {
        self.init(target: target, dialer: .network(network, peer: peer))
    }

    private init(target: Target, dialer: Dialer) {
        self.target = target
        // The timeouts, windows and retries of any client; the credentials are never read.
        self.configuration = Configuration(credentials: TLSCredentials(certificateChainPath: "", privateKeyPath: "", trustRootsPath: ""))
        self.dialer = dialer
    }

    /// Closes the connection; calls in flight fail with UNAVAILABLE, later calls too.
    public func close() {
        let current = state.withLock { state -> ConnectionState in
            defer { state = .closed }
            return state
        }
        switch current {
        case .ready(let connection): connection.connection.close()
        case .connecting(let waiters, _):
            for waiter in waiters { waiter.resume(with: .failure(RPCError(.unavailable, "client closed"))) }
        default: break
        }
    }

    deinit { close() }

    // MARK: Calls

    /// Calls a unary method. Idempotent methods are retried on UNAVAILABLE within the timeout.
    public func unary<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, options: CallOptions = CallOptions()
    ) async throws -> Response {
        let payload = try encode(request)
        let deadline = options.effectiveDeadline()
        var attempt = 1
        var backoff = configuration.initialBackoff
        while true {
            do {
                let call = try await start(method.info, deadline: deadline, options: options, firstMessage: payload, endStream: true)
                return try await call.withCancellation { try await self.singleResponse(call) }
            } catch let error as RPCError where error.code == .unavailable && error.isTransient && method.info.isIdempotent
                        && !options.failFast && attempt < configuration.maxAttempts {
                let pause = Self.jittered(backoff)
                if let deadline, ContinuousClock.now + pause >= deadline { throw error }
                try await Task.sleep(for: pause)
                attempt += 1
                backoff = min(backoff * 2, configuration.maxBackoff)
            }
        }
    }

    /// Calls a server-streaming method; `handle` reads the responses as they arrive.
    public func serverStreaming<Request, Response, Result: Sendable>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, options: CallOptions = CallOptions(),
        handle: (ResponseStream<Response>) async throws -> Result
    ) async throws -> Result {
        let call = try await start(method.info, deadline: options.effectiveDeadline(), options: options,
                                   firstMessage: try encode(request), endStream: true)
        return try await call.withCancellation {
            let result = try await handle(ResponseStream(call: call))
            // Drain to the final status so a failure after the last message is not lost.
            while try await call.inbox.next() != nil {}
            return result
        }
    }

    /// Calls a client-streaming method; `send` writes the requests, then the response is awaited.
    public func clientStreaming<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, options: CallOptions = CallOptions(),
        send: (RequestWriter<Request>) async throws -> Void
    ) async throws -> Response {
        let call = try await start(method.info, deadline: options.effectiveDeadline(), options: options,
                                   firstMessage: nil, endStream: false)
        return try await call.withCancellation {
            do {
                try await send(RequestWriter(call: call))
                var end = WireFrame(callID: call.id)
                end.endStream = true
                try call.send(end)
            } catch {
                // A status from the server (e.g. PERMISSION_DENIED) explains more than our send failure.
                if let status = call.finalStatus, status.code != .ok { throw status }
                call.cancel()
                throw error
            }
            return try await self.singleResponse(call)
        }
    }

    // MARK: Internals

    private func encode<M: SwiftProtobuf.Message>(_ message: M) throws -> Data {
        do { return try message.serializedBytes() } catch {
            throw RPCError(.invalidArgument, "request cannot be serialised")
        }
    }

    private func singleResponse<Response: SwiftProtobuf.Message>(_ call: ClientCall) async throws -> Response {
        guard let data = try await call.inbox.next() else {
            throw RPCError(.internal, "server ended the call without a response")
        }
        while try await call.inbox.next() != nil {}
        do {
            return try Response(serializedBytes: data)
        } catch {
            throw RPCError(.internal, "response is not a valid \(Response.protoMessageName)")
        }
    }

    /// Opens a call: header, and for unary and server-streaming calls the request, in one frame.
    private func start(_ method: MethodInfo, deadline: ContinuousClock.Instant?, options: CallOptions,
                       firstMessage: Data?, endStream: Bool) async throws -> ClientCall {
        try Task.checkCancellation()
        if let deadline, deadline <= .now { throw RPCError(.deadlineExceeded, "deadline exceeded before the call started") }
        let connection: ClientConnection
        let connectDeadline = options.connectWithin.map { within in deadline.map { min($0, .now + within) } ?? .now + within } ?? deadline
        do {
            connection = try await self.connection(deadline: connectDeadline, failFast: options.failFast)
        } catch var error as RPCError where error.code == .unavailable || error.code == .deadlineExceeded {
            error.neverSent = true  // no connection: nothing was written
            throw error
        }
        let streamsRequests = firstMessage == nil
        guard let call = connection.register(deadline: deadline, make: {
            ClientCall(id: $0, owner: connection, streamsRequests: streamsRequests)
        }) else {
            var error = connection.closingStatus ?? RPCError(.unavailable, "connection is closing")
            error.neverSent = error.code == .unavailable
            throw error
        }
        var header = WireFrame.Header(method: method.fullName, metadata: options.metadata.entries)
        if let deadline {
            let remaining = ContinuousClock.now.duration(to: deadline)
            header.timeoutMs = UInt64(max(1, remaining.components.seconds * 1000
                                          + remaining.components.attoseconds / 1_000_000_000_000_000))
        }
        var frame = WireFrame(callID: call.id)
        frame.header = header
        frame.message = firstMessage
        frame.endStream = endStream
        do {
            try call.checkSize(of: frame)
            try call.send(frame)
        } catch {
            connection.remove(call.id)
            throw error
        }
        return call
    }

    /// The ready connection, opening one if needed (one attempt at a time, callers share it).
    /// After a failed attempt, callers wait out the back-off within their deadline; a fail-fast
    /// caller makes an attempt at once instead.
    private func connection(deadline: ContinuousClock.Instant?, failFast: Bool) async throws -> ClientConnection {
        while true {
            enum Next { case use(ClientConnection), wait(Duration, RPCError), connect, join }
            let next = try state.withLock { state -> Next in
                switch state {
                case .ready(let connection):
                    if connection.isUsable { return .use(connection) }
                    state = .idle
                    return .connect
                case .connecting: return .join
                case .idle: return .connect
                case .backingOff(let retryAt, _, let error):
                    let now = ContinuousClock.now
                    return retryAt <= now || failFast ? .connect : .wait(now.duration(to: retryAt), error)
                case .closed: throw RPCError(.unavailable, "client closed")
                }
            }
            switch next {
            case .use(let connection):
                return connection
            case .wait(let pause, let error):
                if let deadline, ContinuousClock.now + pause >= deadline { throw error }
                try await Task.sleep(for: pause)
            case .connect, .join:
                return try await waitForConnection(deadline: deadline)
            }
        }
    }

    /// Joins (or starts) the connection attempt; gives up at the call's own deadline, leaving
    /// the attempt running for later calls.
    private func waitForConnection(deadline: ContinuousClock.Instant?) async throws -> ClientConnection {
        let waiter = Waiter()
        let timer = deadline.map { deadline in
            Task { [weak self] in
                try await Task.sleep(until: deadline)
                self?.abandon(waiter, RPCError(.deadlineExceeded, "deadline exceeded while connecting"))
            }
        }
        defer { timer?.cancel() }
        await withCheckedContinuation { continuation in
            waiter.install(continuation)
            let startAttempt = state.withLock { state -> Bool in
                switch state {
                case .connecting(var waiters, let lastDelay):
                    waiters.append(waiter)
                    state = .connecting(waiters, lastDelay: lastDelay)
                    return false
                case .ready(let connection) where connection.isUsable:
                    waiter.resume(with: .success(connection))
                    return false
                case .closed:
                    waiter.resume(with: .failure(RPCError(.unavailable, "client closed")))
                    return false
                case .backingOff(_, let delay, _):
                    state = .connecting([waiter], lastDelay: delay)
                    return true
                default:
                    state = .connecting([waiter], lastDelay: .zero)
                    return true
                }
            }
            if startAttempt { connectOnThread() }
        }
        return try waiter.outcome.get()
    }

    /// A caller waiting for the connection attempt. Its outcome is set once, by whichever comes
    /// first (the attempt, the deadline, a close), possibly before the continuation is installed;
    /// the caller reads it under the lock after resuming. Handing the connection over under the
    /// lock, not through the continuation, makes the connect thread's work on it visible to
    /// ThreadSanitizer too: a continuation's hand-off runs in the uninstrumented concurrency
    /// runtime, so TSan saw every first call on a new connection as a race.
    final class Waiter: @unchecked Sendable {
        private var continuation: CheckedContinuation<Void, Never>?
        private var result: Result<ClientConnection, RPCError>?
        private let lock = NSLock()

        func install(_ continuation: CheckedContinuation<Void, Never>) {
            lock.lock()
            guard result == nil else {
                lock.unlock()
                return continuation.resume()
            }
            self.continuation = continuation
            lock.unlock()
        }

        func resume(with result: Result<ClientConnection, RPCError>) {
            lock.lock()
            guard self.result == nil else { return lock.unlock() }
            self.result = result
            let continuation = self.continuation
            self.continuation = nil
            lock.unlock()
            continuation?.resume()
        }

        /// Once resumed, what the attempt came to.
        var outcome: Result<ClientConnection, RPCError> {
            lock.withLock { result ?? .failure(RPCError(.internal, "a connection waiter resumed without an outcome")) }
        }
    }

    private func abandon(_ waiter: Waiter, _ error: RPCError) {
        state.withLock { state in
            if case .connecting(let waiters, let lastDelay) = state {
                state = .connecting(waiters.filter { $0 !== waiter }, lastDelay: lastDelay)
            }
        }
        waiter.resume(with: .failure(error))
    }

    /// Handshakes block, so they run on a thread of their own.
    private func connectOnThread() {
        let thread = Thread { [self] in
            let result: Result<ClientConnection, RPCError>
            do {
                result = .success(try self.openConnection())
            } catch let error as TLSError {
                var failure = RPCError(.unavailable, "cannot reach \(target.host):\(target.port): \(error.message)")
                // A refused certificate or identity is not a passing outage: calls are not retried on it.
                failure.isTransient = error.kind != .peerRefused
                result = .failure(failure)
            } catch {
                result = .failure(RPCError.from(error))
            }
            let waiters = state.withLock { state -> [Waiter] in
                guard case .connecting(let waiters, let previous) = state else { return [] }
                switch result {
                case .success(let connection):
                    state = .ready(connection)
                case .failure(let error):
                    let delay = previous == .zero ? configuration.initialBackoff : min(previous * 2, configuration.maxBackoff)
                    state = .backingOff(retryAt: .now + Self.jittered(delay), delay: delay, error: error)
                }
                return waiters
            }
            if waiters.isEmpty, case .success(let connection) = result, case .closed = state.withLock({ $0 }) {
                connection.connection.close()
            }
            for waiter in waiters { waiter.resume(with: result) }
        }
        thread.name = "ctrpc-connect"
        thread.start()
    }

    /// The client end of a new pipe whose server end `server` serves for `peer`.
    private static func pipe(to server: ServerCore, as peer: PeerIdentity) -> any ByteStream {
        let (client, serverEnd) = InProcessStream.pair()
        RPCServer.serve(inProcess: serverEnd, peer: peer, core: server)
        return client
    }

    private func openConnection() throws -> ClientConnection {
        let deadline = ContinuousClock.now + configuration.connectTimeout
        let stream: any ByteStream
        switch dialer {
        case .tls(let tls):
            let tlsStream = try TLSStream.connect(host: target.host, port: target.port, context: tls, timeout: configuration.connectTimeout)
            guard tlsStream.peerIdentity == target.identity else {
                tlsStream.shutdown()
                throw TLSError(.peerRefused, "server identity is \(tlsStream.peerIdentity), expected \(target.identity)")
            }
            stream = tlsStream
        case .inProcess(let server, let peer):
            stream = Self.pipe(to: server, as: peer)
        case .network(let network, let peer):
            guard let server = network.server(at: "\(target.host):\(target.port)") else {
                throw TLSError(.socket, "nothing serves \(target.host):\(target.port) in this process")
            }
            guard server.identity == target.identity else {
                throw TLSError(.peerRefused, "server identity is \(server.identity), expected \(target.identity)")
            }
            stream = Self.pipe(to: server, as: peer)
        }
        let frames = try FrameConnection(stream: stream, maxFrameBytes: configuration.maxFrameBytes)
        var settings = WireFrame.Settings()
        settings.maxFrameBytes = UInt32(configuration.maxFrameBytes)
        settings.initialWindowBytes = UInt32(configuration.initialWindowBytes)
        let serverSettings: WireFrame.Settings
        do {
            serverSettings = try frames.exchangeSettings(settings, deadline: deadline)
        } catch {
            stream.shutdown()
            throw error
        }
        let connection = ClientConnection(connection: frames, serverSettings: serverSettings,
                                          localWindowBytes: configuration.initialWindowBytes) { [weak self] closed in
            self?.state.withLock { state in
                if case .ready(let current) = state, current === closed { state = .idle }
            }
        }
        frames.start(delegate: connection, name: "ctrpc-client")
        return connection
    }

    private static func jittered(_ delay: Duration) -> Duration {
        delay * Double.random(in: 0.8...1.2)
    }
}

/// Per-call options.
public struct CallOptions: Sendable {
    /// How long the caller waits; nil waits indefinitely, unless the call is made from a
    /// handler whose own deadline is earlier (deadlines are inherited). Default nil.
    public var timeout: Duration?
    /// Application metadata sent with the call. Default empty.
    public var metadata: Metadata
    /// One attempt only: an unreachable peer fails the call at once with UNAVAILABLE, without
    /// retries or waiting out the client's reconnect back-off. For callers that retry on their own
    /// schedule, such as durable jobs, whose worker would otherwise sit out both. Default false.
    public var failFast: Bool
    /// How long the call may wait for a connection before it gives up as never sent (within its
    /// deadline): a `ReplicaSet` gives each replica but the last a share of the time, so one that
    /// does not answer (a host gone silent) leaves the rest for the next.
    var connectWithin: Duration?

    public init(timeout: Duration? = nil, metadata: Metadata = Metadata(), failFast: Bool = false) {
        self.timeout = timeout
        self.metadata = metadata
        self.failFast = failFast
    }

    /// The earlier of our own timeout and the deadline of the call being served, if any.
    func effectiveDeadline() -> ContinuousClock.Instant? {
        let own = timeout.map { ContinuousClock.now + $0 }
        let inherited = ServerContext.current?.deadline
        switch (own, inherited) {
        case (let own?, let inherited?): return min(own, inherited)
        case (let own?, nil): return own
        case (nil, let inherited?): return inherited
        case (nil, nil): return nil
        }
    }
}

/// The responses of a server-streaming call: from a ctrpc/1 call, or from another channel's
/// source of decoded messages (`init(next:)`).
public struct ResponseStream<Response: SwiftProtobuf.Message>: AsyncSequence, Sendable {
    enum Source: Sendable {
        case call(ClientCall)
        case messages(@Sendable () async throws -> Response?)
    }
    let source: Source

    init(call: ClientCall) { source = .call(call) }

    /// The responses `next` returns, until it returns nil (the stream's normal end) or throws
    /// (its failure, as an `RPCError`).
    public init(next: @escaping @Sendable () async throws -> Response?) { source = .messages(next) }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let source: Source
        public mutating func next() async throws -> Response? {
            switch source {
            case .messages(let next):
                return try await next()
            case .call(let call):
                guard let data = try await call.inbox.next() else { return nil }
                do {
                    return try Response(serializedBytes: data)
                } catch {
                    throw RPCError(.internal, "response is not a valid \(Response.protoMessageName)")
                }
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(source: source) }
}

/// Writes the requests of a client-streaming call, waiting when the server's window is full.
public struct RequestWriter<Request: SwiftProtobuf.Message>: Sendable {
    let call: ClientCall

    public func send(_ request: Request) async throws {
        let data: Data
        do { data = try request.serializedBytes() } catch {
            throw RPCError(.invalidArgument, "request cannot be serialised")
        }
        try await call.window?.acquire(data.count)
        try call.sendMessage(data)
    }
}

extension ClientCall {
    /// Runs `body`; if the calling task is cancelled meanwhile, the server is told to stop.
    func withCancellation<T>(_ body: () async throws -> T) async throws -> T {
        try await withTaskCancellationHandler(operation: body, onCancel: { self.cancel() })
    }
}

