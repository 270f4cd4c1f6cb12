public import CallTraceTestSupport
import Foundation

/// Identity, transcript and compliance in this test process, and media in it or beside it: the
/// services a gateway's tests run behind the gateway.
public protocol ServiceDeployment: AnyObject, Sendable {
    var pki: TemporaryPKI { get }
    var calls: CallLedger { get }
    /// Media as the web gateway reaches it.
    var gateway: Media { get }
    /// Where media listens.
    var mediaPort: Int { get }
    /// Where media keeps its sealed files.
    var blobFolder: String { get }
    /// How its services are reached; a gateway started beside them (`TelephonyStack`) takes the same.
    var transport: TestTransport { get }
    func stop() async
}

extension MediaDeployment: ServiceDeployment {
    public var mediaPort: Int { media.instance.port }
    public var transport: TestTransport { media.transport }
}

/// Media as a process of its own — killed with SIGKILL (`kill`) and started again on its stores
/// (`restart`) — beside identity, transcript and compliance in this test process: for tests of
/// what a gateway does when media dies under it.
public final class MediaProcessDeployment: ServiceDeployment, @unchecked Sendable {
    public let setup: ServiceSetup
    public let calls: CallLedger
    public let gateway: Media
    public private(set) var process: RunningProcess
    public var pki: TemporaryPKI { setup.pki }
    public var mediaPort: Int { setup.port }
    public var blobFolder: String { (setup.database as NSString).deletingLastPathComponent + "/recordings" }
    /// Media's process reaches the others, and is reached, through ports.
    public var transport: TestTransport { .tls }

    public init() async throws {
        let setup = try ServiceSetup(service: "media")
        self.setup = setup
        // The process reaches them through ports: real mutual TLS, whatever the test's transport.
        calls = try await TestTransport.$current.withValue(.tls) { try await CallLedger(pki: setup.pki, mediaPort: setup.port) }
        process = try Self.start(setup, calls)
        gateway = Media(try setup.client(identity: TemporaryPKI.identity("gateway", "web")))
        try await setup.waitUntilServing(try setup.client())
    }

    private static func start(_ setup: ServiceSetup, _ calls: CallLedger) throws -> RunningProcess {
        try setup.start(setup.flags + ["--log-format", "json"], environment: calls.peerEnvironment)
    }

    /// kill -9 of media; how it ended (128 + SIGKILL), nil if it did not.
    public func kill() async -> Int32? {
        process.signal(SIGKILL)
        return await process.waitForExit()?.status
    }

    /// Starts media again on its stores, and waits until it serves.
    public func restart() async throws {
        process = try Self.start(setup, calls)
        try await setup.waitUntilServing(try setup.client())
    }

    public func stop() async {
        process.signal(SIGTERM)
        _ = await process.waitForExit()
        await calls.stop()
    }
}
