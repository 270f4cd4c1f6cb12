import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The HTTP listener, run by the host beside the gateway's ctrpc/1 server until the stop; on a
/// stop it finishes the requests in flight (a player's stream included) before the RPC side drains.
final class WebServer: ServiceLifecycle.Service, Sendable {
    private let app: WebApp
    private let address: HTTPListenAddress
    private let logger: Logger
    private let bound = Mutex<(port: Int?, waiters: [CheckedContinuation<Int, Never>])>((nil, []))

    init(app: WebApp, address: HTTPListenAddress, logger: Logger) {
        self.app = app
        self.address = address
        self.logger = logger
    }

    func run() async throws {
        let bindAddress: BindAddress
        switch address {
        case .tcp(let host, let port): bindAddress = .hostname(host, port: port)
        case .unix(let path):
            // A socket left by a process that died is replaced; anything else there is not.
            var info = stat()
            if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
            bindAddress = .unixDomainSocket(path: path)
        }
        let application = Application(router: app.router(), configuration: .init(address: bindAddress, serverName: nil),
                                      onServerRunning: { [self] channel in
                                          let port = channel.localAddress?.port ?? 0
                                          let waiters = bound.withLock { state in
                                              state.port = port
                                              defer { state.waiters = [] }
                                              return state.waiters
                                          }
                                          waiters.forEach { $0.resume(returning: port) }
                                          logger.notice("pages served", metadata: ["http": "\(describe(port: port))"])
                                      }, logger: logger)
        try await application.run()
    }

    /// The TCP port once listening (0 on a Unix socket): tests bind port 0 and ask.
    func port() async -> Int {
        await withCheckedContinuation { continuation in
            let known = bound.withLock { state -> Int? in
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
