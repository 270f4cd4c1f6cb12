public import CallTraceRPC
import CallTraceTLS
import Foundation
import Logging

/// A PKI, a server with the echo service, and clients for any identity: the usual test set-up.
public final class EchoFixture: @unchecked Sendable {
    public let pki: TemporaryPKI
    public let echo: EchoService
    public let server: RPCServer
    public static let serverIdentity = TemporaryPKI.identity("service", "media")

    public init(allow: PeerPolicy = .anyPeer, limits: RPCServer.Limits = .defaults, log: CapturedLog? = nil) throws {
        pki = try TemporaryPKI()
        echo = EchoService(allow: allow)
        var configuration = RPCServer.Configuration(
            credentials: try pki.credentials(for: Self.serverIdentity),
            info: .init(serviceName: "media", version: "test"))
        configuration.limits = limits
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        server = try RPCServer(configuration: configuration, services: [echo], logger: log?.logger() ?? logger)
    }

    deinit { server.stop() }

    /// A client presenting `identity` (default: a gateway).
    public func client(identity: String = TemporaryPKI.identity("gateway", "web"),
                       expecting serverIdentity: String = EchoFixture.serverIdentity,
                       port: Int? = nil) throws -> RPCClient {
        try RPCClient(target: .init(host: "127.0.0.1", port: port ?? server.port, identity: serverIdentity),
                      configuration: .init(credentials: try pki.credentials(for: identity)))
    }
}

/// A log handler that keeps every line, for tests that read what a server logged.
public final class CapturedLog: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    public init() {}

    public var text: String {
        lock.lock()
        defer { lock.unlock() }
        return lines.joined(separator: "\n")
    }

    func append(_ line: String) {
        lock.lock()
        lines.append(line)
        lock.unlock()
    }

    /// A logger at `level` writing into this capture.
    public func logger(level: Logger.Level = .debug) -> Logger {
        var logger = Logger(label: "captured") { _ in Handler(sink: self) }
        logger.logLevel = level
        return logger
    }

    struct Handler: LogHandler {
        let sink: CapturedLog
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            sink.append("\(event.level) \(event.message) \(fields)")
        }
    }
}
