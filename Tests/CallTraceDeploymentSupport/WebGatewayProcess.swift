import CallTraceServiceHost
public import CallTraceTestSupport
import Foundation

/// calltrace-web as a process of its own beside a `ProcessDeployment`, its pages on a port of
/// its own: what the crash harness kills and the soak loads.
public final class WebGatewayProcess: Sendable {
    public let process: ServiceProcess
    /// Where its pages are.
    public let port: Int
    /// `http://127.0.0.1:<port>`.
    public var base: String { "http://127.0.0.1:\(port)" }

    public init(beside services: ProcessDeployment) throws {
        port = try freePort()
        process = ServiceProcess(try ServiceSetup(service: "web", kind: "gateway", pki: services.pki), environment: services.peerEnvironment,
                                 flags: ["--http-listen", "127.0.0.1:\(port)"])
    }

    /// Starts it (again) and waits until its pages open (just after it reports serving).
    public func start() async throws {
        try await process.start()
        let probe = WebClient(base: base)
        defer { probe.close() }
        guard await eventually(timeout: .seconds(30), { (try? await probe.get("/healthz"))?.status == 200 }) else {
            throw ConfigurationError("calltrace-web's pages did not open:\n\(process.log.suffix(2_000))")
        }
    }

    public func stop() async {
        await process.kill()
    }
}
