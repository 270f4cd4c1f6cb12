@testable import ComplianceDocuments
@testable import CallTraceKeys
import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import CallTraceTestSupport
@testable import ComplianceDomain
import Foundation
import Testing

/// (Identity here has no compliance peer: the chain holds only the events a test appends.)
extension ComplianceDeployment {
    /// The organisation's last chain index, read from compliance's database (0 with no events).
    func head(of org: String) throws -> Int64 {
        try compliance.instance.database.sync { db in
            try db.query("SELECT MAX(chain_index) AS n FROM audit_chain WHERE org_id = ?", org).first?.int("n") ?? 0
        }
    }

    /// An attacker with the database file (not the keys): the organisation's events from `index` on deleted.
    func deleteEvents(of org: String, from index: Int64) throws {
        try compliance.instance.database.sync { db in
            _ = try db.execute("DELETE FROM audit_chain WHERE org_id = ? AND chain_index >= ?", org, index)
        }
    }

    /// …and compliance's own checkpoints of it.
    func deleteCheckpoints(of org: String) throws {
        try compliance.instance.database.sync { db in _ = try db.execute("DELETE FROM audit_checkpoints WHERE org_id = ?", org) }
    }

    /// The deployment's signing key, as `GetSigningKey` publishes it.
    func signingKey() async throws -> Data {
        let key = try await Calltrace_Compliance_V1_OffboardingServiceClient(try compliance.client()).getSigningKey(.init())
        return try #require(Data(base64Encoded: key.publicKey))
    }

    /// Whether the daily checkpoint run has caught up with compliance's clock: its next time is
    /// ahead and no run is queued or running (a failed one is dead, with its reason).
    func dailyCheckpointsCaughtUp() async throws -> Bool {
        let now = compliance.clock.nowUnixMs
        return try await compliance.instance.database.read { db in
            try db.query("SELECT 1 FROM jobs WHERE kind = ? AND state != 'dead'", AuditCheckpointDaily.kind).isEmpty
                && (try db.query("SELECT next_run_at_unix_ms FROM job_schedules WHERE name = 'audit-checkpoints'").first?
                    .int("next_run_at_unix_ms") ?? .max) > now
        }
    }

    /// Waits until the daily run is scheduled, then moves compliance's clock a day on.
    func passADay() async throws {
        #expect(try await eventually {
            try await compliance.instance.database.read { db in !(try db.query("SELECT 1 FROM job_schedules WHERE name = 'audit-checkpoints'").isEmpty) }
        }, "the daily checkpoint run is scheduled")
        compliance.clock.advance(by: .seconds(86_400 + 60))
    }
}

@Suite("Compliance: signed checkpoints of the audit chain (P15, issue 27.7)", .serialized)
struct AuditCheckpointTests {
    @Test("P15: the newest events deleted from the database are named as missing — against compliance's own checkpoint, and against the firm's copy when compliance's are deleted too")
    func newestEventsDeleted() async throws {
        let deployment = try await ComplianceDeployment()
        defer { Task { await deployment.stop() } }
        let (org, _, admin) = try await deployment.identity.newOrganisation()
        _ = try await deployment.append(6, org: org)
        let audit = try deployment.audit()
        let kept = try await audit.getAuditCheckpoint(.with { $0.orgID = org }, options: try bearer(admin)).checkpoint
        let head = try deployment.head(of: org)
        #expect(head >= 6 && kept.chainIndex == UInt64(head) && kept.head.count == 64 && kept.reason == .requested && kept.orgID == org)
        #expect(kept.document.hasPrefix("CALLTRACE AUDIT CHECKPOINT v1\n") && kept.checkpointID.hasPrefix("ckp_"))
        let verdict = AuditCheckpointDocument.verify(kept.document, pinned: try await deployment.signingKey())
        #expect(verdict.valid && verdict.chainIndex == head && verdict.head == kept.head && verdict.organisation == org, "\(verdict.reason)")
        #expect(try await audit.getAuditCheckpoint(.with { $0.orgID = org }, options: try bearer(admin)).checkpoint.checkpointID == kept.checkpointID,
                "asked again with the chain unchanged: the same checkpoint, not another")
        let before = try await audit.verifyAuditChain(.with { $0.orgID = org; $0.checkpointDocument = kept.document }, options: try bearer(admin))
        #expect(before.intact && before.checkpointChecks.map(\.source) == [.given, .compliance] && before.checkpointChecks.allSatisfy { $0.finding == .holds })

        // The newest two events deleted: the chain still links from its first event to its new last.
        try deployment.deleteEvents(of: org, from: head - 1)
        let truncated = try await audit.verifyAuditChain(.with { $0.orgID = org }, options: try bearer(admin))
        #expect(!truncated.intact && truncated.eventsChecked == UInt64(head - 2) && truncated.firstBrokenIndex == UInt64(head - 1) && truncated.head.isEmpty)
        #expect(truncated.reason.contains("events \(head - 1)–\(head) are missing") && truncated.reason.contains("it now ends at event \(head - 2)"),
                "\(truncated.reason)")
        let stored = try #require(truncated.checkpointChecks.first)
        #expect(truncated.checkpointChecks.count == 1 && stored.source == .compliance && stored.finding == .eventsMissing
            && stored.fromIndex == UInt64(head - 1) && stored.throughIndex == UInt64(head) && stored.checkpoint.checkpointID == kept.checkpointID)

        // Compliance's checkpoints deleted as well: alone, the chain verifies, as it did before
        // checkpoints; the firm's kept copy still names what is gone.
        try deployment.deleteCheckpoints(of: org)
        let alone = try await audit.verifyAuditChain(.with { $0.orgID = org }, options: try bearer(admin))
        #expect(alone.intact && alone.checkpointChecks.isEmpty)
        let given = try await audit.verifyAuditChain(.with { $0.orgID = org; $0.checkpointDocument = kept.document }, options: try bearer(admin))
        let check = try #require(given.checkpointChecks.first)
        #expect(!given.intact && given.firstBrokenIndex == UInt64(head - 1) && given.checkpointChecks.count == 1 && check.source == .given
            && check.finding == .eventsMissing && check.fromIndex == UInt64(head - 1) && check.throughIndex == UInt64(head), "\(given.reason)")
    }

    @Test("P15: all of a firm's events deleted are named as missing from event 1; the daily run signs nothing over the damage and is dead-lettered naming the firm")
    func allEventsDeleted() async throws {
        let deployment = try await ComplianceDeployment()
        defer { Task { await deployment.stop() } }
        let (org, _, admin) = try await deployment.identity.newOrganisation()
        _ = try await deployment.append(4, org: org)
        let audit = try deployment.audit()
        let kept = try await audit.getAuditCheckpoint(.with { $0.orgID = org }, options: try bearer(admin)).checkpoint
        let head = try deployment.head(of: org)

        try deployment.deleteEvents(of: org, from: 1)
        let verdict = try await audit.verifyAuditChain(.with { $0.orgID = org }, options: try bearer(admin))
        #expect(!verdict.intact && verdict.eventsChecked == 0 && verdict.firstBrokenIndex == 1, "\(verdict.reason)")
        #expect(verdict.reason.contains("events 1–\(head) are missing") && verdict.reason.contains("it now has no events"), "\(verdict.reason)")
        #expect(verdict.checkpointChecks.first.map { $0.fromIndex == 1 && $0.throughIndex == UInt64(head) && $0.finding == .eventsMissing } == true)

        // The daily run: no checkpoint over a chain that lost its latest one; operators see why.
        try await deployment.passADay()
        #expect(try await eventually { try await deployment.dailyCheckpointsCaughtUp() })
        let dead = try await deployment.compliance.instance.jobs.list(state: "dead").filter { $0.kind == AuditCheckpointDaily.kind }
        #expect(dead.count == 1 && (dead.first?.lastError ?? "").contains(org), "\(dead)")
        let listed = try await audit.listAuditCheckpoints(.with { $0.orgID = org }, options: try bearer(admin)).checkpoints
        #expect(listed.map(\.checkpointID) == [kept.checkpointID])
        // Asked for a checkpoint now, compliance says the trail was cut instead of handing back the old one.
        let asked = await #expect(throws: RPCError.self) { _ = try await audit.getAuditCheckpoint(.with { $0.orgID = org }, options: try bearer(admin)) }
        #expect(asked?.code == .failedPrecondition && asked?.message.contains("no longer matches its latest checkpoint") == true, "\(String(describing: asked))")
    }

    @Test("P15: events replaced after a checkpoint (the newest deleted, new ones appended past it) are named as altered, from just after the earlier checkpoint that still holds")
    func eventsReplaced() async throws {
        let deployment = try await ComplianceDeployment()
        defer { Task { await deployment.stop() } }
        let (org, _, admin) = try await deployment.identity.newOrganisation()
        _ = try await deployment.append(3, org: org)
        let audit = try deployment.audit()
        let first = try await audit.getAuditCheckpoint(.with { $0.orgID = org }, options: try bearer(admin)).checkpoint
        _ = try await deployment.append(3, org: org, prefix: "second")
        let second = try await audit.getAuditCheckpoint(.with { $0.orgID = org }, options: try bearer(admin)).checkpoint
        #expect(second.chainIndex == first.chainIndex + 3)

        try deployment.deleteEvents(of: org, from: Int64(first.chainIndex) + 2)
        _ = try await deployment.append(4, org: org, prefix: "third")
        let verdict = try await audit.verifyAuditChain(.with { $0.orgID = org }, options: try bearer(admin))
        let check = try #require(verdict.checkpointChecks.first)
        #expect(!verdict.intact && check.finding == .eventsAltered && check.checkpoint.checkpointID == second.checkpointID
            && check.fromIndex == first.chainIndex + 1 && check.throughIndex == second.chainIndex, "\(verdict.reason)")
        #expect(verdict.firstBrokenIndex == first.chainIndex + 1 && verdict.reason.contains("event \(second.chainIndex) is not the one"), "\(verdict.reason)")
        let withFirst = try await audit.verifyAuditChain(.with { $0.orgID = org; $0.checkpointDocument = first.document }, options: try bearer(admin))
        #expect(withFirst.checkpointChecks.first?.finding == .holds, "the earlier checkpoint still holds")
    }

    @Test("A checkpoint is signed daily (the injected clock) for each organisation whose chain grew since its latest; ListAuditCheckpoints lists them newest first")
    func daily() async throws {
        let deployment = try await ComplianceDeployment()
        defer { Task { await deployment.stop() } }
        let (org, _, admin) = try await deployment.identity.newOrganisation()
        let other = try await deployment.identity.newOrganisation("Jones LLP")
        _ = try await deployment.append(3, org: org)
        #expect(try await deployment.append(2, org: other.org, prefix: "other").acknowledgedKeys.count == 2)
        let audit = try deployment.audit()
        let requested = try await audit.getAuditCheckpoint(.with { $0.orgID = org }, options: try bearer(admin)).checkpoint
        #expect(try await audit.listAuditCheckpoints(.with { $0.orgID = other.org }, options: try bearer(other.admin)).checkpoints.isEmpty)

        try await deployment.passADay()
        #expect(try await eventually { try await deployment.dailyCheckpointsCaughtUp() })
        let others = try await audit.listAuditCheckpoints(.with { $0.orgID = other.org }, options: try bearer(other.admin)).checkpoints
        let otherHead = UInt64(try deployment.head(of: other.org))
        #expect(others.count == 1 && others.first?.reason == .daily && others.first?.chainIndex == otherHead)
        let key = try await deployment.signingKey()
        #expect(others.allSatisfy { AuditCheckpointDocument.verify($0.document, pinned: key).valid && $0.keyID == DeletionCertificate.keyID(key) })
        #expect(try await audit.listAuditCheckpoints(.with { $0.orgID = org }, options: try bearer(admin)).checkpoints.map(\.checkpointID)
                    == [requested.checkpointID], "a chain that did not grow gets no new checkpoint")

        _ = try await deployment.append(2, org: org, prefix: "later")
        try await deployment.passADay()
        #expect(try await eventually {
            try await audit.listAuditCheckpoints(.with { $0.orgID = org }, options: try bearer(admin)).checkpoints.count == 2
        })
        let page = try await audit.listAuditCheckpoints(.with { $0.orgID = org; $0.pageSize = 1 }, options: try bearer(admin))
        #expect(page.checkpoints.first?.reason == .daily && page.checkpoints.first?.chainIndex == requested.chainIndex + 2 && !page.nextPageToken.isEmpty)
        let rest = try await audit.listAuditCheckpoints(.with { $0.orgID = org; $0.pageToken = page.nextPageToken }, options: try bearer(admin))
        #expect(rest.checkpoints.map(\.checkpointID) == [requested.checkpointID] && rest.nextPageToken.isEmpty)
        #expect(await code { _ = try await audit.listAuditCheckpoints(.with { $0.orgID = org; $0.pageToken = "nonsense" }, options: try bearer(admin)) }
                == .invalidArgument)
    }

    @Test("ExportAuditEvents carries, in its first message, a signed checkpoint of the head it runs through, even when its filter keeps no event")
    func exportCarriesACheckpoint() async throws {
        let deployment = try await ComplianceDeployment()
        defer { Task { await deployment.stop() } }
        let (org, _, admin) = try await deployment.identity.newOrganisation()
        _ = try await deployment.append(5, org: org)
        let audit = try deployment.audit()
        func export(_ request: Calltrace_Compliance_V1_ExportAuditEventsRequest) async throws -> [Calltrace_Compliance_V1_ExportAuditEventsResponse] {
            try await audit.exportAuditEvents(request, options: try bearer(admin)) { stream in
                var pieces: [Calltrace_Compliance_V1_ExportAuditEventsResponse] = []
                for try await piece in stream { pieces.append(piece) }
                return pieces
            }
        }
        let pieces = try await export(.with { $0.orgID = org })
        let checkpoint = try #require(pieces.first?.checkpoint)
        #expect(pieces.first?.hasCheckpoint == true && pieces.dropFirst().allSatisfy { !$0.hasCheckpoint })
        let head = UInt64(try deployment.head(of: org))
        #expect(checkpoint.reason == .export && checkpoint.chainIndex == head)
        let lines = pieces.flatMap { String(decoding: $0.lines, as: UTF8.self).split(separator: "\n") }
        let lastLine = try #require(lines.last)
        let last = try #require(try JSONSerialization.jsonObject(with: Data(lastLine.utf8)) as? [String: Any])
        #expect(lines.count == Int(checkpoint.chainIndex) && (last["chain_index"] as? String) == "\(checkpoint.chainIndex)", "\(last)")
        #expect(Data(base64Encoded: last["link"] as? String ?? "")?.hexString == checkpoint.head, "the checkpoint is the last exported event's link")
        #expect(AuditCheckpointDocument.verify(checkpoint.document, pinned: try await deployment.signingKey()).valid)
        #expect(try await audit.listAuditCheckpoints(.with { $0.orgID = org }, options: try bearer(admin)).checkpoints.map(\.checkpointID)
                    == [checkpoint.checkpointID])

        let none = try await export(.with { $0.orgID = org; $0.fromUnixMs = deployment.compliance.clock.nowUnixMs + 86_400_000 })
        #expect(none.count == 1 && none.first?.lines.isEmpty == true && none.first?.checkpoint.checkpointID == checkpoint.checkpointID,
                "nothing new: the same checkpoint")
    }

    @Test("A checkpoint another key signed, an altered one, or another organisation's is refused by VerifyAuditChain; another organisation's admin and a member get no checkpoint")
    func refusals() async throws {
        let deployment = try await ComplianceDeployment()
        defer { Task { await deployment.stop() } }
        let (org, _, admin) = try await deployment.identity.newOrganisation()
        let other = try await deployment.identity.newOrganisation("Jones LLP")
        let member = try await deployment.identity.newUser(.member, in: org, admin: admin)
        _ = try await deployment.append(3, org: org)
        _ = try await deployment.append(3, org: other.org, prefix: "other")
        let audit = try deployment.audit()
        let kept = try await audit.getAuditCheckpoint(.with { $0.orgID = org }, options: try bearer(admin)).checkpoint
        let theirs = try await audit.getAuditCheckpoint(.with { $0.orgID = other.org }, options: try bearer(other.admin)).checkpoint
        let forged = try Self.forge(kept.document, index: kept.chainIndex + 100)
        let altered = kept.document.replacingOccurrences(of: "\"chain_index\" : \(kept.chainIndex)", with: "\"chain_index\" : \(kept.chainIndex + 100)")
        #expect(altered != kept.document)
        for (name, document) in [("forged", forged), ("altered", altered), ("another organisation's", theirs.document), ("not a checkpoint", "hello")] {
            #expect(await code {
                _ = try await audit.verifyAuditChain(.with { $0.orgID = org; $0.checkpointDocument = document }, options: try bearer(admin))
            } == .invalidArgument, "\(name)")
        }
        for (who, token) in [("another organisation's admin", other.admin), ("a member", member)] {
            #expect(await code { _ = try await audit.getAuditCheckpoint(.with { $0.orgID = org }, options: try bearer(token)) } == .permissionDenied, "\(who)")
            #expect(await code { _ = try await audit.listAuditCheckpoints(.with { $0.orgID = org }, options: try bearer(token)) } == .permissionDenied, "\(who)")
        }
        #expect(await code { _ = try await audit.getAuditCheckpoint(.with { $0.orgID = org }, options: CallOptions()) } == .unauthenticated)
    }

    @Test("calltrace audit checkpoint, verify --checkpoint (the signature checked here against the pinned key first), checkpoints, export --checkpoint-out", .overTLS)
    func commandLine() async throws {
        let deployment = try await ComplianceDeployment()
        defer { Task { await deployment.stop() } }
        let (org, _, admin) = try await deployment.identity.newOrganisation()
        _ = try await deployment.append(5, org: org)
        _ = try deployment.pki.credentials(for: TemporaryPKI.identity("gateway", "web"), named: "gateway-web")
        let calltrace = productsDirectory.appendingPathComponent("calltrace").path
        let folder = deployment.pki.directory.path
        let target = ["--pki", folder, "--target", "127.0.0.1:\(deployment.compliance.instance.port)"]
        var environment = ProcessInfo.processInfo.environment
        environment["CALLTRACE_AS"] = "gateway-web"  // a gateway's own tooling; a firm's staff go through the web app (CLIThroughWebAppTests)
        environment["CALLTRACE_TOKEN"] = admin
        environment["CALLTRACE_SIGNING_KEY"] = folder + "/pinned/signing-key.pub"
        func cli(_ arguments: [String], _ environment: [String: String]) async throws -> ProcessResult {
            try await run(calltrace, arguments + target + ["--org", org], environment: environment)
        }
        let file = folder + "/checkpoint.txt"

        // Nothing pinned yet: downloaded, but said unchecked; verifying against it refuses.
        let unchecked = try await cli(["audit", "checkpoint", "--out", file], environment)
        #expect(unchecked.status == 0 && unchecked.stdout.contains("signature not checked: no pinned signing key"), "\(unchecked.stdout) \(unchecked.stderr)")
        let unpinned = try await cli(["audit", "verify", "--checkpoint", file], environment)
        #expect(unpinned.status == 1 && unpinned.stdout.contains("INVALID: no pinned signing key"), "\(unpinned.stdout) \(unpinned.stderr)")

        let pinned = try await run(calltrace, ["offboarding", "signing-key"] + target, environment: environment)
        #expect(pinned.status == 0 && pinned.stdout.contains("(first use)"), "\(pinned.stdout) \(pinned.stderr)")
        let downloaded = try await cli(["audit", "checkpoint", "--out", file], environment)
        let head = try deployment.head(of: org)
        #expect(downloaded.status == 0 && downloaded.stdout.contains("event \(head)") && downloaded.stdout.contains("signature valid"),
                "\(downloaded.stdout) \(downloaded.stderr)")
        #expect(try String(contentsOfFile: file, encoding: .utf8).hasPrefix("CALLTRACE AUDIT CHECKPOINT v1\n"))
        let json = try await cli(["audit", "checkpoint", "--json"], environment)
        #expect(json.status == 0 && json.stdout.contains("\"chainIndex\":\(head),"), "\(json.stdout)")
        let holds = try await cli(["audit", "verify", "--checkpoint", file], environment)
        #expect(holds.status == 0 && holds.stdout.contains("checkpoint given (event \(head)") && holds.stdout.contains("holds"), "\(holds.stdout) \(holds.stderr)")
        #expect(try await cli(["audit", "checkpoints"], environment).stdout.contains("event \(head)"))
        let exportCheckpoint = folder + "/export-checkpoint.txt"
        let exported = try await cli(["audit", "export", "--out", folder + "/trail.jsonl", "--checkpoint-out", exportCheckpoint], environment)
        #expect(exported.status == 0 && exported.stderr.contains("wrote the export's checkpoint"), "\(exported.stderr)")
        #expect(AuditCheckpointDocument.verify(try String(contentsOfFile: exportCheckpoint, encoding: .utf8), pinned: try await deployment.signingKey()).valid)

        // A forgery (another key) is refused here, before compliance is asked; so is a file altered.
        let forgery = folder + "/forged.txt"
        try Self.forge(try String(contentsOfFile: file, encoding: .utf8), index: UInt64(head) + 100).write(toFile: forgery, atomically: true, encoding: .utf8)
        let forged = try await cli(["audit", "verify", "--checkpoint", forgery], environment)
        #expect(forged.status == 1 && forged.stdout.contains("INVALID checkpoint: signed by key") && forged.stdout.contains("not by the pinned key"),
                "\(forged.stdout) \(forged.stderr)")
        let otherKey = try await cli(["audit", "verify", "--checkpoint", file, "--public-key", Data(repeating: 9, count: 32).base64EncodedString()], environment)
        #expect(otherKey.status == 1 && otherKey.stdout.contains("not by the pinned key"), "\(otherKey.stdout)")

        // The newest events and compliance's checkpoints deleted: the kept file names what is missing.
        try deployment.deleteEvents(of: org, from: head - 1)
        try deployment.deleteCheckpoints(of: org)
        #expect(try await cli(["audit", "verify"], environment).status == 0, "without the firm's copy nothing shows")
        let truncated = try await cli(["audit", "verify", "--checkpoint", file], environment)
        #expect(truncated.status == 1 && truncated.stdout.contains("BROKEN at event \(head - 1)")
            && truncated.stdout.contains("EVENTS \(head - 1)–\(head) MISSING"), "\(truncated.stdout) \(truncated.stderr)")
    }

    /// `document`'s checkpoint claiming `index`, signed by a fresh key that names itself.
    static func forge(_ document: String, index: UInt64) throws -> String {
        let forger = try Ed25519Signer(seed: try SecretKey.random())
        let body = try #require(document.range(of: SignedDocument.begin).map { document[..<$0.lowerBound].dropFirst(AuditCheckpointDocument.title.count) })
        let json = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        var claimed = json
        claimed["chain_index"] = Int(index)
        claimed["signing_key"] = nil
        return try SignedDocument.sign(title: AuditCheckpointDocument.title, claimed, with: forger)
    }
}
