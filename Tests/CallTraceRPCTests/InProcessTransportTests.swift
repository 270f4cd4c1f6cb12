import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Logging
import Testing

/// The in-process transport: a server's routing, peer policies, admission and handlers reached
/// with no socket, TLS or certificate (`RPCServer(inProcess:…)`, `RPCClient(inProcess:as:)`).
@Suite("In-process transport: routing and handlers without sockets")
struct InProcessTransportTests {
    static let identity = "spiffe://calltrace.test/service/media"
    static let web = PeerIdentity(trustDomain: "calltrace.test", kind: .gateway, name: "web")

    func server(_ echo: EchoService = EchoService(), limits: RPCServer.Limits = .defaults) throws -> RPCServer {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return try RPCServer(inProcess: Self.identity, info: .init(serviceName: "media", version: "test"), limits: limits,
                             services: [echo], logger: logger)
    }

    @Test("A unary call reaches its handler with the caller's identity and metadata, and no port is opened")
    func unary() async throws {
        let server = try server()
        defer { server.stop() }
        #expect(server.port == 0)
        #expect(server.identity == Self.identity)
        let client = RPCClient(inProcess: server, as: Self.web)
        var metadata = Metadata()
        try metadata.add("x-echo", "in process")
        let response = try await client.unary(Calltrace_Testing_V1_EchoService.echo, .with { $0.payload = Data("hello".utf8) },
                                              options: .init(timeout: patience, metadata: metadata))
        #expect(response.payload == Data("hello".utf8))
        #expect(response.callerIdentity == "spiffe://calltrace.test/gateway/web")
        #expect(response.echoedMetadata == "in process")
        #expect(response.deadlineRemainingMs > 0)
        let info = try await client.unary(Calltrace_Ops_V1_ServerInfoService.getServerInfo, .init())
        #expect(info.serviceName == "media")
        #expect(info.callerIdentity == Self.web.uri)
        #expect(info.tlsVersion == "in-process")
    }

    @Test("Admission as over TLS: the method's peer policy, unknown methods, health")
    func admission() async throws {
        let server = try server(EchoService(allow: .services))
        defer { server.stop() }
        let denied = await #expect(throws: RPCError.self) {
            try await RPCClient(inProcess: server, as: Self.web).unary(Calltrace_Testing_V1_EchoService.echo, .init())
        }
        #expect(denied?.code == .permissionDenied)
        let transcript = RPCClient(inProcess: server, as: PeerIdentity(trustDomain: "calltrace.test", kind: .service, name: "transcript"))
        #expect(try await transcript.unary(Calltrace_Testing_V1_EchoService.echo, .with { $0.payload = Data("ok".utf8) }).payload
            == Data("ok".utf8))
        let missing = MethodDescriptor<Calltrace_Testing_V1_EchoRequest, Calltrace_Testing_V1_EchoResponse>(
            service: "calltrace.testing.v1.EchoService", name: "Missing", kind: .unary, isIdempotent: false)
        let unknown = await #expect(throws: RPCError.self) { try await transcript.unary(missing, .init()) }
        #expect(unknown == RPCError(.unimplemented, "unknown method"))
        server.setServing(false)
        #expect(try await transcript.unary(Calltrace_Ops_V1_HealthService.check, .init()).status == .notServing)
    }

    @Test("A peer of another trust domain is refused, as its certificate would be")
    func otherTrustDomain() async throws {
        let server = try server()
        defer { server.stop() }
        let stranger = RPCClient(inProcess: server, as: PeerIdentity(trustDomain: "other.test", kind: .gateway, name: "web"))
        let refused = await #expect(throws: RPCError.self) {
            try await stranger.unary(Calltrace_Testing_V1_EchoService.echo, .init(), options: .init(failFast: true))
        }
        #expect(refused?.code == .unavailable)
    }

    @Test("Streams both ways, well past the pipe's buffer and the flow-control windows, arrive whole and in order")
    func streaming() async throws {
        let server = try server()
        defer { server.stop() }
        let client = RPCClient(inProcess: server, as: Self.web)
        let chunk = Calltrace_Testing_V1_UploadRequest.with { $0.chunk = Data((0..<(64 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 7) }) }
        var expected: UInt64 = 0xcbf2_9ce4_8422_2325
        for _ in 0..<128 { expected = fnv1a(chunk.chunk, seed: expected) }
        let uploaded = try await client.clientStreaming(Calltrace_Testing_V1_EchoService.upload) { writer in
            for _ in 0..<128 { try await writer.send(chunk) }  // 8 MiB
        }
        #expect(uploaded.receivedBytes == 8 << 20)
        #expect(uploaded.checksum == expected)
        let downloaded = try await client.serverStreaming(Calltrace_Testing_V1_EchoService.download,
                                                          .with { $0.chunkSizeBytes = 64 * 1024; $0.chunkCount = 64 }) { responses in
            var bytes = 0, intact = true
            for try await response in responses {
                bytes += response.chunk.count
                intact = intact && response.chunk.last == UInt8(truncatingIfNeeded: 64 * 1024 - 1)
            }
            return (bytes, intact)
        }
        #expect(downloaded.0 == 4 << 20 && downloaded.1)
    }

    @Test("Concurrent calls share one connection; a deadline ends a call that outlives it")
    func multiplexingAndDeadlines() async throws {
        let server = try server()
        defer { server.stop() }
        let client = RPCClient(inProcess: server, as: Self.web)
        let answered = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<100 {
                group.addTask {
                    let payload = Data("call-\(index)".utf8)
                    return try await client.unary(Calltrace_Testing_V1_EchoService.echo, .with { $0.payload = payload }).payload == payload
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(answered == 100)
        let late = await #expect(throws: RPCError.self) {
            try await client.unary(Calltrace_Testing_V1_EchoService.echo, .with { $0.delayMs = 60_000 },
                                   options: .init(timeout: .milliseconds(100), failFast: true))
        }
        #expect(late?.code == .deadlineExceeded)
    }

    @Test("Drain: a call in flight finishes, new calls get UNAVAILABLE, health NOT_SERVING")
    func drain() async throws {
        let echo = EchoService()
        let server = try server(echo)
        let client = RPCClient(inProcess: server, as: Self.web)
        let held = Task {
            try await client.unary(Calltrace_Testing_V1_EchoService.echo, .with { $0.tag = "hold:drain"; $0.payload = Data("done".utf8) })
        }
        #expect(await eventually { echo.observations.startedTags.contains("hold:drain") })
        let shutdown = Task { await server.shutdown(gracePeriod: patience) }
        #expect(await eventually { !server.isServing })
        let newcomer = RPCClient(inProcess: server, as: Self.web)
        #expect(try await newcomer.unary(Calltrace_Ops_V1_HealthService.check, .init()).status == .notServing)
        let refused = await #expect(throws: RPCError.self) {
            try await newcomer.unary(Calltrace_Testing_V1_EchoService.record, .init(), options: .init(failFast: true))
        }
        #expect(refused == RPCError(.unavailable, "server is shutting down"))
        echo.release("hold:drain")
        #expect(try await held.value.payload == Data("done".utf8))
        await shutdown.value
    }

    @Test("Beside TLS: a server on a socket also serves in-process clients")
    func besideTLS() async throws {
        let fixture = try EchoFixture()
        let overTLS = try await fixture.client().unary(Calltrace_Ops_V1_ServerInfoService.getServerInfo, .init())
        let inProcess = try await RPCClient(inProcess: fixture.server, as: Self.web)
            .unary(Calltrace_Ops_V1_ServerInfoService.getServerInfo, .init())
        #expect(overTLS.tlsVersion == "TLSv1.3")
        #expect(inProcess.tlsVersion == "in-process")
        #expect(inProcess.callerIdentity == overTLS.callerIdentity)
    }
}
