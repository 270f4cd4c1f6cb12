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
        let response = try await client.unary(Calltrace_Testing_V1_EchoService.echo, .init(), options: .init(timeout: .seconds(30)))
        // What is left depends on load; that it is there, and not beyond the caller's, is the point.
        #expect(response.deadlineRemainingMs > 0)
        #expect(response.deadlineRemainingMs <= 30_000)
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
        let response = try await client.unary(Calltrace_Testing_V1_EchoService.echo, .init(), options: .init(timeout: .seconds(30)))
        // The backend saw a deadline although the relay set none, and no later than the caller's.
        #expect(response.deadlineRemainingMs > 0)
        #expect(response.deadlineRemainingMs <= 30_000)
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
