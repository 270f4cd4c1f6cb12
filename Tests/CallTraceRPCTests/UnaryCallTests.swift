import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Testing

@Suite("Unary calls over mutual TLS")
struct UnaryCallTests {
    @Test("Health check of the whole server answers SERVING, and NOT_SERVING once told")
    func healthCheck() async throws {
        let fixture = try EchoFixture()
        let client = try fixture.client()
        let serving = try await client.unary(Calltrace_Ops_V1_HealthService.check, .init())
        #expect(serving.status == .serving)
        fixture.server.setServing(false)
        let notServing = try await client.unary(Calltrace_Ops_V1_HealthService.check, .init())
        #expect(notServing.status == .notServing)
    }

    @Test("Health check of a named service: known → status, unknown → NOT_FOUND")
    func healthCheckNamed() async throws {
        let fixture = try EchoFixture()
        let client = try fixture.client()
        var request = Calltrace_Ops_V1_CheckRequest()
        request.service = Calltrace_Testing_V1_EchoService.name
        #expect(try await client.unary(Calltrace_Ops_V1_HealthService.check, request).status == .serving)
        request.service = "calltrace.nothing.v1.NothingService"
        let error = await #expect(throws: RPCError.self) {
            try await client.unary(Calltrace_Ops_V1_HealthService.check, request)
        }
        #expect(error?.code == .notFound)
    }

    @Test("Server info reports service, version, protocol and the caller's identity")
    func serverInfo() async throws {
        let fixture = try EchoFixture()
        let client = try fixture.client(identity: TemporaryPKI.identity("operator", "alice"))
        let info = try await client.unary(Calltrace_Ops_V1_ServerInfoService.getServerInfo, .init())
        #expect(info.serviceName == "media")
        #expect(info.version == "test")
        #expect(info.callerIdentity == "spiffe://calltrace.test/operator/alice")
        #expect(info.protocol == "ctrpc/1")
        #expect(info.tlsVersion == "TLSv1.3")
    }

    @Test("Echo returns the payload, the metadata and the caller's identity")
    func echo() async throws {
        let fixture = try EchoFixture()
        let client = try fixture.client()
        var request = Calltrace_Testing_V1_EchoRequest()
        request.payload = Data("hello".utf8)
        var metadata = Metadata()
        try metadata.add("x-echo", "metadata travels")
        let response = try await client.unary(Calltrace_Testing_V1_EchoService.echo, request,
                                              options: .init(metadata: metadata))
        #expect(response.payload == Data("hello".utf8))
        #expect(response.echoedMetadata == "metadata travels")
        #expect(response.callerIdentity == "spiffe://calltrace.test/gateway/web")
    }

    @Test("Only a gateway can name the end user's client address; from any other peer it is ignored")
    func clientAddressFromGatewaysOnly() async throws {
        let fixture = try EchoFixture()
        var metadata = Metadata()
        try metadata.add(ServerContext.clientAddressKey, "198.51.100.7")
        let fromGateway = try await fixture.client().unary(Calltrace_Testing_V1_EchoService.echo, .init(), options: .init(metadata: metadata))
        #expect(fromGateway.clientAddress == "198.51.100.7")
        for identity in [TemporaryPKI.identity("service", "media"), TemporaryPKI.identity("operator", "ops")] {
            let other = try await fixture.client(identity: identity).unary(Calltrace_Testing_V1_EchoService.echo, .init(),
                                                                           options: .init(metadata: metadata))
            #expect(other.clientAddress.isEmpty, "\(identity)")
        }
    }
}
