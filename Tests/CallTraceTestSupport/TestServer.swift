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

    public init(allow: PeerPolicy = .anyPeer, limits: RPCServer.Limits = .defaults) throws {
        pki = try TemporaryPKI()
        echo = EchoService(allow: allow)
        var configuration = RPCServer.Configuration(
            credentials: try pki.credentials(for: Self.serverIdentity),
            info: .init(serviceName: "media", version: "test"))
        configuration.limits = limits
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        server = try RPCServer(configuration: configuration, services: [echo], logger: logger)
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
