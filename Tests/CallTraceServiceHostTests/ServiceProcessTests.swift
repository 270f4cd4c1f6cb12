import CallTraceKeys
import CallTraceProto
import CallTraceRPC
@testable import CallTraceServiceHost
import CallTraceStorage
import CallTraceTLS
import CallTraceTestSupport
import Foundation
import Testing

/// The schema version each service's migrations reach today.
let schemaVersions: [String: UInt32] = ["identity": 9, "media": 10, "transcript": 8, "compliance": 11]

@Suite("Service executables: start-up refusals, health, SIGTERM")
struct ServiceProcessTests {
    @Test("A well-configured service serves health and info, then stops with exit 0 on SIGTERM", arguments: ["identity", "media", "transcript", "compliance"])
    func servesAndStops(service: String) async throws {
        let setup = try ServiceSetup(service: service)
        let process = try setup.start(setup.flags + ["--log-format", "json"])
        let client = try setup.client()
        try await setup.waitUntilServing(client)
        let info = try await client.unary(Calltrace_Ops_V1_ServerInfoService.getServerInfo, .init())
        #expect(info.serviceName == service)
        #expect(info.schemaVersion == schemaVersions[service])
        #expect(info.callerIdentity == "spiffe://calltrace.test/operator/ops")
        process.signal(SIGTERM)
        let exit = try #require(await process.waitForExit())
        #expect(exit.status == 0)
        #expect(exit.stderr.contains("\"msg\":\"stopped\""))
        // The database closed cleanly: another instance can open it now.
        _ = try Database(path: setup.database)
    }

    @Test("A service started by a test stops by itself when the test process's end of its lifeline closes")
    func lifeline() async throws {
        let setup = try ServiceSetup(service: "media")
        let process = try setup.start(setup.flags + ["--log-format", "json"])
        try await setup.waitUntilServing(try setup.client())
        process.cutLifeline()  // what the death of the test process does
        let exit = try #require(await process.waitForExit())
        #expect(exit.status == 0)
        #expect(exit.stderr.contains(#""signal":"lifeline closed""#))
        #expect(exit.stderr.contains("\"msg\":\"stopped\""))
    }

    @Test("Refuses to start, with one line naming the problem", arguments: [
        "master key not configured", "certificate missing", "key of another certificate", "certificate of another CA",
        "master key of 31 bytes", "master key readable by others", "database of a newer schema", "unknown config key",
        "malformed listen address", "required peer not configured", "unknown log level", "negative drain",
        "master key through a symbolic link", "certificate of another service", "certificate of a gateway",
        "deployment file with a bad address", "another service's setting in the file",
        "a bad value of the service's own setting",
    ])
    func refusals(_ case: String) async throws {
        let setup = try ServiceSetup()
        var flags = setup.flags
        func replace(_ flag: String, with value: String) {
            let index = flags.firstIndex(of: flag)!
            flags[index + 1] = value
        }
        let expected: String
        switch `case` {
        case "master key not configured":
            let index = flags.firstIndex(of: "--master-key")!
            flags.removeSubrange(index...(index + 1))
            expected = "master_key is not configured"
        case "certificate missing":
            replace("--certificate", with: setup.pki.directory.appendingPathComponent("missing.crt").path)
            expected = "is missing or unreadable"
        case "key of another certificate":
            replace("--private-key", with: try setup.pki.newCredentials(for: TemporaryPKI.identity("service", "identity")).privateKeyPath)
            expected = "does not match certificate"
        case "certificate of another CA":
            let foreign = try setup.pki.foreignCredentials(for: TemporaryPKI.identity("service", "identity"))
            replace("--certificate", with: foreign.certificateChainPath)
            replace("--private-key", with: foreign.privateKeyPath)
            expected = "is not valid under CA"
        case "master key of 31 bytes":
            let path = setup.pki.directory.appendingPathComponent("short.key").path
            FileManager.default.createFile(atPath: path, contents: Data(count: 31), attributes: [.posixPermissions: 0o600])
            replace("--master-key", with: path)
            expected = "must be exactly 32 bytes, found 31"
        case "master key readable by others":
            chmod(setup.masterKey, 0o644)
            expected = "accessible by group or others"
        case "database of a newer schema":
            let database = try Database(path: setup.database)
            // One past identity's newest: a database written by a later release.
            let newer = schemaVersions["identity"]! + 1
            try database.sync { try $0.execute("PRAGMA user_version = \(newer)") }
            expected = "newer schema version (\(newer))"
        case "unknown config key":
            let config = setup.pki.directory.appendingPathComponent("config.json").path
            try Data(#"{"listen": "127.0.0.1:1", "master_kee": "x"}"#.utf8).write(to: URL(fileURLWithPath: config))
            flags += ["--config", config]
            expected = #"unknown key "master_kee""#
        case "master key through a symbolic link":
            let link = setup.pki.directory.appendingPathComponent("linked.key").path
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: setup.masterKey)
            replace("--master-key", with: link)
            expected = "is a symbolic link"
        case "certificate of another service", "certificate of a gateway":
            let other = try setup.pki.credentials(for: `case` == "certificate of a gateway"
                                                  ? TemporaryPKI.identity("gateway", "web") : TemporaryPKI.identity("service", "media"))
            replace("--certificate", with: other.certificateChainPath)
            replace("--private-key", with: other.privateKeyPath)
            expected = "not spiffe://<trust-domain>/service/identity"
        case "required peer not configured":
            expected = "peer compliance is not configured; identity needs it to forward its audit events"
        case "unknown log level":
            flags += ["--log-level", "verbose"]
            expected = "log_level must be one of trace, debug, info, notice, warning, error, critical, not verbose"
        case "negative drain":
            let config = setup.pki.directory.appendingPathComponent("config.json").path
            try Data(#"{"drain_seconds": -5}"#.utf8).write(to: URL(fileURLWithPath: config))
            flags += ["--config", config]
            expected = "drain_seconds must be a whole number of seconds from 0 to 3600, not -5"
        case "deployment file with a bad address":
            let deployment = setup.pki.directory.appendingPathComponent("deployment.json").path
            try Data(#"{"services": {"compliance": "10.0.0.7"}}"#.utf8).write(to: URL(fileURLWithPath: deployment))
            flags += ["--deployment", deployment]
            expected = #"compliance must be host:port with a port from 1 to 65535, not "10.0.0.7""#
        case "another service's setting in the file":
            let config = setup.pki.directory.appendingPathComponent("config.json").path
            try Data(#"{"deepgram_url": "https://api.deepgram.com"}"#.utf8).write(to: URL(fileURLWithPath: config))
            flags += ["--config", config]
            expected = #"unknown key "deepgram_url""#
        case "a bad value of the service's own setting":
            flags += ["--smtp-url=http://mail.firm.test"]
            expected = "smtp_url must start with smtps:// (implicit TLS) or smtp:// (STARTTLS), not http://mail.firm.test"
        default:
            replace("--listen", with: "localhost")
            expected = "listen must be host:port"
        }
        let process = `case` == "required peer not configured"
            ? try RunningProcess("calltrace-identity", flags)
            : try setup.start(flags)
        let exit = try #require(await process.waitForExit())
        #expect(exit.status == 1)
        let lines = exit.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(exit.stderr)")
        #expect(exit.stderr.hasPrefix("calltrace-identity: cannot start: "))
        #expect(exit.stderr.contains(expected), "\(exit.stderr)")
    }

    @Test("Refuses a port already in use, and a database another instance holds")
    func busyPortAndDatabase() async throws {
        let setup = try ServiceSetup()
        let first = try setup.start()
        try await setup.waitUntilServing(try setup.client())

        let samePort = try #require(await setup.start(setup.flags.map { $0 == setup.database ? setup.database + "-other" : $0 }).waitForExit())
        #expect(samePort.status == 1)
        #expect(samePort.stderr.contains("127.0.0.1:\(setup.port) is already in use"))

        let otherPort = try freePort()
        let sameDatabase = try #require(await setup.start(setup.flags.map { $0 == "127.0.0.1:\(setup.port)" ? "127.0.0.1:\(otherPort)" : $0 }).waitForExit())
        #expect(sameDatabase.status == 1)
        #expect(sameDatabase.stderr.contains("already opened by another instance"))

        first.signal(SIGTERM)
        #expect(await first.waitForExit()?.status == 0)
    }

    @Test("A flood of idle TCP connections at a low descriptor limit: the service stays up and a legitimate call succeeds")
    func descriptorFlood() async throws {
        let setup = try ServiceSetup(service: "compliance")
        let process = try setup.start(setup.flags + ["--log-format", "json"], descriptorLimit: 400)
        let client = try setup.client()
        try await setup.waitUntilServing(client)
        var flood: [Int32] = []
        defer { for fd in flood { close(fd) } }
        for _ in 0..<1_000 { flood.append(try RawTLSClient.plainTCP(port: setup.port)) }
        let fresh = try setup.client(identity: TemporaryPKI.identity("gateway", "web"))
        let health = try await fresh.unary(Calltrace_Ops_V1_HealthService.check, .init(), options: .init(timeout: .seconds(60)))
        #expect(health.status == .serving)
        #expect(process.isRunning)
        // It sized its connection limit from the descriptor limit, and said so.
        #expect(process.stderr.contains("connections limited by the descriptor limit"))
        process.signal(SIGTERM)
        #expect(await process.waitForExit()?.status == 0)
    }

    @Test("Operators list a service's dead jobs with their reasons, read-only, from another process")
    func listDeadJobs() async throws {
        let setup = try ServiceSetup(service: "media")
        do {
            let database = try Database(path: setup.database, migrations: SharedSchema.track.migrations)
            let jobs = JobQueue(database: database, clock: TestClock())
            jobs.register(ScriptedHandler(kind: "transcription.notify", permanent: true))
            try await database.write { db in _ = try jobs.enqueue(kind: "transcription.notify", idempotencyKey: "rec_1", in: db) }
            _ = await jobs.runDue()
            database.close()
        }
        let output = try await run(productsDirectory.appendingPathComponent("calltrace-media").path, ["jobs", "--database", setup.database, "--json"])
        #expect(output.status == 0, "\(output.stderr)")
        let line = try #require(output.stdout.split(separator: "\n").first)
        let job = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(job["kind"] as? String == "transcription.notify")
        #expect(job["state"] as? String == "dead")
        #expect(job["last_error"] as? String == "the payload can never be processed")
    }

    @Test("Usage errors, as ArgumentParser's own (exit 64, nothing started): another service's setting, a setting without its value, a stray word",
          arguments: [(["--blob-store", "/srv/recordings"], "Unknown option '--blob-store'"),
                      (["--mail-outbox", "--listen", "127.0.0.1:1"], "Missing value for '--mail-outbox'"),
                      (["serve", "now"], "Unexpected argument 'now'"),
                      (["backup", "--to", "x.sqlite", "--deepgram-url", "https://x"], "Unknown option '--deepgram-url'")])
    func usageErrors(_ flags: [String], _ expected: String) async throws {
        let exit = try await run(productsDirectory.appendingPathComponent("calltrace-identity").path, flags)
        #expect(exit.status == 64, "\(exit.stderr)")
        #expect(exit.stderr.contains(expected), "\(exit.stderr)")
        #expect(!exit.stderr.contains("serving"))
    }

    @Test("--help lists the host's settings and the service's own, never another service's", arguments: [
        ("calltrace-media", ["--blob-store", "--telephony-gateways", "--listen", "--master-key"], ["--mail-outbox", "--deepgram-url"]),
        ("calltrace-identity", ["--mail-outbox", "--smtp-url", "--admin-operators", "--listen"], ["--blob-store", "--bank-holidays-file"]),
    ])
    func help(_ executable: String, _ listed: [String], _ absent: [String]) async throws {
        let exit = try await run(productsDirectory.appendingPathComponent(executable).path, ["--help"])
        #expect(exit.status == 0)
        for flag in listed { #expect(exit.stdout.contains(flag), "\(executable) --help lacks \(flag)") }
        for flag in absent { #expect(!exit.stdout.contains(flag), "\(executable) --help lists \(flag)") }
    }

    @Test("Configuration precedence: file, then environment, then flags")
    func precedence() async throws {
        let setup = try ServiceSetup()
        let config = setup.pki.directory.appendingPathComponent("config.json").path
        let fileOnly: [String: Any] = ["listen": "127.0.0.1:1", "certificate": setup.credentials.certificateChainPath,
                                       "private_key": setup.credentials.privateKeyPath, "ca": setup.credentials.trustRootsPath,
                                       "master_key": setup.masterKey, "database": setup.database, "mail_outbox": setup.mailbox]
        try JSONSerialization.data(withJSONObject: fileOnly).write(to: URL(fileURLWithPath: config))
        // The file says port 1, the environment says another, and the flag wins over both.
        let process = try setup.start(["--config", config, "--listen", "127.0.0.1:\(setup.port)"],
                                      environment: ["CALLTRACE_LISTEN": "127.0.0.1:2"])
        try await setup.waitUntilServing(try setup.client())
        process.signal(SIGTERM)
        #expect(await process.waitForExit()?.status == 0)
    }

    @Test("Online backup from another process while the service runs")
    func onlineBackup() async throws {
        let setup = try ServiceSetup()
        let process = try setup.start()
        try await setup.waitUntilServing(try setup.client())
        let target = setup.pki.directory.appendingPathComponent("backup.sqlite").path
        let backup = try #require(await RunningProcess("calltrace-identity", ["backup", "--database", setup.database, "--to", target]).waitForExit())
        #expect(backup.status == 0, "\(backup.stderr)")
        // Whatever the umask, the database and its backup are readable by their owner only; an
        // existing file is never overwritten.
        for file in [setup.database, target] {
            #expect(try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int == 0o600, "\(file)")
        }
        let again = try #require(await RunningProcess("calltrace-identity", ["backup", "--database", setup.database, "--to", target]).waitForExit())
        #expect(again.status == 1)
        #expect(again.stderr.contains("File exists"))
        let copy = try Database(path: target)
        #expect(copy.schemaVersion == schemaVersions["identity"].map(Int.init))
        process.signal(SIGTERM)
        #expect(await process.waitForExit()?.status == 0)
    }
}

@Suite("Master-key rotation command")
struct RotationCommandTests {
    @Test("rotate-master-key re-wraps the key store: the new key opens sealed data, the old key no longer does")
    func rotate() async throws {
        let setup = try ServiceSetup()
        let keyStorePath = setup.keyStore
        let sealed: Data
        do {
            let store = try Database(path: keyStorePath, migrations: KeyRing.migrations)
            let keys = KeyRing(keyStore: store, masterKey: try MasterKey.load(path: setup.masterKey))
            try keys.createKeys(for: "org-a")
            sealed = try keys.seal(Data("a transcript line".utf8), org: "org-a", table: "t", column: "c", row: "1")
            store.close()
        }
        let newKey = setup.pki.directory.appendingPathComponent("identity-new.key").path
        try MasterKey.generate(path: newKey)
        let rotated = try #require(await RunningProcess("calltrace-identity", [
            "rotate-master-key", "--database", setup.database, "--master-key", setup.masterKey, "--new-key", newKey,
        ]).waitForExit())
        #expect(rotated.status == 0, "\(rotated.stderr)")

        let store = try Database(path: keyStorePath, migrations: KeyRing.migrations)
        defer { store.close() }
        let withNew = KeyRing(keyStore: store, masterKey: try MasterKey.load(path: newKey))
        #expect(try withNew.open(sealed, org: "org-a", table: "t", column: "c", row: "1") == Data("a transcript line".utf8))
        let withOld = KeyRing(keyStore: store, masterKey: try MasterKey.load(path: setup.masterKey))
        let error = #expect(throws: KeyError.self) { _ = try withOld.open(sealed, org: "org-a", table: "t", column: "c", row: "1") }
        #expect(error?.kind == .tampered)
    }
}
