import CallTraceProto
import CallTraceRPC
import CallTraceTLS
import CallTraceTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// P15: TLS on every connection, mutual authentication against the deployment CA only.
@Suite("P15: the server refuses every connection that is not mutual TLS with ctrpc/1 under our CA")
struct HandshakeRefusalTests {
    /// After each refusal the server must still serve a well-behaved client.
    func expectStillServing(_ fixture: EchoFixture) async throws {
        let client = try fixture.client()
        let health = try await client.unary(Calltrace_Ops_V1_HealthService.check, .init(), options: .init(timeout: patience))
        #expect(health.status == .serving)
    }

    @Test("A well-behaved raw client completes the handshake and receives the server's settings")
    func goodClientGetsSettings() async throws {
        let fixture = try EchoFixture()
        let client = try RawTLSClient(certificate: try fixture.pki.credentials(for: TemporaryPKI.identity("gateway", "web")),
                                      caPath: fixture.pki.caPath)
        let settings = try client.connect(port: fixture.server.port)
        #expect(settings.hasSettings)
        #expect(settings.settings.maxFrameBytes == 4 << 20)
    }

    @Test("Plain TCP is closed without an answer")
    func plainTCP() async throws {
        let fixture = try EchoFixture()
        let fd = try RawTLSClient.plainTCP(port: fixture.server.port)
        defer { close(fd) }
        let request = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        _ = write(fd, request, request.count)
        var reply = [UInt8](repeating: 0, count: 4096)
        var received: [UInt8] = []
        while case let n = read(fd, &reply, reply.count), n > 0 { received += reply[0..<n] }
        // Whatever came back (at most a TLS alert record, type 21) carries no HTTP or ctrpc data.
        #expect(received.isEmpty || received[0] == 21)
        try await expectStillServing(fixture)
    }

    @Test("Refused at the handshake", arguments: [
        "no client certificate", "certificate from another CA", "expired certificate",
        "not-yet-valid certificate", "no ALPN", "another ALPN", "certificate without a SPIFFE id",
        "certificate with two SPIFFE ids", "SPIFFE id beside another URI",
    ])
    func refused(_ case: String) async throws {
        let fixture = try EchoFixture()
        let pki = fixture.pki
        let gateway = TemporaryPKI.identity("gateway", "web")
        let client: RawTLSClient
        switch `case` {
        case "no client certificate":
            client = try RawTLSClient(certificate: nil, caPath: pki.caPath)
        case "certificate from another CA":
            let foreign = try pki.foreignCredentials(for: gateway)
            client = try RawTLSClient(certificate: foreign, caPath: pki.caPath)
        case "expired certificate":
            client = try RawTLSClient(certificate: try pki.newCredentials(for: gateway, notBefore: .seconds(-7200), notAfter: .seconds(-60)),
                                      caPath: pki.caPath)
        case "not-yet-valid certificate":
            client = try RawTLSClient(certificate: try pki.newCredentials(for: gateway, notBefore: .seconds(3600), notAfter: .seconds(7200)),
                                      caPath: pki.caPath)
        case "no ALPN":
            client = try RawTLSClient(certificate: try pki.credentials(for: gateway), caPath: pki.caPath, alpn: .none)
        case "another ALPN":
            client = try RawTLSClient(certificate: try pki.credentials(for: gateway), caPath: pki.caPath, alpn: .other("h2"))
        case "certificate with two SPIFFE ids":
            client = try RawTLSClient(certificate: try pki.newCredentials(for: gateway, extraURIs: [TemporaryPKI.identity("service", "media")]),
                                      caPath: pki.caPath)
        case "SPIFFE id beside another URI":
            client = try RawTLSClient(certificate: try pki.newCredentials(for: gateway, extraURIs: ["https://firm.example/"]),
                                      caPath: pki.caPath)
        default:
            client = try RawTLSClient(certificate: try pki.credentialsWithoutIdentity(), caPath: pki.caPath)
        }
        #expect(throws: (any Error).self, "\(`case`) must not reach the settings frame") {
            _ = try client.connect(port: fixture.server.port)
        }
        try await expectStillServing(fixture)
    }

    @Test("The client refuses a server that presents another identity than expected")
    func clientRefusesWrongServerIdentity() async throws {
        let fixture = try EchoFixture()
        let client = try fixture.client(expecting: TemporaryPKI.identity("service", "identity"))
        let error = await #expect(throws: RPCError.self) {
            try await client.unary(Calltrace_Ops_V1_HealthService.check, .init(), options: .init(timeout: .seconds(15)))
        }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains(", expected spiffe://calltrace.test/service/identity") == true)
    }

    @Test("Revocation: a listed certificate is refused; a server re-reading its list refuses the newly revoked and keeps the rest")
    func revocation() async throws {
        let pki = try TemporaryPKI()
        let crm = try pki.credentials(for: TemporaryPKI.identity("gateway", "crm"))
        let web = try pki.credentials(for: TemporaryPKI.identity("gateway", "web"))
        let list = pki.directory.appendingPathComponent("crl.pem").path
        try pki.revocationList(revoking: [], at: list)
        var credentials = try pki.credentials(for: EchoFixture.serverIdentity)
        credentials.revocationListPath = list
        let server = try RPCServer(configuration: .init(credentials: credentials, info: .init(serviceName: "media", version: "test")),
                                   services: [EchoService()])
        defer { server.stop() }
        func admitted(_ credentials: TLSCredentials) -> Bool {
            (try? RawTLSClient(certificate: credentials, caPath: pki.caPath).connect(port: server.port).hasSettings) == true
        }
        #expect(admitted(crm) && admitted(web))

        try pki.revocationList(revoking: [crm], at: list)
        #expect(admitted(crm), "the list is read when the server is told to, not on every handshake")
        try server.reloadCredentials()
        #expect(!admitted(crm))
        #expect(admitted(web))

        // A damaged list is not taken: the server keeps the one it had, and keeps serving.
        try Data("not a list".utf8).write(to: URL(fileURLWithPath: list))
        #expect(throws: TLSError.self) { try server.reloadCredentials() }
        #expect(!admitted(crm))
        #expect(admitted(web))
    }

    @Test("The client refuses a server whose certificate another CA signed")
    func clientRefusesForeignServer() async throws {
        let fixture = try EchoFixture()
        let foreign = try fixture.pki.foreignCredentials(for: TemporaryPKI.identity("gateway", "web"))
        // The client trusts only the foreign CA, so the real server's certificate is unknown to it.
        let client = try RPCClient(target: .init(host: "127.0.0.1", port: fixture.server.port, identity: EchoFixture.serverIdentity),
                                   configuration: .init(credentials: foreign))
        let error = await #expect(throws: RPCError.self) {
            try await client.unary(Calltrace_Ops_V1_HealthService.check, .init(), options: .init(timeout: .seconds(15)))
        }
        #expect(error?.code == .unavailable)
    }
}

@Suite("TLS material is checked when a context is made")
struct TLSContextTests {
    @Test("Missing files, a key of another certificate, a certificate of another CA, an expired certificate")
    func badMaterial() throws {
        let pki = try TemporaryPKI()
        let good = try pki.credentials(for: TemporaryPKI.identity("service", "media"))
        let other = try pki.newCredentials(for: TemporaryPKI.identity("service", "media"))
        let foreign = try pki.foreignCredentials(for: TemporaryPKI.identity("service", "media"))
        let expired = try pki.newCredentials(for: TemporaryPKI.identity("service", "media"), notBefore: .seconds(-7200), notAfter: .seconds(-60))

        var missing = good
        missing.privateKeyPath = pki.directory.appendingPathComponent("nope.key").path
        var mismatched = good
        mismatched.privateKeyPath = other.privateKeyPath
        var wrongCA = foreign
        wrongCA.trustRootsPath = pki.caPath
        let cases: [(TLSCredentials, String)] = [
            (missing, "is missing or unreadable"),
            (mismatched, "does not match certificate"),
            (wrongCA, "is not valid under CA"),
            (expired, "certificate has expired"),
        ]
        for (credentials, expected) in cases {
            let error = #expect(throws: TLSError.self) { _ = try TLSContext(role: .server, credentials: credentials) }
            #expect(error?.kind == .configuration)
            #expect(error?.message.contains(expected) == true, "\(error?.message ?? "") should say \(expected)")
        }
        #expect(try TLSContext(role: .server, credentials: good).identity == "spiffe://calltrace.test/service/media")
    }

    @Test("Keys are read in any PEM form OpenSSL knows: PKCS#8 or SEC1 EC keys load, a key of another type is named as not matching, a damaged one as unloadable")
    func keyForms() async throws {
        let pki = try TemporaryPKI()
        let good = try pki.credentials(for: TemporaryPKI.identity("service", "media"))
        let sec1 = pki.directory.appendingPathComponent("sec1.key").path
        let ed25519 = pki.directory.appendingPathComponent("ed25519.key").path
        let damaged = pki.directory.appendingPathComponent("damaged.key").path
        for arguments in [["ec", "-in", good.privateKeyPath, "-out", sec1], ["genpkey", "-algorithm", "ed25519", "-out", ed25519]] {
            let made = try await run("/usr/bin/openssl", arguments)
            #expect(made.status == 0, "\(made.stderr)")
        }
        #expect(try String(contentsOfFile: sec1, encoding: .utf8).hasPrefix("-----BEGIN EC PRIVATE KEY-----"))
        try Data("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".utf8).write(to: URL(fileURLWithPath: damaged))

        var inSEC1 = good
        inSEC1.privateKeyPath = sec1
        #expect(try TLSContext(role: .client, credentials: inSEC1).identity == "spiffe://calltrace.test/service/media")
        for (path, expected) in [(ed25519, "does not match certificate"), (damaged, "cannot be loaded")] {
            var credentials = good
            credentials.privateKeyPath = path
            let error = #expect(throws: TLSError.self) { _ = try TLSContext(role: .server, credentials: credentials) }
            #expect(error?.message.contains(expected) == true, "\(error?.message ?? "") should say \(expected)")
        }
    }

    @Test("A revocation list that is expired, another CA's, damaged, or revokes our own certificate refuses the context")
    func badRevocationList() throws {
        let pki = try TemporaryPKI()
        let good = try pki.credentials(for: TemporaryPKI.identity("service", "media"))
        let foreignPKI = try TemporaryPKI()
        let damaged = pki.directory.appendingPathComponent("damaged.pem").path
        try Data("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n".utf8).write(to: URL(fileURLWithPath: damaged))
        let cases: [(String, String)] = [
            (try pki.revocationList(revoking: [], validDays: 30, issuedAt: Date(timeIntervalSinceNow: -40 * 86_400)), "CRL has expired"),
            (try foreignPKI.revocationList(revoking: []), "CRL signature failure"),
            (damaged, "is not a PEM X.509 CRL"),
            (try pki.revocationList(revoking: [good]), "certificate revoked"),
            (pki.directory.appendingPathComponent("absent.pem").path, "revocation list file"),
        ]
        for (list, expected) in cases {
            var credentials = good
            credentials.revocationListPath = list
            let error = #expect(throws: TLSError.self) { _ = try TLSContext(role: .server, credentials: credentials) }
            #expect(error?.message.contains(expected) == true, "\(error?.message ?? "") should say \(expected)")
        }
        var current = good
        current.revocationListPath = try pki.revocationList(revoking: [try pki.credentials(for: TemporaryPKI.identity("gateway", "crm"))])
        #expect(try TLSContext(role: .server, credentials: current).identity == "spiffe://calltrace.test/service/media")
    }
}
