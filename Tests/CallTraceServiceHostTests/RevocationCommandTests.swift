import CallTraceProto
import CallTraceRPC
import CallTraceTLS
import CallTraceTestSupport
import Foundation
import Testing

@Suite("Certificate revocation, as an operator does it")
struct RevocationCommandTests {
    let calltrace = productsDirectory.appendingPathComponent("calltrace").path

    @Test("pki revoke lists a certificate; after SIGHUP the service refuses it on new connections and serves the rest; a damaged list is not taken")
    func revokeAndReload() async throws {
        let setup = try ServiceSetup(service: "media")
        let pki = setup.pki.directory.path
        let list = "\(pki)/crl.pem"
        let created = try await run(calltrace, ["pki", "crl", "--ca", pki, "--json"])
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stdout.contains(#""revoked":[]"#))

        let crm = try setup.pki.credentials(for: TemporaryPKI.identity("gateway", "crm"))
        let web = try setup.pki.credentials(for: TemporaryPKI.identity("gateway", "web"))
        let process = try setup.start(setup.flags + ["--crl", list, "--log-format", "json"])
        func serves(_ credentials: TLSCredentials) async -> Bool {
            guard let client = try? RPCClient(target: .init(host: "127.0.0.1", port: setup.port, identity: TemporaryPKI.identity("service", "media")),
                                              configuration: .init(credentials: credentials)) else { return false }
            defer { client.close() }
            return (try? await client.unary(Calltrace_Ops_V1_HealthService.check, .init(), options: .init(timeout: .seconds(10)))) != nil
        }
        try await setup.waitUntilServing(try setup.client())
        #expect(await serves(crm))

        let revoked = try await run(calltrace, ["pki", "revoke", "--ca", pki, crm.certificateChainPath])
        #expect(revoked.status == 0, "\(revoked.stderr)")
        #expect(revoked.stdout.contains("revoked"))
        let again = try await run(calltrace, ["pki", "revoke", "--ca", pki, crm.certificateChainPath])
        #expect(again.stdout.contains("already revoked"))
        let listing = try await run(calltrace, ["pki", "crl", "--ca", pki, "--json"])
        #expect(listing.stdout.components(separatedBy: #""serial""#).count == 2, "one entry: \(listing.stdout)")
        // A certificate of another CA cannot be revoked here.
        let foreign = try setup.pki.foreignCredentials(for: TemporaryPKI.identity("gateway", "crm"))
        let refused = try await run(calltrace, ["pki", "revoke", "--ca", pki, foreign.certificateChainPath])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("was not issued by this CA"))

        process.signal(SIGHUP)
        #expect(await process.waitForOutput(containing: "TLS material reloaded"))
        #expect(await !serves(crm))
        #expect(await serves(web))

        try Data("not a list".utf8).write(to: URL(fileURLWithPath: list))
        process.signal(SIGHUP)
        #expect(await process.waitForOutput(containing: "TLS material not reloaded"))
        #expect(await serves(web))
        #expect(await !serves(crm))

        process.signal(SIGTERM)
        #expect(await process.waitForExit()?.status == 0)
        // Started with a damaged list, the service refuses to start and names the file.
        let restart = try setup.start(setup.flags + ["--crl", list])
        let exit = try #require(await restart.waitForExit())
        #expect(exit.status == 1)
        #expect(exit.stderr.contains("revocation list \(list)"))
    }
}
