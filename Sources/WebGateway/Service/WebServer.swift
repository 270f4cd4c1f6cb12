import CallTraceServiceHost
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
    private let bound = Mutex<(port: Int??, waiters: [CheckedContinuation<Int?, Never>])>((nil, []))

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
            // A socket left by a process that died is replaced (`ListenCheck` refused a live one).
            var info = stat()
            if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
            bindAddress = .unixDomainSocket(path: path)
        }
        let application = Application(router: app.router(), configuration: .init(address: bindAddress, serverName: nil),
                                      onServerRunning: { [self] channel in
                                          let port = channel.localAddress?.port ?? 0
                                          // nginx (in the socket's group) may connect; no one else.
                                          if case .unix(let path) = address { chmod(path, 0o660) }
                                          settle(port)
                                          logger.notice("pages served", metadata: ["http": "\(describe(port: port))"])
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
    func port() async -> Int? {
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

/// What start-up checks of the HTTP address, so a taken port or a live socket is a "cannot start"
/// line, not an error after the service reported itself serving.
enum ListenCheck {
    static func check(_ address: HTTPListenAddress) throws {
        switch address {
        case .tcp(let host, let port):
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
            var found: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, String(port), &hints, &found) == 0, let first = found else {
                throw ConfigurationError("http_listen \(host):\(port): \(host) is not an address of this machine")
            }
            defer { freeaddrinfo(found) }
            let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
            guard fd >= 0 else { throw ConfigurationError("http_listen \(host):\(port): no socket (\(String(cString: strerror(errno))))") }
            defer { close(fd) }
            var yes: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
            guard bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
                throw ConfigurationError("http_listen \(host):\(port) cannot be bound: \(String(cString: strerror(errno)))")
            }
        case .unix(let path):
            var info = stat()
            guard lstat(path, &info) == 0 else { return }
            guard (info.st_mode & S_IFMT) == S_IFSOCK else {
                throw ConfigurationError("http_listen unix:\(path): something that is not a socket is there")
            }
            // A socket someone answers on is another instance's: never taken over.
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return }
            defer { close(fd) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
                throw ConfigurationError("http_listen unix:\(path): the path is too long for a socket")
            }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: bytes)
                raw[bytes.count] = 0
            }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if connected == 0 { throw ConfigurationError("http_listen unix:\(path): another process is serving on it") }
        }
    }
}
