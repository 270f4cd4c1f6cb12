import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Testing

/// The C gateway client (protoc-c + libprotobuf-c + OpenSSL) speaks ctrpc/1 with the Swift server.
@Suite("Wire compatibility with protobuf-c")
struct ProtobufCWireTests {
    /// clients/c/ctrpc_health_check.c, built by `make -C clients/c check-programs` (our file
    /// under -Werror with every warning, protoc-c's output with -Wno-missing-braces too) under
    /// AddressSanitizer and UndefinedBehaviorSanitizer.
    static func cClient() async throws -> String {
        "\(try await CPrograms.folder(sanitize: "1"))/ctrpc_health_check"
    }

    @Test("A C client calls HealthService/Check over mutual TLS and gets SERVING, then NOT_SERVING")
    func cClientHealthCheck() async throws {
        let client = try await Self.cClient()
        let fixture = try EchoFixture()
        let credentials = try fixture.pki.credentials(for: TemporaryPKI.identity("gateway", "telephony"))
        let arguments = ["127.0.0.1", "\(fixture.server.port)", credentials.certificateChainPath, credentials.privateKeyPath,
                         credentials.trustRootsPath, EchoFixture.serverIdentity]

        let serving = try await run(client, arguments)
        #expect(serving.status == 0, "\(serving.stderr)")
        #expect(serving.stdout == "SERVING\n")

        let named = try await run(client, arguments + [Calltrace_Testing_V1_EchoService.name])
        #expect(named.stdout == "SERVING\n")

        fixture.server.setServing(false)
        let notServing = try await run(client, arguments)
        #expect(notServing.status == 1)
        #expect(notServing.stdout == "NOT_SERVING\n")
    }

    @Test("The C client refuses a server with another identity")
    func cClientChecksIdentity() async throws {
        let client = try await Self.cClient()
        let fixture = try EchoFixture()
        let credentials = try fixture.pki.credentials(for: TemporaryPKI.identity("gateway", "telephony"))
        let result = try await run(client, ["127.0.0.1", "\(fixture.server.port)", credentials.certificateChainPath,
                                            credentials.privateKeyPath, credentials.trustRootsPath,
                                            TemporaryPKI.identity("service", "identity")])
        #expect(result.status == 2)
        #expect(result.stderr.contains("server identity is not the expected one"))
    }

    @Test("A server that refuses the C client's certificate: the client exits 2 with an error, not by SIGPIPE")
    func cClientRefusedCertificate() async throws {
        let client = try await Self.cClient()
        let fixture = try EchoFixture()
        // Trusted by the client (our CA for the server), but from another CA for the server.
        let foreign = try fixture.pki.foreignCredentials(for: TemporaryPKI.identity("gateway", "telephony"))
        for _ in 0..<5 {  // the refusal can land at any point of the first exchange
            let result = try await run(client, ["127.0.0.1", "\(fixture.server.port)", foreign.certificateChainPath, foreign.privateKeyPath,
                                                fixture.pki.caPath, EchoFixture.serverIdentity])
            #expect(result.status == 2, "exit \(result.status): \(result.stderr)")
        }
    }
}
