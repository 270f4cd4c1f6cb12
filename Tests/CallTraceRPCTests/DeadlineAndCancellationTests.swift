import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Logging
import Testing

@Suite("Deadlines and cancellation")
struct DeadlineAndCancellationTests {
    @Test("The server sees the caller's deadline")
    func serverSeesDeadline() async throws {
        let fixture = try EchoFixture()
        let client = try fixture.client()
        _ = try await client.unary(Calltrace_Ops_V1_HealthService.check, .init())  // connect first
        let response = try await client.unary(Calltrace_Testing_V1_EchoService.echo, .init(), options: .init(timeout: patience))
        // What is left depends on load; that it is there, and not beyond the caller's, is the point.
        #expect(response.deadlineRemainingMs > 0)
        #expect(response.deadlineRemainingMs <= UInt64(patience.components.seconds) * 1000)
        let none = try await client.unary(Calltrace_Testing_V1_EchoService.echo, .init())
        #expect(none.deadlineRemainingMs == 0)
    }

    @Test("A call past its deadline ends DEADLINE_EXCEEDED and the handler is cancelled")
    func deadlineExceeded() async throws {
        let fixture = try EchoFixture()
        let client = try fixture.client()
        // Connect first: under load a handshake alone can outlast a 200 ms deadline, and then
        // the call rightly never reaches the server.
        _ = try await client.unary(Calltrace_Ops_V1_HealthService.check, .init())
        var request = Calltrace_Testing_V1_EchoRequest()
        request.delayMs = 5000
        request.tag = "slow"
        let error = await #expect(throws: RPCError.self) {
            try await client.unary(Calltrace_Testing_V1_EchoService.echo, request, options: .init(timeout: .milliseconds(200)))
        }
        // Not the handler's 5 s answer: the deadline ended the call, and the handler was stopped.
        #expect(error?.code == .deadlineExceeded)
        #expect(await eventually { fixture.echo.observations.cancelledTags.contains("slow") })
        #expect(!fixture.echo.observations.completedTags.contains("slow"))
    }

    @Test("Cancelling the calling task stops the handler's work on the server")
    func cancellation() async throws {
        let fixture = try EchoFixture()
        let client = try fixture.client()
        _ = try await client.unary(Calltrace_Ops_V1_HealthService.check, .init())
        let call = Task {
            var request = Calltrace_Testing_V1_EchoRequest()
            request.delayMs = 10_000
            request.tag = "abandoned"
            return try await client.unary(Calltrace_Testing_V1_EchoService.echo, request)
        }
        #expect(await eventually { fixture.echo.observations.startedTags.contains("abandoned") })
        call.cancel()
        let result = await call.result
        #expect(throws: (any Error).self) { try result.get() }
        #expect(await eventually { fixture.echo.observations.cancelledTags.contains("abandoned") })
        // The connection is still good for the next call.
        #expect(try await client.unary(Calltrace_Ops_V1_HealthService.check, .init()).status == .serving)
    }

    @Test("A nested call inherits the deadline of the call being served")
    func nestedDeadline() async throws {
        let backend = try EchoFixture()
        let backendClient = try backend.client(identity: TemporaryPKI.identity("service", "relay"))
        let relay = RelayService(next: backendClient)
        var configuration = RPCServer.Configuration(
            credentials: try backend.pki.credentials(for: TemporaryPKI.identity("service", "relay")),
            info: .init(serviceName: "relay", version: "test"))
        configuration.port = 0
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let front = try RPCServer(configuration: configuration, services: [relay], logger: logger)
        defer { front.stop() }
        let client = try RPCClient(
            target: .init(host: "127.0.0.1", port: front.port, identity: TemporaryPKI.identity("service", "relay")),
            configuration: .init(credentials: try backend.pki.credentials(for: TemporaryPKI.identity("gateway", "web"))))
        // Connect both hops first, so the timed call measures the call, not two handshakes.
        let untimed = try await client.unary(Calltrace_Testing_V1_EchoService.echo, .init())
        #expect(untimed.deadlineRemainingMs == 0)
        let response = try await client.unary(Calltrace_Testing_V1_EchoService.echo, .init(), options: .init(timeout: patience))
        // The backend saw a deadline although the relay set none, and no later than the caller's.
        #expect(response.deadlineRemainingMs > 0)
        #expect(response.deadlineRemainingMs <= UInt64(patience.components.seconds) * 1000)
    }
}

/// Answers Echo by calling Echo on another server, with no timeout of its own.
struct RelayService: RPCService {
    let next: RPCClient
    func register(with router: inout RPCRouter) {
        router.unary(Calltrace_Testing_V1_EchoService.echo, allow: .anyPeer) { request, _ in
            try await next.unary(Calltrace_Testing_V1_EchoService.echo, request)
        }
    }
}

/// Answers Echo after a wait that ignores cancellation (as a database statement or a call to
/// another service would), so only the server's own deadline and cancel handling can end it.
/// With `blocking`, the handler blocks its thread instead (a handler that should not, but might).
final class StubbornService: RPCService {
    let waitMs: Int
    let blocking: Bool
    init(waitMs: Int, blocking: Bool = false) {
        self.waitMs = waitMs
        self.blocking = blocking
    }

    func register(with router: inout RPCRouter) {
        router.unary(Calltrace_Testing_V1_EchoService.echo, allow: .anyPeer) { [self] request, _ in
            if blocking {
                usleep(UInt32(waitMs) * 1000)
            } else {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(waitMs)) { continuation.resume() }
                }
            }
            return .with { $0.payload = request.payload }
        }
    }
}

@Suite("Deadlines and cancellation hold while a handler is busy")
struct BusyHandlerDeadlineTests {
    func server(_ pki: TemporaryPKI, _ service: StubbornService) throws -> RPCServer {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return try RPCServer(configuration: .init(credentials: try pki.credentials(for: EchoFixture.serverIdentity),
                                                  info: .init(serviceName: "media", version: "test")),
                             services: [service], logger: logger)
    }

    func raw(_ pki: TemporaryPKI, port: Int) throws -> RawTLSClient {
        let client = try RawTLSClient(certificate: try pki.credentials(for: TemporaryPKI.identity("gateway", "web")), caPath: pki.caPath)
        _ = try client.connect(port: port)
        client.setReceiveTimeout(.seconds(60))
        try client.sendSettings()
        return client
    }

    @Test("A handler still running at the caller's deadline: the caller gets DEADLINE_EXCEEDED, never the late answer",
          arguments: [false, true])
    func deadlineWhileBusy(blocking: Bool) async throws {
        let pki = try TemporaryPKI()
        let service = StubbornService(waitMs: blocking ? 30 : 1_500, blocking: blocking)
        let server = try server(pki, service)
        defer { server.stop() }
        let client = try raw(pki, port: server.port)
        for id in UInt64(1)...20 { try client.send(try .echoCall(id * 2 + 1, timeoutMs: 5)) }
        var statuses: [UInt64: UInt32] = [:]
        while statuses.count < 20 {
            let frame = try #require(try await onThread { try client.readFrame() })
            if frame.hasStatus { statuses[frame.callID] = frame.status.code }
        }
        #expect(statuses.values.allSatisfy { $0 == StatusCode.deadlineExceeded.rawValue }, "\(statuses)")
    }

    @Test("A call cancelled while its handler is busy gets no answer at all")
    func cancelWhileBusy() async throws {
        let pki = try TemporaryPKI()
        let service = StubbornService(waitMs: 500)
        let server = try server(pki, service)
        defer { server.stop() }
        let client = try raw(pki, port: server.port)
        try client.send(try .echoCall(1, payload: "cancelled"))
        var cancel = Calltrace_Rpc_V1_Frame()
        cancel.callID = 1
        cancel.cancel = true
        try client.send(cancel)
        try client.send(try .echoCall(3, payload: "answered"))  // its answer comes after call 1's would have
        let frame = try #require(try await onThread { try client.readFrame() })
        #expect(frame.callID == 3)
        #expect(try Calltrace_Testing_V1_EchoResponse(serializedBytes: frame.message).payload == Data("answered".utf8))
    }
}
