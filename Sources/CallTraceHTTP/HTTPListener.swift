import CallTraceSync
public import Hummingbird
public import Logging
import NIOCore
public import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// A gateway's HTTP listener (the web app's pages, the telephony gateway's webhooks), run by the
/// host beside the gateway's ctrpc/1 server until the stop; on a stop it finishes the requests in
/// flight before the RPC side drains. Behind nginx: on loopback, or on a Unix socket only nginx's
/// group may open.
public final class HTTPListener<Builder: HTTPResponderBuilder & SendableMetatype>: ServiceLifecycle.Service, Sendable
where Builder.Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
    /// Builds the routes when the listener starts.
    private let makeResponder: @Sendable () -> Builder
    private let address: HTTPListenAddress
    /// What the log's "serving" line calls it ("pages", "webhooks").
    private let serving: String
    private let logger: Logger
    /// How long a connection may take to send a request's head (see `RequestHeadDeadline`).
    private let headTimeout: Duration
    private let bound = Locked<(port: Int??, waiters: [CheckedContinuation<Int?, Never>])>((nil, []))

    /// - Parameter headTimeout: a connection that has not sent its next request's head this long
    ///   after it opened, or after its previous answer, is closed. Default 30 s.
    public init(address: HTTPListenAddress, serving: String, logger: Logger, headTimeout: Duration = .seconds(30),
                routes: @escaping @Sendable () -> Builder) {
        makeResponder = routes
        self.headTimeout = headTimeout
        self.address = address
        self.serving = serving
        self.logger = logger
    }

    public func run() async throws {
        let bindAddress: BindAddress
        switch address {
        case .tcp(let host, let port): bindAddress = .hostname(host, port: port)
        case .unix(let path):
            // A socket left by a process that died is replaced (`ListenCheck` refused a live one).
            var info = stat()
            if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
            bindAddress = .unixDomainSocket(path: path)
        }
        let limit = TimeAmount.nanoseconds(Int64(headTimeout.components.seconds) * 1_000_000_000 + headTimeout.components.attoseconds / 1_000_000_000)
        let application = Application(router: makeResponder(),
                                      server: .http1(configuration: .init(additionalChannelHandlers: [RequestHeadDeadline(limit: limit)])),
                                      configuration: .init(address: bindAddress, serverName: nil),
                                      onServerRunning: { [self] channel in
                                          let port = channel.localAddress?.port ?? 0
                                          // nginx (in the socket's group) may connect; no one else.
                                          if case .unix(let path) = address { chmod(path, 0o660) }
                                          settle(port)
                                          logger.notice("\(serving) served", metadata: ["http": "\(describe(port: port))"])
                                      }, logger: logger)
        do {
            try await application.run()
        } catch {
            settle(nil)
            throw error
        }
        settle(nil)
    }

    private func settle(_ port: Int?) {
        let waiters = bound.withLock { state -> [CheckedContinuation<Int?, Never>] in
            if state.port == nil { state.port = .some(port) }
            defer { state.waiters = [] }
            return state.waiters
        }
        waiters.forEach { $0.resume(returning: port) }
    }

    /// The TCP port once listening (0 on a Unix socket), or nil when the listener failed or
    /// stopped first: tests bind port 0 and ask.
    public func port() async -> Int? {
        await withCheckedContinuation { continuation in
            let known = bound.withLock { state -> Int?? in
                if let port = state.port { return port }
                state.waiters.append(continuation)
                return nil
            }
            if let known { continuation.resume(returning: known) }
        }
    }

    private func describe(port: Int) -> String {
        switch address {
        case .tcp(let host, _): "\(host):\(port)"
        case .unix(let path): "unix:\(path)"
        }
    }
}
