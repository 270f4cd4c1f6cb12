import CallTraceProto
import CallTraceRPC
import CallTraceSync
import CallTraceTLS
import CallTraceTestSupport
import Foundation
import Logging
import Testing

@Suite("Drain, restart, reconnect and retries")
struct LifecycleTests {
    func startServer(_ pki: TemporaryPKI, port: Int = 0, echo: EchoService = EchoService(),
                     maxFrameBytes: Int = 4 << 20) throws -> RPCServer {
        var configuration = RPCServer.Configuration(credentials: try pki.credentials(for: EchoFixture.serverIdentity),
                                                    info: .init(serviceName: "media", version: "test"))
        configuration.port = port
        configuration.limits.maxFrameBytes = maxFrameBytes
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return try RPCServer(configuration: configuration, services: [echo], logger: logger)
    }

    func client(_ pki: TemporaryPKI, port: Int, maxAttempts: Int = 40) throws -> RPCClient {
        var configuration = RPCClient.Configuration(credentials: try pki.credentials(for: TemporaryPKI.identity("gateway", "web")))
        configuration.initialBackoff = .milliseconds(50)
        configuration.maxBackoff = .milliseconds(200)
        configuration.maxAttempts = maxAttempts
        return try RPCClient(target: .init(host: "127.0.0.1", port: port, identity: EchoFixture.serverIdentity),
                             configuration: configuration)
    }

    @Test("Graceful drain: NOT_SERVING, in-flight calls finish, new calls are refused, then it closes")
    func drain() async throws {
        let pki = try TemporaryPKI()
        let echo = EchoService()
        let server = try startServer(pki, echo: echo)
        let client = try client(pki, port: server.port)
        _ = try await client.unary(Calltrace_Ops_V1_HealthService.check, .init())
        let slow = Task {
            var request = Calltrace_Testing_V1_EchoRequest()
            request.tag = "hold:in-flight"
            request.payload = Data("finished".utf8)
            return try await client.unary(Calltrace_Testing_V1_EchoService.echo, request)
        }
        #expect(await eventually { echo.observations.startedTags.contains("hold:in-flight") })
        let shutdown = Task { await server.shutdown(gracePeriod: patience) }
        #expect(await eventually { !server.isServing })
        let late = await #expect(throws: RPCError.self) {
            try await client.unary(Calltrace_Testing_V1_EchoService.record, .init(), options: .init(timeout: .milliseconds(300)))
        }
        #expect(late?.code == .unavailable || late?.code == .deadlineExceeded)
        // While the call finishes, a newcomer (a load balancer, `calltrace health`) can still
        // connect and sees NOT_SERVING; anything else is refused.
        let newcomer = try self.client(pki, port: server.port)
        #expect(try await newcomer.unary(Calltrace_Ops_V1_HealthService.check, .init()).status == .notServing)
        #expect(try await newcomer.unary(Calltrace_Ops_V1_ServerInfoService.getServerInfo, .init()).serviceName == "media")
        let refused = await #expect(throws: RPCError.self) {
            try await newcomer.unary(Calltrace_Testing_V1_EchoService.record, .init(), options: .init(timeout: .milliseconds(300)))
        }
        #expect(refused?.code == .unavailable || refused?.code == .deadlineExceeded)
        echo.release("hold:in-flight")
        #expect(try await slow.value.payload == Data("finished".utf8))
        await shutdown.value
        #expect(throws: (any Error).self) { _ = try RawTLSClient.plainTCP(port: server.port) }
    }

    @Test("Drain: a large last response reaches a client that reads it slowly")
    func drainDeliversALargeLastResponse() async throws {
        let pki = try TemporaryPKI()
        let echo = EchoService()
        let server = try startServer(pki, echo: echo, maxFrameBytes: 32 << 20)
        let raw = try RawTLSClient(certificate: try pki.credentials(for: TemporaryPKI.identity("gateway", "web")), caPath: pki.caPath)
        _ = try raw.connect(port: server.port)
        try raw.sendSettings()
        // 12 MiB answered at once, far more than the sockets buffer, then the server drains.
        var frame = Calltrace_Rpc_V1_Frame()
        frame.callID = 1
        frame.header.method = Calltrace_Testing_V1_EchoService.echo.fullName
        frame.message = try Calltrace_Testing_V1_EchoRequest.with {
            $0.payload = Data(repeating: 9, count: 12 << 20)
            $0.tag = "large"
        }.serializedBytes()
        frame.endStream = true
        try raw.send(frame)
        #expect(await eventually { echo.observations.startedTags.contains("large") })
        let shutdown = Task { await server.shutdown(gracePeriod: patience) }
        // The client reads in sips for about two seconds: slow, but never stalled for long.
        try await Task.sleep(for: .milliseconds(50))
        let reply = try await onThread { () throws -> Calltrace_Rpc_V1_Frame? in
            while let frame = try raw.readFrame(sipBytes: 16 * 1024, pause: .milliseconds(2)) {
                if frame.callID == 1 { return frame }
            }
            return nil
        }
        let answer = try #require(reply, "the response was cut off")
        #expect(answer.status.code == 0)
        #expect(try Calltrace_Testing_V1_EchoResponse(serializedBytes: answer.message).payload.count == 12 << 20)
        await shutdown.value
    }

    @Test("A client reconnects after the server restarts on the same port")
    func reconnect() async throws {
        let pki = try TemporaryPKI()
        // A port the kernel never hands out (the server's own port 0 would be free for any
        // parallel test to take while the server is down).
        let port = try freePort()
        let first = try startServer(pki, port: port)
        let client = try client(pki, port: port)
        #expect(try await client.unary(Calltrace_Ops_V1_HealthService.check, .init()).status == .serving)
        await first.shutdown(gracePeriod: .seconds(1))
        let second = try startServer(pki, port: port)
        defer { second.stop() }
        let info = try await client.unary(Calltrace_Ops_V1_ServerInfoService.getServerInfo, .init(), options: .init(timeout: patience))
        #expect(info.uptimeSeconds < 30)
        #expect(info.serviceName == "media")
    }

    @Test("Idempotent methods are retried on UNAVAILABLE within the timeout; others are not")
    func retries() async throws {
        let pki = try TemporaryPKI()
        // A port that takes each connection and closes it at once: every attempt is counted,
        // and each ends UNAVAILABLE, the status a retry is for.
        let port = try freePort()
        let closing = try CallTraceTLS.TCPListener(host: "127.0.0.1", port: port)
        let attempts = Locked(0)
        let accepting = Thread {
            while let (fd, _) = closing.accept() {
                attempts.withLock { $0 += 1 }
                close(fd)
            }
        }
        accepting.start()
        let counted = try client(pki, port: port, maxAttempts: 4)

        // Not idempotent: one attempt, then UNAVAILABLE.
        let refused = await #expect(throws: RPCError.self) {
            try await counted.unary(Calltrace_Testing_V1_EchoService.record, .init(), options: .init(timeout: .seconds(60)))
        }
        #expect(refused?.code == .unavailable)
        #expect(attempts.withLock { $0 } == 1)

        // Idempotent: the four attempts the client allows, then UNAVAILABLE.
        let exhausted = await #expect(throws: RPCError.self) {
            try await counted.unary(Calltrace_Testing_V1_EchoService.echo, .init(), options: .init(timeout: .seconds(60)))
        }
        #expect(exhausted?.code == .unavailable)
        #expect(attempts.withLock { $0 } == 1 + 4, "\(String(describing: exhausted))")

        // Fail-fast (a job's call, which the job retries itself): one attempt, made at once though
        // the client is backing off after the failures above, then UNAVAILABLE.
        let failedFast = await #expect(throws: RPCError.self) {
            try await counted.unary(Calltrace_Testing_V1_EchoService.echo, .init(), options: .init(timeout: .seconds(60), failFast: true))
        }
        #expect(failedFast?.code == .unavailable)
        #expect(attempts.withLock { $0 } == 1 + 4 + 1)
        closing.shutdown()

        // An idempotent call made while nothing listens succeeds once the server comes up.
        let client = try client(pki, port: port)
        let restart = Task {
            try await Task.sleep(for: .milliseconds(400))
            return try startServer(pki, port: port)
        }
        let response = try await client.unary(Calltrace_Testing_V1_EchoService.echo, .init(), options: .init(timeout: .seconds(60)))
        #expect(response.callerIdentity == "spiffe://calltrace.test/gateway/web")
        try await restart.value.stop()
    }
}

@Suite("Client deadlines cover connecting")
struct ConnectDeadlineTests {
    @Test("A call whose server never completes the handshake fails at its own deadline, not the connect timeout")
    func deadlineWhileConnecting() async throws {
        let pki = try TemporaryPKI()
        // Accepts TCP, never speaks TLS.
        let silent = try CallTraceTLS.TCPListener(host: "127.0.0.1", port: 0)
        Thread { _ = silent.accept() }.start()  // blocking accept, off the cooperative pool
        defer { silent.shutdown() }
        // A connect timeout far beyond the call's deadline: had the call waited for it, it would
        // end UNAVAILABLE ("timed out"), not DEADLINE_EXCEEDED.
        var configuration = RPCClient.Configuration(credentials: try pki.credentials(for: TemporaryPKI.identity("gateway", "web")))
        configuration.connectTimeout = .seconds(120)
        let client = try RPCClient(target: .init(host: "127.0.0.1", port: silent.port, identity: EchoFixture.serverIdentity),
                                   configuration: configuration)
        let error = await #expect(throws: RPCError.self) {
            try await client.unary(Calltrace_Testing_V1_EchoService.echo, .init(), options: .init(timeout: .milliseconds(300)))
        }
        #expect(error?.code == .deadlineExceeded, "\(String(describing: error))")
    }
}
