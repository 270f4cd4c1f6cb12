import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Testing

/// Bad input gets a clear status or a closed connection, and the server goes on serving.
@Suite("Bad input: clear errors, and the server keeps serving")
struct BadInputTests {
    func rawClient(_ fixture: EchoFixture) throws -> RawTLSClient {
        let client = try RawTLSClient(certificate: try fixture.pki.credentials(for: TemporaryPKI.identity("gateway", "web")),
                                      caPath: fixture.pki.caPath)
        _ = try client.connect(port: fixture.server.port)
        try client.sendSettings()
        return client
    }

    func expectStillServing(_ fixture: EchoFixture) async throws {
        let client = try fixture.client()
        var request = Calltrace_Testing_V1_EchoRequest()
        request.payload = Data("still here".utf8)
        let response = try await client.unary(Calltrace_Testing_V1_EchoService.echo, request, options: .init(timeout: patience))
        #expect(response.payload == Data("still here".utf8))
    }

    @Test("A length prefix of 0xFFFFFFFF: RESOURCE_EXHAUSTED, then the connection closes")
    func hugeLength() async throws {
        let fixture = try EchoFixture()
        let client = try rawClient(fixture)
        try client.write([0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3])
        let frame = try #require(try client.readFrame())
        #expect(frame.callID == 0)
        #expect(frame.goaway)
        #expect(frame.status.code == StatusCode.resourceExhausted.rawValue)
        #expect(frame.status.message.contains("exceeds the limit of 4194304 bytes"))
        #expect(try client.readFrame() == nil)
        try await expectStillServing(fixture)
    }

    @Test("Garbage bytes that are not a frame: INVALID_ARGUMENT, then the connection closes")
    func garbage() async throws {
        let fixture = try EchoFixture()
        let client = try rawClient(fixture)
        try client.write([0, 0, 0, 6, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        let frame = try #require(try client.readFrame())
        #expect(frame.status.code == StatusCode.invalidArgument.rawValue)
        #expect(frame.status.message == "malformed frame")
        #expect(try client.readFrame() == nil)
        try await expectStillServing(fixture)
    }

    @Test("A call opened on call id 0: INVALID_ARGUMENT goaway, then the connection closes")
    func callOnConnectionID() async throws {
        let fixture = try EchoFixture()
        let client = try rawClient(fixture)
        try client.send(Calltrace_Rpc_V1_Frame.echoCall(0, payload: "nowhere"))
        let frame = try #require(try client.readFrame())
        #expect(frame.callID == 0 && frame.goaway)
        #expect(frame.status.code == StatusCode.invalidArgument.rawValue)
        #expect(frame.status.message == "call id 0 is reserved for the connection")
        #expect(try client.readFrame() == nil)
        try await expectStillServing(fixture)
    }

    @Test("A connection that does not open with settings is told so (goaway with a status) before it closes",
          arguments: ["call first", "garbage first", "huge first"])
    func noSettingsFirst(opening: String) async throws {
        let fixture = try EchoFixture()
        let client = try RawTLSClient(certificate: try fixture.pki.credentials(for: TemporaryPKI.identity("gateway", "web")),
                                      caPath: fixture.pki.caPath)
        let settings = try client.connect(port: fixture.server.port)
        #expect(settings.hasSettings)
        switch opening {
        case "call first": try client.send(Calltrace_Rpc_V1_Frame.echoCall(1, payload: "too soon"))
        case "garbage first": try client.write([0, 0, 0, 6, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        default: try client.write([0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3])
        }
        let frame = try #require(try client.readFrame())
        #expect(frame.callID == 0 && frame.goaway)
        switch opening {
        case "call first":
            #expect(frame.status.code == StatusCode.invalidArgument.rawValue)
            #expect(frame.status.message == "did not open with settings")
        case "garbage first":
            #expect(frame.status.code == StatusCode.invalidArgument.rawValue)
            #expect(frame.status.message == "sent a malformed first frame")
        default:
            #expect(frame.status.code == StatusCode.resourceExhausted.rawValue)
            #expect(frame.status.message.contains("over the limit of 4194304 bytes"))
        }
        #expect(try client.readFrame() == nil)
        try await expectStillServing(fixture)
    }

    @Test("A truncated frame followed by a close leaves the server serving")
    func truncated() async throws {
        let fixture = try EchoFixture()
        do {
            let client = try rawClient(fixture)
            try client.write([0, 0, 1, 0, 8, 1, 18])  // announces 256 bytes, sends 3
        }
        try await expectStillServing(fixture)
    }

    @Test("A request payload that is not the method's message: INVALID_ARGUMENT for that call only")
    func malformedPayload() async throws {
        let fixture = try EchoFixture()
        let client = try rawClient(fixture)
        var frame = Calltrace_Rpc_V1_Frame()
        frame.callID = 7
        frame.header.method = Calltrace_Testing_V1_EchoService.echo.fullName
        frame.message = Data([0xFF, 0xFF, 0xFF])
        frame.endStream = true
        try client.send(frame)
        let reply = try #require(try client.readFrame())
        #expect(reply.callID == 7)
        #expect(reply.status.code == StatusCode.invalidArgument.rawValue)
        #expect(reply.status.message == "request is not a valid calltrace.testing.v1.EchoRequest")
        // The same connection still serves a good call.
        var good = Calltrace_Rpc_V1_Frame()
        good.callID = 8
        good.header.method = Calltrace_Ops_V1_HealthService.check.fullName
        good.message = Data()
        good.endStream = true
        try client.send(good)
        let answer = try #require(try client.readFrame())
        #expect(answer.callID == 8)
        #expect(answer.status.code == 0)
        #expect(try Calltrace_Ops_V1_CheckResponse(serializedBytes: answer.message).status == .serving)
    }

    @Test("A unary call without its request in the opening frame, or with a second request: INVALID_ARGUMENT")
    func unaryRequestOutsideTheOpeningFrame() async throws {
        let fixture = try EchoFixture()
        let client = try rawClient(fixture)
        var noRequest = Calltrace_Rpc_V1_Frame()
        noRequest.callID = 3
        noRequest.header.method = Calltrace_Testing_V1_EchoService.echo.fullName
        try client.send(noRequest)
        var noEnd = noRequest
        noEnd.callID = 5
        noEnd.message = Data()
        try client.send(noEnd)
        for id in [UInt64(3), 5] {
            let reply = try #require(try client.readFrame())
            #expect(reply.callID == id)
            #expect(reply.status.code == StatusCode.invalidArgument.rawValue)
            #expect(reply.status.message.hasSuffix("takes one request, in the opening frame with end_stream"))
        }

        // A second request on a unary call still running (its handler is held) ends that call.
        var slow = Calltrace_Rpc_V1_Frame()
        slow.callID = 9
        slow.header.method = Calltrace_Testing_V1_EchoService.echo.fullName
        slow.message = try Calltrace_Testing_V1_EchoRequest.with { $0.tag = "hold:second-request" }.serializedBytes()
        slow.endStream = true
        try client.send(slow)
        var extra = Calltrace_Rpc_V1_Frame()
        extra.callID = 9
        extra.message = Data()
        try client.send(extra)
        let reply = try #require(try client.readFrame())
        #expect(reply.callID == 9)
        #expect(reply.status.code == StatusCode.invalidArgument.rawValue)
        #expect(reply.status.message == "/calltrace.testing.v1.EchoService/Echo takes one request, in the opening frame")
        fixture.echo.release("hold:second-request")
        try await expectStillServing(fixture)
    }

    @Test("Reusing the id of a call in flight closes the connection, whether the new call would be admitted or refused",
          arguments: [Calltrace_Testing_V1_EchoService.echo.fullName, "/calltrace.testing.v1.EchoService/NoSuchMethod"])
    func reusedCallID(secondMethod: String) async throws {
        let fixture = try EchoFixture()
        let client = try rawClient(fixture)
        var slow = Calltrace_Rpc_V1_Frame()
        slow.callID = 9
        slow.header.method = Calltrace_Testing_V1_EchoService.echo.fullName
        slow.message = try Calltrace_Testing_V1_EchoRequest.with { $0.tag = "hold:reused" }.serializedBytes()
        slow.endStream = true
        try client.send(slow)
        defer { fixture.echo.release("hold:reused") }
        var again = Calltrace_Rpc_V1_Frame()
        again.callID = 9
        again.header.method = secondMethod
        again.message = Data()
        again.endStream = true
        try client.send(again)
        let frame = try #require(try client.readFrame())
        #expect(frame.callID == 0)
        #expect(frame.goaway)
        #expect(frame.status.code == StatusCode.invalidArgument.rawValue)
        #expect(frame.status.message == "call id 9 is already in use")
        #expect(try client.readFrame() == nil)
        try await expectStillServing(fixture)
    }

    @Test("Reserved or malformed metadata keys: INVALID_ARGUMENT")
    func badMetadata() async throws {
        let fixture = try EchoFixture()
        let client = try rawClient(fixture)
        var frame = Calltrace_Rpc_V1_Frame()
        frame.callID = 3
        frame.header.method = Calltrace_Ops_V1_HealthService.check.fullName
        var entry = Calltrace_Rpc_V1_MetadataEntry()
        entry.key = "ctrpc-client-address"
        entry.value = Data("10.0.0.1".utf8)
        frame.header.metadata = [entry]
        frame.message = Data()
        frame.endStream = true
        try client.send(frame)
        let reply = try #require(try client.readFrame())
        #expect(reply.status.code == StatusCode.invalidArgument.rawValue)
        #expect(reply.status.message.contains("reserved"))
        try await expectStillServing(fixture)
    }

    @Test("Unknown methods: UNIMPLEMENTED, the name never echoed, logged or kept in metrics (counted under one label)")
    func unknownMethod() async throws {
        let log = CapturedLog()
        let fixture = try EchoFixture(log: log)
        let client = try fixture.client()
        let huge = String(repeating: "x", count: 1 << 20)
        for name in ["Vanish", huge] {
            let missing = MethodDescriptor<Calltrace_Testing_V1_EchoRequest, Calltrace_Testing_V1_EchoResponse>(
                service: "calltrace.testing.v1.EchoService", name: name, kind: .unary, isIdempotent: false)
            let error = await #expect(throws: RPCError.self) { try await client.unary(missing, .init()) }
            #expect(error?.code == .unimplemented)
            #expect(error?.message == "unknown method")
        }
        let operatorClient = try fixture.client(identity: TemporaryPKI.identity("operator", "ops"))
        let metrics = try await operatorClient.unary(Calltrace_Ops_V1_MetricsService.getMetrics, .init())
        #expect(metrics.methods.first { $0.method == "<unknown>" }?.calls == 2)
        #expect(!metrics.methods.contains { $0.method.contains("Vanish") || $0.method.count > 256 })
        #expect(!log.text.contains("Vanish"))
        #expect(!log.text.contains(String(repeating: "x", count: 300)))
        try await expectStillServing(fixture)
    }

    @Test("A peer not allowed for a method: PERMISSION_DENIED, before its request is decoded")
    func peerNotAllowed() async throws {
        let fixture = try EchoFixture(allow: .services)
        let gateway = try fixture.client()
        let denied = await #expect(throws: RPCError.self) {
            try await gateway.unary(Calltrace_Testing_V1_EchoService.echo, .init())
        }
        #expect(denied?.code == .permissionDenied)
        #expect(denied?.message == "spiffe://calltrace.test/gateway/web may not call /calltrace.testing.v1.EchoService/Echo")

        // The check comes before decoding: a garbage payload from that peer still gets PERMISSION_DENIED.
        let raw = try rawClient(fixture)
        var frame = Calltrace_Rpc_V1_Frame()
        frame.callID = 1
        frame.header.method = Calltrace_Testing_V1_EchoService.echo.fullName
        frame.message = Data([0xFF, 0xFF])
        frame.endStream = true
        try raw.send(frame)
        #expect(try raw.readFrame()?.status.code == StatusCode.permissionDenied.rawValue)

        let service = try fixture.client(identity: TemporaryPKI.identity("service", "transcript"))
        let allowed = try await service.unary(Calltrace_Testing_V1_EchoService.echo, .init())
        #expect(allowed.callerIdentity == "spiffe://calltrace.test/service/transcript")
    }

    @Test("A message larger than the server's frame limit is refused by the client before sending")
    func oversizedMessage() async throws {
        let fixture = try EchoFixture()
        let client = try fixture.client()
        var request = Calltrace_Testing_V1_EchoRequest()
        request.payload = Data(count: 5 << 20)
        let error = await #expect(throws: RPCError.self) {
            try await client.unary(Calltrace_Testing_V1_EchoService.echo, request)
        }
        #expect(error?.code == .resourceExhausted)
        try await expectStillServing(fixture)
    }

    @Test("Too many concurrent calls on one connection: RESOURCE_EXHAUSTED for the extra call")
    func concurrencyLimit() async throws {
        var limits = RPCServer.Limits.defaults
        limits.maxConcurrentCallsPerConnection = 2
        let fixture = try EchoFixture(limits: limits)
        let client = try fixture.client()
        // Three calls held in their handlers: the two admitted stay in flight until released, so
        // the third meets the limit whatever the machine's speed.
        let codes = try await withThrowingTaskGroup(of: StatusCode.self) { group in
            for index in 0..<3 {
                group.addTask {
                    var request = Calltrace_Testing_V1_EchoRequest()
                    request.tag = "hold:\(index)"
                    do {
                        _ = try await client.unary(Calltrace_Testing_V1_EchoService.echo, request)
                        return .ok
                    } catch let error as RPCError {
                        return error.code
                    }
                }
            }
            var codes = [try await group.next()!]
            for index in 0..<3 { fixture.echo.release("hold:\(index)") }
            for try await code in group { codes.append(code) }
            return codes
        }
        #expect(codes.first == .resourceExhausted, "the first call to finish is the one refused")
        #expect(codes.filter { $0 == .ok }.count == 2)
        #expect(codes.filter { $0 == .resourceExhausted }.count == 1)
    }
}

@Suite("Server limits on silent and idle connections")
struct ConnectionLimitTests {
    @Test("A connection without calls is closed after the idle timeout, with a goaway; one with a call in flight is not")
    func idleTimeout() async throws {
        var limits = RPCServer.Limits.defaults
        limits.idleTimeout = .milliseconds(300)
        let fixture = try EchoFixture(limits: limits)
        let credentials = try fixture.pki.credentials(for: TemporaryPKI.identity("gateway", "web"))

        let idle = try RawTLSClient(certificate: credentials, caPath: fixture.pki.caPath)
        _ = try idle.connect(port: fixture.server.port)
        try idle.sendSettings()
        let busy = try RawTLSClient(certificate: credentials, caPath: fixture.pki.caPath)
        _ = try busy.connect(port: fixture.server.port)
        try busy.sendSettings()
        var slow = Calltrace_Rpc_V1_Frame()
        slow.callID = 1
        slow.header.method = Calltrace_Testing_V1_EchoService.echo.fullName
        slow.message = try Calltrace_Testing_V1_EchoRequest.with { $0.delayMs = 2_500; $0.payload = Data("late".utf8) }.serializedBytes()
        slow.endStream = true
        try busy.send(slow)

        // The idle connection: a goaway, then the close (the server checks about once a second),
        // never before the idle timeout. A read timeout would throw, so the close is the server's.
        let started = ContinuousClock.now
        idle.setReceiveTimeout(.seconds(60))
        let goaway = try #require(try await onThread { try idle.readFrame() })
        #expect(goaway.callID == 0 && goaway.goaway && !goaway.hasStatus)
        #expect(try await onThread { try idle.readFrame() } == nil)
        #expect(started.duration(to: .now) >= .milliseconds(300))

        // The busy one outlived the idle timeout many times over, and its call completes.
        let answer = try #require(try await onThread { try busy.readFrame() })
        #expect(answer.callID == 1 && answer.status.code == 0)
        #expect(try Calltrace_Testing_V1_EchoResponse(serializedBytes: answer.message).payload == Data("late".utf8))
    }

    @Test("A TCP connection that never starts TLS is dropped after the handshake timeout")
    func handshakeTimeout() async throws {
        var limits = RPCServer.Limits.defaults
        limits.handshakeTimeout = .milliseconds(300)
        let fixture = try EchoFixture(limits: limits)
        let fd = try RawTLSClient.plainTCP(port: fixture.server.port)
        defer { close(fd) }
        var readTimeout = timeval(tv_sec: 60, tv_usec: 0)  // a timed-out read returns -1, a close 0
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &readTimeout, socklen_t(MemoryLayout<timeval>.size))
        let started = ContinuousClock.now
        let received = try await onThread { () -> Int in
            var byte: UInt8 = 0
            return recv(fd, &byte, 1, 0)
        }
        #expect(received == 0, "the server should have closed the connection")
        #expect(started.duration(to: .now) >= .milliseconds(300))
        // Still serving.
        let client = try fixture.client()
        _ = try await client.unary(Calltrace_Ops_V1_HealthService.check, .init(), options: .init(timeout: patience))
    }
}
