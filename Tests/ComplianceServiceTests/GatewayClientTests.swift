import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTLS
import CallTraceTestSupport
import Foundation
import Logging
import Testing

/// libcalltrace (clients/c) built with -Wall -Wextra -Werror under AddressSanitizer and
/// UndefinedBehaviorSanitizer, driving transcript, media and compliance as a telephony gateway.
@Suite("The C gateway client against the real services", .overTLS)
struct GatewayClientTests {
    /// The example program under ASan and UBSan, after checking that the library's products
    /// are there.
    static func build() async throws -> String {
        let folder = try await CPrograms.folder(sanitize: "1")
        for product in ["libcalltrace.a", "libcalltrace.so", "calltrace.pc"] {
            #expect(FileManager.default.fileExists(atPath: "\(folder)/\(product)"), "\(product)")
        }
        return "\(folder)/calltrace-gateway-example"
    }

    @Test("Health, start call (record and notice), callback greeting, upload from a file descriptor with its checksum, complete call — and a server with another identity is named")
    func gatewayCall() async throws {
        let example = try await Self.build()
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        _ = try await Calltrace_Compliance_V1_NoticeServiceClient(try deployment.compliance.client()).setNoticeSettings(.with {
            $0.orgID = org; $0.settings = .with { $0.firmName = "Smith & Co Solicitors"; $0.inboundGreeting = true }
        }, options: try bearer(admin))
        let credentials = try deployment.pki.credentials(for: TemporaryPKI.identity("gateway", "telephony"))
        let audio = FileManager.default.temporaryDirectory.appendingPathComponent("call-\(UUID().uuidString).wav")
        let file = wavFile(seconds: 3)
        try file.write(to: audio)
        defer { try? FileManager.default.removeItem(at: audio) }
        func arguments(transcript: Int) -> [String] {
            ["127.0.0.1", "\(transcript)", "\(deployment.media.instance.port)", "\(deployment.compliance.instance.port)",
             credentials.certificateChainPath, credentials.privateKeyPath, credentials.trustRootsPath, TemporaryPKI.trustDomain,
             "gw-call-1", "0118 496 0000", "07700 900123", audio.path]
        }
        let environment = ["ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"]

        let result = try await run(example, arguments(transcript: deployment.transcript.instance.port), environment: environment)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let lines = Dictionary(result.stdout.split(separator: "\n").compactMap { line -> (String, String)? in
            guard let equals = line.firstIndex(of: "=") else { return nil }
            return (String(line[..<equals]), String(line[line.index(after: equals)...]))
        }, uniquingKeysWith: { $1 })
        #expect(lines["health.transcript"] == "SERVING" && lines["health.media"] == "SERVING" && lines["health.compliance"] == "SERVING", "status \(result.status) out [\(result.stdout)] err [\(result.stderr)]")
        #expect(lines["org"] == org && lines["record"] == "1"
                && lines["notice"] == "Thank you for calling Smith & Co Solicitors. Calls are recorded and transcribed to help us deal with your enquiry.",
                "\(lines["notice"] ?? "")")
        #expect(lines["greeting"] == "This is Smith & Co Solicitors returning your call. This call is recorded.")
        #expect(lines["completed"] == "1")
        let recording = try #require(lines["recording"])
        #expect(!result.stderr.contains("Sanitizer"), "\(result.stderr)")

        // What the services now hold: the call record points at the recording, whose audio is the file.
        let call = try await deployment.calls().getCall(.with { $0.orgID = org; $0.callID = "gw-call-1" }, options: try bearer(admin)).call
        #expect(call.recordingID == recording && call.outcome == .answered)
        let played = try await deployment.recordings().playRecording(.with { $0.orgID = org; $0.recordingID = recording }, options: try bearer(admin)) { stream in
            var data = Data()
            for try await piece in stream { data += piece.data }
            return data
        }
        #expect(played == file)

        // Pointed at compliance where transcript should be: refused, naming both identities.
        let wrong = try await run(example, arguments(transcript: deployment.compliance.instance.port), environment: environment)
        #expect(wrong.status == 1 && wrong.stderr.contains("server identity is \(TemporaryPKI.identity("service", "compliance")), expected \(TemporaryPKI.identity("service", "transcript"))"),
                "\(wrong.stderr)")
    }

    @Test("Many calls at once on one connection — eight threads of health calls beside four uploads — and the non-blocking API; an upload with a 2 MiB call id is refused by media, not overflowing the client's buffer — under ASan+UBSan and under TSan", arguments: ["1", "thread"])
    func concurrency(sanitize: String) async throws {
        let folder = try await CPrograms.folder(sanitize: sanitize)
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let credentials = try deployment.pki.credentials(for: TemporaryPKI.identity("gateway", "telephony"))
        let audio = FileManager.default.temporaryDirectory.appendingPathComponent("concurrent-\(UUID().uuidString).wav")
        let file = wavFile(seconds: 200)  // 3.2 MB: several windows' worth
        try file.write(to: audio)
        defer { try? FileManager.default.removeItem(at: audio) }
        // The program uploads the recordings of calls concurrent-1…4: started first, as a gateway does.
        for n in 1...4 {
            _ = try await deployment.calls(as: TemporaryPKI.telephony).startCall(.with {
                $0.callID = "concurrent-\(n)"; $0.trackingNumber = "01184960000"; $0.callerNumber = "07700900123"; $0.direction = .inbound
            })
        }
        let result = try await run("\(folder)/calltrace-concurrency-test", [
            "127.0.0.1", "\(deployment.media.instance.port)", credentials.certificateChainPath, credentials.privateKeyPath, credentials.trustRootsPath,
            TemporaryPKI.trustDomain, org, audio.path,
        ], environment: ["ASAN_OPTIONS": "detect_leaks=1", "TSAN_OPTIONS": "halt_on_error=1"])
        #expect(result.status == 0 && result.stdout.contains("threads=1") && result.stdout.contains("nonblocking=1")
                && result.stdout.contains("long_call_id_refused=1"), "\(result.stdout)\n\(result.stderr)")
        #expect(!result.stderr.contains("Sanitizer"), "\(result.stderr)")
        let recordings = result.stdout.split(separator: "\n").filter { $0.hasPrefix("recording=rec_") }.map { String($0.dropFirst("recording=".count)) }
        #expect(Set(recordings).count == 4, "\(result.stdout)")
        for recording in recordings {
            let played = try await deployment.recordings().playRecording(.with { $0.orgID = org; $0.recordingID = recording }, options: try bearer(admin)) { stream in
                var data = Data()
                for try await piece in stream { data += piece.data }
                return data
            }
            #expect(played == file, "each upload, interleaved with three others and 160 calls, arrived whole")
        }
    }

    @Test("A lone caller's call ends at its deadline, not at the server's answer; while one thread waits for a slow answer, others' answers and a non-blocking call's reach them; sixteen uploads at once fill the socket and arrive whole; calls still running when their client is freed end CANCELLED and are freed after it — under ASan+UBSan and TSan",
          arguments: ["1", "thread"])
    func deadlinesAndHandOff(sanitize: String) async throws {
        let folder = try await CPrograms.folder(sanitize: sanitize)
        let fixture = try EchoFixture()
        let credentials = try fixture.pki.credentials(for: TemporaryPKI.identity("gateway", "telephony"))
        let result = try await run("\(folder)/calltrace-deadline-test", [
            "127.0.0.1", "\(fixture.server.port)", credentials.certificateChainPath, credentials.privateKeyPath, credentials.trustRootsPath,
            EchoFixture.serverIdentity,
        ], environment: ["ASAN_OPTIONS": "detect_leaks=1", "TSAN_OPTIONS": "halt_on_error=1"])
        #expect(result.status == 0 && result.stdout.contains("deadline_code=DEADLINE_EXCEEDED") && result.stdout.contains("handoff=1")
                && result.stdout.contains("writers=1") && result.stdout.contains("detached=1"),
                "\(result.stdout)\n\(result.stderr)")
        #expect(!result.stderr.contains("Sanitizer"), "\(result.stderr)")
    }

    @Test("With the CA's revocation list naming the server's certificate, the C client refuses the server (UNAUTHENTICATED, certificate revoked); with a list naming another certificate, or none, it calls it")
    func revocation() async throws {
        let folder = try await CPrograms.folder(sanitize: "1")
        let fixture = try EchoFixture()
        let credentials = try fixture.pki.credentials(for: TemporaryPKI.identity("gateway", "telephony"))
        let retired = try fixture.pki.newCredentials(for: TemporaryPKI.identity("gateway", "retired"))
        let keeping = try fixture.pki.revocationList(revoking: [retired])
        let revoking = try fixture.pki.revocationList(revoking: [try fixture.pki.credentials(for: EchoFixture.serverIdentity)])
        let result = try await run("\(folder)/calltrace-revocation-test", [
            "127.0.0.1", "\(fixture.server.port)", credentials.certificateChainPath, credentials.privateKeyPath, credentials.trustRootsPath,
            EchoFixture.serverIdentity, keeping, revoking,
        ], environment: ["ASAN_OPTIONS": "detect_leaks=1"])
        #expect(result.status == 0 && result.stdout.contains("kept=1") && result.stdout.contains("refused=1") && result.stdout.contains("unchecked=1"),
                "\(result.stdout)\n\(result.stderr)")
        #expect(!result.stderr.contains("Sanitizer"), "\(result.stderr)")
    }

    @Test("libcalltrace given a service's replicas (host \"host:port,host:port\", port 0): one that refuses connections and one that never answers are passed over, calls spread over the others and each is sent once; the non-blocking API and a stream work across them; malformed lists are refused")
    func replicas() async throws {
        let folder = try await CPrograms.folder(sanitize: "1")
        let fixture = try EchoFixture()
        let secondEcho = EchoService()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let second = try RPCServer(configuration: .init(credentials: try fixture.pki.credentials(for: EchoFixture.serverIdentity),
                                                        info: .init(serviceName: "media", version: "test")),
                                   services: [secondEcho], logger: logger)
        defer { second.stop() }
        let credentials = try fixture.pki.credentials(for: TemporaryPKI.identity("gateway", "telephony"))
        let silent = try TCPListener(host: "127.0.0.1", port: 0)  // never accepts: TCP connects, TLS never answers
        defer { silent.shutdown() }
        let addresses = "127.0.0.1:\(try freePort()),127.0.0.1:\(silent.port),127.0.0.1:\(fixture.server.port), 127.0.0.1:\(second.port)"
        let result = try await run("\(folder)/calltrace-replicas-test", [
            addresses, credentials.certificateChainPath, credentials.privateKeyPath, credentials.trustRootsPath, EchoFixture.serverIdentity,
        ], environment: ["ASAN_OPTIONS": "detect_leaks=1"])
        #expect(result.status == 0 && ["records=40", "nonblocking=20", "stream=1", "refused=1", "ipv6=1"].allSatisfy { result.stdout.contains($0) },
                "\(result.stdout)\n\(result.stderr)")
        #expect(!result.stderr.contains("Sanitizer"), "\(result.stderr)")
        // Each Record call was taken once, and by both live replicas.
        let seen = (fixture.echo.observations.recordCounts["spread"] ?? 0, secondEcho.observations.recordCounts["spread"] ?? 0)
        #expect(seen.0 + seen.1 == 40 && seen.0 > 0 && seen.1 > 0, "\(seen)")
    }

    @Test("libcalltrace's own checks, against a ctrpc/1 server and PKI of the program's own: upload headers too long for a frame refused and a 2 MiB one sent whole; calls outliving their client; a 64-character org id kept whole; revocation lists taken or refused — under ASan+UBSan and TSan",
          arguments: ["1", "thread"])
    func unitChecks(sanitize: String) async throws {
        let folder = try await CPrograms.folder(sanitize: sanitize)
        let result = try await run("\(folder)/calltrace-unit-test", [], environment: [
            "ASAN_OPTIONS": "detect_leaks=1", "TSAN_OPTIONS": "halt_on_error=1", "TMPDIR": FileManager.default.temporaryDirectory.path,
        ])
        #expect(result.status == 0 && ["header=1", "detached=1", "org_id=1", "revocation=1"].allSatisfy { result.stdout.contains($0) },
                "\(result.stdout)\n\(result.stderr)")
        #expect(!result.stderr.contains("Sanitizer"), "\(result.stderr)")
    }
}

@Suite("The Swift client module: CallTraceConnections from a file and the environment", .overTLS, .serialized)
struct SwiftClientModuleTests {
    @Test("Settings come from a small JSON file with the environment over it; each service is reached as its own identity; missing or malformed settings are named")
    func connections() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, _) = try await deployment.organisation(tracking: "01184960000")
        let credentials = try deployment.pki.credentials(for: TemporaryPKI.identity("gateway", "telephony"))
        let file = deployment.pki.directory.appendingPathComponent("client.json").path
        let settings = CallTraceConnections.Settings(certificate: credentials.certificateChainPath, privateKey: credentials.privateKeyPath,
                                                     ca: credentials.trustRootsPath, trustDomain: TemporaryPKI.trustDomain, services: [
                                                         "identity": "127.0.0.1:\(deployment.identity.instance.port)",
                                                         "media": "127.0.0.1:\(deployment.media.instance.port)",
                                                         "compliance": "127.0.0.1:\(deployment.compliance.instance.port)",
                                                     ])
        try JSONEncoder().encode(settings).write(to: URL(fileURLWithPath: file))
        // Transcript's address comes from the environment.
        let environment = ["CALLTRACE_CLIENT_CONFIG": file, "CALLTRACE_TRANSCRIPT_ADDRESS": "127.0.0.1:\(deployment.transcript.instance.port)"]
        let connections = try CallTraceConnections(environment: environment)
        defer { connections.close() }
        let started = try await Calltrace_Transcript_V1_CallServiceClient(connections.transcript).startCall(.with {
            $0.callID = "swift-1"; $0.trackingNumber = "01184960000"; $0.callerNumber = "07700 900123"; $0.direction = .inbound
        })
        #expect(started.orgID == org && started.record)
        for client in [connections.identity, connections.media, connections.compliance] {
            let health = try await client.unary(Calltrace_Ops_V1_HealthService.check, .init())
            #expect(health.status == .serving)
        }

        #expect(throws: CallTraceConnections.SettingsError.self) { try CallTraceConnections.settings(environment: ["CALLTRACE_CLIENT_CA": "/x"]) }
        do {
            _ = try CallTraceConnections.settings(environment: ["CALLTRACE_CLIENT_CONFIG": file, "CALLTRACE_MEDIA_ADDRESS": "nowhere"])
            Issue.record("a malformed address was accepted")
        } catch { #expect("\(error)".contains("the address of media must be host:port, not nowhere")) }
        do {
            _ = try CallTraceConnections.settings(environment: ["CALLTRACE_CLIENT_CA": "/x"])
        } catch { #expect("\(error)" == "client settings lack certificate, private_key, trust_domain") }
    }
}
