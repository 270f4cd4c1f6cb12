import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import CallTraceSync
import CallTraceTestSupport
import Foundation
import Logging
import Testing

/// The actions these tests record, as a service's vocabulary declares them.
enum SenderAction: String, AuditActionName {
    case recordingPlayed = "recording.played"
    case recordingDeleted = "recording.deleted"
    case loginFailed = "login.failed"
}

@Suite("P15: the audit outbox delivers every event to compliance exactly once")
struct AuditOutboxTests {
    /// A sender's database: the shared tables, opened like a service would.
    func senderDatabase(_ path: String) throws -> Database {
        try Database(path: path, migrations: SharedSchema.track.migrations)
    }

    @Test("Events written while compliance is down wait, survive a sender restart, and arrive once")
    func deliveredExactlyOnce() async throws {
        let compliance = try ServiceSetup(service: "compliance")
        let senderPath = compliance.pki.directory.appendingPathComponent("media.sqlite").path
        let mediaClient = try RPCClient(
            target: .init(host: "127.0.0.1", port: compliance.port, identity: TemporaryPKI.identity("service", "compliance")),
            configuration: .init(credentials: try compliance.pki.credentials(for: TemporaryPKI.identity("service", "media"))))

        // 1. Five events recorded with compliance down; a sixth rolled back with its action.
        //    The forwarding job fails, and waits its backoff on the sender's clock.
        let clock = TestClock()
        var stored: [Data] = []
        do {
            let database = try senderDatabase(senderPath)
            let jobs = JobQueue(database: database, clock: clock)
            let outbox = AuditOutbox(database: database, service: "media", jobs: jobs)
            outbox.forward(to: mediaClient)
            try await database.write { db in
                for index in 0..<5 {
                    try outbox.record(AuditRecord(org: "org-a", actor: "user:u1", action: AuditAction(SenderAction.recordingPlayed),
                                                  resource: .recording("r\(index)")), in: db)
                }
            }
            await #expect(throws: StorageError.self) {
                try await database.write { db in
                    try outbox.record(AuditRecord(org: "org-a", actor: "user:u1", action: AuditAction(SenderAction.recordingDeleted),
                                                  resource: .recording("r9")), in: db)
                    throw StorageError("the action failed")
                }
            }
            #expect(await jobs.runDue() == 1)
            let job = try #require(try await jobs.list().first)
            #expect(job.kind == AuditOutbox.forwardJob && job.state == "ready" && job.attempts == 1)
            #expect(job.lastError?.contains("UNAVAILABLE") == true)
            #expect(await jobs.runDue() == 0, "the retry waits for its backoff")
            #expect(try await outbox.pendingCount() == 5)
            stored = try await database.read { db in try db.query("SELECT event FROM audit_outbox").compactMap { $0.blob("event") } }
            database.close()  // the sender stops
        }

        // 2. The sender restarts: the events and their job are still there. Compliance comes up;
        //    once the backoff has passed, they are delivered and the job is done.
        let database = try senderDatabase(senderPath)
        let jobs = JobQueue(database: database, clock: clock)
        let outbox = AuditOutbox(database: database, service: "media", jobs: jobs)
        outbox.forward(to: mediaClient)
        #expect(try await outbox.pendingCount() == 5)
        let process = try compliance.start()
        try await compliance.waitUntilServing(try compliance.client())
        clock.advance(by: .seconds(2))
        #expect(await jobs.runDue() >= 1)
        #expect(try await outbox.pendingCount() == 0)
        #expect(try await jobs.list().isEmpty)

        // 3. A redelivery (as after a lost acknowledgement) is acknowledged and not stored twice.
        var again = Calltrace_Compliance_V1_AppendAuditEventsRequest()
        again.events = try stored.map { try Calltrace_Compliance_V1_AuditEvent(serializedBytes: $0) }
        let response = try await mediaClient.unary(Calltrace_Compliance_V1_AuditService.appendAuditEvents, again)
        #expect(response.acknowledgedKeys.count == 5)

        // 4. A service cannot forge another's events, nor replace a stored event under its key;
        //    each such event is rejected with its reason, and a good one beside it is stored.
        var forged = Calltrace_Compliance_V1_AppendAuditEventsRequest()
        var event = again.events[0]
        event.idempotencyKey = "identity:forged"
        event.sourceService = "identity"
        var replaced = again.events[1]
        replaced.action = "recording.deleted"
        var good = again.events[0]
        good.idempotencyKey = "media:beside-the-bad-ones"
        forged.events = [event, replaced, good]
        let verdict = try await mediaClient.unary(Calltrace_Compliance_V1_AuditService.appendAuditEvents, forged)
        #expect(verdict.acknowledgedKeys == ["media:beside-the-bad-ones"])
        #expect(verdict.rejected.map(\.idempotencyKey) == ["identity:forged", replaced.idempotencyKey])
        #expect(verdict.rejected.first?.reason == "a service may append only its own events")
        #expect(verdict.rejected.last?.reason == "a different event was already stored under this idempotency_key")
        let gateway = try RPCClient(
            target: .init(host: "127.0.0.1", port: compliance.port, identity: TemporaryPKI.identity("service", "compliance")),
            configuration: .init(credentials: try compliance.pki.credentials(for: TemporaryPKI.identity("gateway", "web"))))
        let refused = await #expect(throws: RPCError.self) {
            try await gateway.unary(Calltrace_Compliance_V1_AuditService.appendAuditEvents, again)
        }
        #expect(refused?.code == .permissionDenied)

        // 5. Compliance stopped cleanly holds each event exactly once.
        process.signal(SIGTERM)
        #expect(await process.waitForExit()?.status == 0)
        let trail = try Database(path: compliance.database)
        let rows = try trail.sync { try $0.query("SELECT idempotency_key, source_service FROM audit_chain ORDER BY received_at_unix_ms, chain_index") }
        #expect(rows.count == 6)
        #expect(Set(rows.compactMap { $0.text("idempotency_key") }) == Set(again.events.map(\.idempotencyKey) + ["media:beside-the-bad-ones"]))
        #expect(rows.allSatisfy { $0.text("source_service") == "media" })
    }
}

@Suite("P15: one bad audit event never stops the others")
struct AuditPoisonTests {
    @Test("A poison event goes to the dead-letter table with compliance's reason; every later event, big batches included, is delivered")
    func poisonAndOversizedBatches() async throws {
        let compliance = try ServiceSetup(service: "compliance")
        let process = try compliance.start()
        let client = try RPCClient(
            target: .init(host: "127.0.0.1", port: compliance.port, identity: TemporaryPKI.identity("service", "compliance")),
            configuration: .init(credentials: try compliance.pki.credentials(for: TemporaryPKI.identity("service", "media"))))
        try await compliance.waitUntilServing(client)
        let database = try Database(path: compliance.pki.directory.appendingPathComponent("media.sqlite").path,
                                    migrations: SharedSchema.track.migrations)
        // Small batches by bytes: 300 events of ~200 bytes need several calls.
        let outbox = AuditOutbox(database: database, service: "media", jobs: JobQueue(database: database, clock: SystemClock()),
                                 batchSize: 200, batchBytes: 8 << 10)
        // The outbox itself refuses to record a malformed event (the action fails instead)…
        await #expect(throws: StorageError.self) {
            try await database.write { db in
                try outbox.record(AuditRecord(org: String(repeating: "x", count: 2 << 20), actor: "user:u", action: AuditAction(SenderAction.loginFailed),
                                              resource: .user("u"), outcome: .denied), in: db)
            }
        }
        // …and one that reached the outbox anyway (an older build wrote it) is dead-lettered, not resent forever.
        try await database.write { db in
            var poison = Calltrace_Compliance_V1_AuditEvent()
            poison.idempotencyKey = "media:poison"
            poison.orgID = ""
            poison.action = "recording.played"
            poison.sourceService = "media"
            try db.execute("INSERT INTO audit_outbox (idempotency_key, org_id, event, created_at_unix_ms) VALUES (?, ?, ?, ?)",
                           poison.idempotencyKey, "", try poison.serializedBytes() as Data, 0)
            for index in 0..<300 {
                try outbox.record(AuditRecord(org: "org-a", actor: "user:u1", action: AuditAction(SenderAction.recordingPlayed),
                                              resource: .recording("r\(index)")), in: db)
            }
        }
        while try await outbox.forwardOnce(client) > 0 {}
        #expect(try await outbox.pendingCount() == 0)
        #expect(try await outbox.deadLetters().map(\.key) == ["media:poison"])
        #expect(try await outbox.deadLetters().first?.reason == "org_id is not a valid organisation id")
        let gauges = await outbox.gauges()
        #expect(gauges.first { $0.name == "audit_dead_letters" }?.value == 1)
        process.signal(SIGTERM)
        #expect(await process.waitForExit()?.status == 0)
        let trail = try Database(path: compliance.database)
        #expect(try trail.sync { try $0.query("SELECT count(*) AS n FROM audit_chain")[0].int("n") } == 300)
    }
}

@Suite("SIGTERM drains a service process")
struct DrainProcessTests {
    @Test("SIGTERM during a slow call: the call completes, then the process exits 0")
    func sigtermDuringSlowCall() async throws {
        let compliance = try ServiceSetup(service: "compliance")
        // A generous grace: a loaded test run can make the slow call below take many seconds.
        let process = try compliance.start(compliance.flags + ["--log-format", "json", "--log-level", "trace"],
                                           environment: ["CALLTRACE_DRAIN_SECONDS": "60"])
        try await compliance.waitUntilServing(try compliance.client())
        // A slow call: tens of thousands of events, each stored with synchronous = FULL. Encoded
        // beforehand and sent on a raw connection, so it is surely in flight when SIGTERM lands.
        var request = Calltrace_Compliance_V1_AppendAuditEventsRequest()
        request.events = (0..<30_000).map { index in
            var event = Calltrace_Compliance_V1_AuditEvent()
            event.idempotencyKey = "media:drain-\(index)"
            event.orgID = "org-a"
            event.action = "recording.played"
            event.sourceService = "media"
            return event
        }
        var frame = Calltrace_Rpc_V1_Frame()
        frame.callID = 1
        frame.header.method = Calltrace_Compliance_V1_AuditService.appendAuditEvents.fullName
        frame.message = try request.serializedBytes()
        frame.endStream = true
        let raw = try RawTLSClient(certificate: try compliance.pki.credentials(for: TemporaryPKI.identity("service", "media")),
                                   caPath: compliance.pki.caPath)
        _ = try raw.connect(port: compliance.port)
        // Under a loaded test run the 30,000 inserts can take longer than the default 5 s.
        raw.setReceiveTimeout(.seconds(60))
        try raw.sendSettings()
        try raw.send(frame)
        // The signal must land while the call is in flight: wait for the server to say it started.
        #expect(await process.waitForOutput(containing: #""method":"\#(frame.header.method)","msg":"call started""#))
        let signalledAt = ContinuousClock.now
        process.signal(SIGTERM)
        // Window updates for call 1 may come first; the call ends with its status frame.
        let (reply, answeredAt) = try await onThread {
            while let frame = try raw.readFrame() {
                if frame.callID == 1 && frame.hasStatus { return (Optional(frame), ContinuousClock.now) }
            }
            return (nil, ContinuousClock.now)
        }
        let answer = try #require(reply)
        #expect(answer.status.code == 0, "\(answer.status.message)")
        #expect(try Calltrace_Compliance_V1_AppendAuditEventsResponse(serializedBytes: answer.message).acknowledgedKeys.count == 30_000)
        #expect(signalledAt < answeredAt)
        let exit = try #require(await process.waitForExit(timeout: patience))
        #expect(exit.status == 0)
        #expect(exit.stderr.contains("\"signal\":\"SIGTERM\""))
        // The stop came after the call: the log says "stopping" before "stopped", and every event is stored.
        #expect(exit.stderr.range(of: "\"msg\":\"stopping\"")!.lowerBound < exit.stderr.range(of: "\"msg\":\"stopped\"")!.lowerBound)
        let trail = try Database(path: compliance.database)
        #expect(try trail.sync { try $0.query("SELECT count(*) AS n FROM audit_chain")[0].int("n") } == 30_000)
    }
}

@Suite("Logs")
struct LogTests {
    func line(message: String, metadata: [String: String]) -> String {
        let captured = Locked("")
        var logger = Logger(label: "test") { _ in TextLogHandler(service: "test") { line in captured.withLock { $0 += line } } }
        logger.logLevel = .info
        logger.info("\(message)", metadata: metadata.mapValues { .string($0) })
        return captured.withLock { $0 }
    }

    @Test("Text logs escape control characters: a value cannot forge a line or drive the terminal")
    func escapesControlCharacters() {
        let forged = line(message: "call", metadata: ["method": "/x\nfake 2026 error identity: forged\u{1B}[2J"])
        #expect(forged.contains(#"method=/x\nfake 2026 error identity: forged\u{1B}[2J"#))
        #expect(forged.filter { $0 == "\n" }.count == 1)
        #expect(line(message: "a\tb", metadata: [:]).contains(#"a\tb"#))
        #expect(line(message: "plain é", metadata: [:]).hasSuffix("plain é\n"))
    }
}
