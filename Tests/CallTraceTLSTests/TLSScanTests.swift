import CallTraceTestSupport
import Foundation
import Testing

/// The TLS policy as an outside scanner sees it: sslyze (installed by `make scanner`, part of
/// `make test`) against a live service process. `Tests/TLSScan/scan.py` runs the scan and
/// prints what it found; this test holds it to PROTOCOL.md §1.
@Suite("TLS policy, scanned by sslyze against a live service")
struct TLSScanTests {
    static let python = repositoryRoot.appendingPathComponent(".build/tls-scanner/bin/python").path

    @Test("TLS 1.2 and 1.3 only, forward-secret AEAD suites, a client certificate required; no compression, client renegotiation, resumption or early data")
    func scan() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.python),
                     "sslyze is not installed: run `make scanner` (make test does)")
        let setup = try ServiceSetup(service: "media")
        let service = try setup.start()
        try await setup.waitUntilServing(try setup.client())
        let client = try setup.pki.credentials(for: TemporaryPKI.identity("gateway", "web"))
        let result = try await run(Self.python, [repositoryRoot.appendingPathComponent("Tests/TLSScan/scan.py").path, "127.0.0.1", "\(setup.port)",
                                                 client.certificateChainPath, client.privateKeyPath])
        try #require(result.status == 0, "scan failed: \(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout)")
        #expect(report["connectivity"] as? String == "COMPLETED", "\(result.stdout)")

        for old in ["SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1"] {
            #expect((report[old] as? [String])?.isEmpty == true, "\(old) accepted: \(report[old] ?? "no result")")
        }
        let tls12 = try #require(report["TLS 1.2"] as? [String], "\(result.stdout)")
        let tls13 = try #require(report["TLS 1.3"] as? [String], "\(result.stdout)")
        #expect(!tls12.isEmpty && !tls13.isEmpty)
        for suite in tls12 {
            // ECDHE key exchange (forward secrecy) and an AEAD cipher, nothing else.
            #expect(suite.hasPrefix("TLS_ECDHE_") && (suite.contains("_GCM_") || suite.contains("CHACHA20_POLY1305"))
                    && suite.hasSuffix(" ECDH"), "TLS 1.2 suite \(suite)")
        }
        for suite in tls13 {
            #expect(["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"].contains(where: suite.hasPrefix)
                    && suite.hasSuffix(" ECDH"), "TLS 1.3 suite \(suite)")
        }
        #expect(report["client_certificate"] as? [String: String] == ["TLS 1.2": "REQUIRED", "TLS 1.3": "REQUIRED"], "\(result.stdout)")
        #expect(report["compression"] as? Bool == false)
        #expect(report["client_renegotiation"] as? Bool == false)
        #expect(report["resumption_session_id"] as? String == "NOT_SUPPORTED")
        #expect(report["resumption_ticket"] as? String == "NOT_SUPPORTED")
        #expect(report["early_data"] as? Bool == false)
        #expect(report["heartbleed"] as? Bool == false)
        #expect(report["ccs_injection"] as? Bool == false)

        service.signal(SIGTERM)
        #expect(await service.waitForExit()?.status == 0)
    }
}
