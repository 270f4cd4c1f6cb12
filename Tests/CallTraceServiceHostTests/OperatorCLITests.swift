import CallTraceStorage
import CallTraceTestSupport
import Foundation
import Testing

@Suite("Operators' CLI against a real service")
struct OperatorCLITests {
    @Test("keys init writes 32 random bytes 0600 even under umask 022, and never overwrites a key")
    func keysInit() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("calltrace-keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = directory.appendingPathComponent("identity.master-key").path
        let calltrace = productsDirectory.appendingPathComponent("calltrace").path
        let made = try await run("/bin/sh", ["-c", "umask 022 && exec \"$0\" keys init \"$1\"", calltrace, key])
        #expect(made.status == 0, "\(made.stderr)")
        let first = try Data(contentsOf: URL(fileURLWithPath: key))
        let mode = try FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? Int
        #expect(first.count == 32 && mode == 0o600)
        let again = try await run(calltrace, ["keys", "init", key])
        #expect(again.status == 1 && again.stderr.contains(key))
        let after = try Data(contentsOf: URL(fileURLWithPath: key))
        #expect(after == first, "the key is untouched")
    }

    @Test("A missing database folder is named, with what to do, instead of its lock file")
    func missingDatabaseFolder() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("calltrace-absent-\(UUID().uuidString)").path
        let error = #expect(throws: StorageError.self) { _ = try Database(path: folder + "/identity.sqlite") }
        #expect(error?.description.contains("the database folder \(folder) does not exist") == true, "\(String(describing: error))")
    }

    @Test("pki init writes keys 0600; health and metrics reach a service started on those certificates; logs hold no secrets")
    func pkiHealthMetrics() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("calltrace-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let pki = directory.appendingPathComponent("pki").path
        let ca = directory.appendingPathComponent("ca").path
        // The CA key is never written where the services' certificates are.
        let together = try #require(await RunningProcess("calltrace", ["pki", "init", "--trust-domain", "calltrace.cli", "--out", pki,
                                                                       "--ca-out", "\(pki)/ca"]).waitForExit())
        #expect(together.status != 0 && together.stderr.contains("--ca-out must be a folder apart from --out"))
        let initialised = try #require(await RunningProcess("calltrace", ["pki", "init", "--trust-domain", "calltrace.cli", "--out", pki,
                                                                          "--ca-out", ca]).waitForExit())
        #expect(initialised.status == 0, "\(initialised.stderr)")
        for name in ["identity", "media", "transcript", "compliance", "gateway-web", "operator-admin"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: "\(pki)/\(name).key")
            #expect((attributes[.posixPermissions] as? Int) == 0o600, "\(name).key")
            #expect(FileManager.default.fileExists(atPath: "\(pki)/\(name).crt"))
        }
        #expect(FileManager.default.fileExists(atPath: "\(pki)/ca.crt"))
        #expect(!FileManager.default.fileExists(atPath: "\(pki)/ca.key"))
        #expect((try FileManager.default.attributesOfItem(atPath: "\(ca)/ca.key")[.posixPermissions] as? Int) == 0o600)
        #expect((try FileManager.default.attributesOfItem(atPath: ca)[.posixPermissions] as? Int) == 0o700)
        let again = try #require(await RunningProcess("calltrace", ["pki", "init", "--trust-domain", "calltrace.cli", "--out", pki,
                                                                    "--ca-out", ca]).waitForExit())
        #expect(again.status != 0)
        let wrongFolder = try #require(await RunningProcess("calltrace", ["pki", "issue", "--ca", pki, "--out", pki, "--kind", "gateway", "--name", "crm"]).waitForExit())
        #expect(wrongFolder.status != 0 && wrongFolder.stderr.contains("holds no ca.key"))
        let issued = try #require(await RunningProcess("calltrace", ["pki", "issue", "--ca", ca, "--out", pki, "--kind", "gateway", "--name", "crm"]).waitForExit())
        #expect(issued.status == 0)
        #expect(FileManager.default.fileExists(atPath: "\(pki)/gateway-crm.crt"))
        // Gateways' and operators' certificates live 90 and 30 days unless told otherwise.
        for (file, days) in [("gateway-crm", 90), ("operator-admin", 30), ("media", 365)] {
            let end = try await run("/usr/bin/openssl", ["x509", "-noout", "-checkend", "\((days - 1) * 86400)", "-in", "\(pki)/\(file).crt"])
            let after = try await run("/usr/bin/openssl", ["x509", "-noout", "-checkend", "\((days + 1) * 86400)", "-in", "\(pki)/\(file).crt"])
            #expect(end.status == 0 && after.status == 1, "\(file) should expire in \(days) days")
        }
        let badName = try #require(await RunningProcess("calltrace", ["pki", "issue", "--ca", ca, "--out", pki, "--kind", "gateway", "--name", "CRM/evil"]).waitForExit())
        #expect(badName.status != 0)
        #expect(badName.stderr.contains("name must be lowercase letters"))

        let masterKey = directory.appendingPathComponent("identity.master-key").path
        FileManager.default.createFile(atPath: masterKey, contents: Data((0..<32).map { UInt8($0) }), attributes: [.posixPermissions: 0o600])
        let port = try freePort()
        let deployment = directory.appendingPathComponent("deployment.json").path
        try Data("""
            { "services": { "identity": "127.0.0.1:\(port)", "compliance": "127.0.0.1:\(ServiceSetup.nothingListens)" } }
            """.utf8).write(to: URL(fileURLWithPath: deployment))
        let mail = directory.appendingPathComponent("mail").path
        try FileManager.default.createDirectory(atPath: mail, withIntermediateDirectories: true)
        let service = try RunningProcess("calltrace-identity", [
            "--mail-outbox", mail,
            "--certificate", "\(pki)/identity.crt", "--private-key", "\(pki)/identity.key", "--ca", "\(pki)/ca.crt",
            "--master-key", masterKey, "--database", directory.appendingPathComponent("identity.sqlite").path,
            "--listen", "127.0.0.1:\(port)", "--log-format", "json", "--log-level", "debug", "--deployment", deployment,
        ])
        let calltrace = productsDirectory.appendingPathComponent("calltrace").path
        // The service found its peer (compliance) in the deployment file; so does the CLI.
        let target = ["--pki", pki, "--service", "identity", "--deployment", deployment]
        var health: ProcessResult?
        for _ in 0..<100 {
            let result = try await run(calltrace, ["health"] + target)
            if result.status == 0 { health = result; break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let serving = try #require(health)
        #expect(serving.stdout.contains("identity    127.0.0.1:\(port)  SERVING  version 0.1.0  schema \(schemaVersions["identity"]!)"),
                "\(serving.stdout)")
        let everything = try await run(calltrace, ["health", "--pki", pki, "--all", "--deployment", deployment])
        #expect(everything.status == 1)
        #expect(everything.stdout.contains("identity    127.0.0.1:\(port)  SERVING"), "\(everything.stdout)")
        #expect(everything.stdout.contains("compliance  127.0.0.1:\(ServiceSetup.nothingListens)  UNREACHABLE"), "\(everything.stdout)")
        #expect(!everything.stdout.contains("media"))
        // Without a target or a deployment file, no port is guessed.
        let nowhere = try await run(calltrace, ["health", "--pki", pki, "--service", "identity"], environment: [:])
        #expect(nowhere.status != 0 && nowhere.stderr.contains("give --target host:port, or --deployment FILE"), "\(nowhere.stderr)")
        // Another service on that port: said once, with both identities.
        let wrong = try await run(calltrace, ["health", "--pki", pki, "--service", "media", "--target", "127.0.0.1:\(port)"])
        #expect(wrong.status == 1)
        #expect(wrong.stdout.split(separator: "\n").count == 1 && wrong.stdout.contains("REFUSED")
                && wrong.stdout.contains("server identity is spiffe://calltrace.cli/service/identity, expected spiffe://calltrace.cli/service/media"),
                "\(wrong.stdout)")

        let metrics = try await run(productsDirectory.appendingPathComponent("calltrace").path, ["metrics"] + target)
        #expect(metrics.status == 0, "\(metrics.stderr)")
        #expect(metrics.stdout.contains("# TYPE ctrpc_server_calls_total counter"))
        #expect(metrics.stdout.contains(#"ctrpc_server_calls_total{service="identity",method="/calltrace.ops.v1.HealthService/Check",code="OK"}"#))
        #expect(metrics.stdout.contains(#"le="+Inf"}"#))

        // A gateway's certificate may check health but not read metrics.
        let asGateway = try await run(productsDirectory.appendingPathComponent("calltrace").path, ["metrics", "--as", "gateway-web"] + target)
        #expect(asGateway.status != 0)

        service.signal(SIGTERM)
        let exit = try #require(await service.waitForExit())
        #expect(exit.status == 0)
        // Debug-level JSON logs name methods and peers, never key material.
        #expect(exit.stderr.contains("\"method\":\"/calltrace.ops.v1.HealthService/Check\""))
        #expect(exit.stderr.contains("\"call_id\":\"1\""))
        #expect(exit.stderr.contains("\"duration_us\":"))
        let keyHex = (0..<32).map { String(format: "%02x", $0) }.joined()
        #expect(!exit.stderr.contains(keyHex))
        #expect(!exit.stderr.contains("BEGIN PRIVATE KEY"))
    }
}
