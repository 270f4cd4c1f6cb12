import CallTraceProto
import CallTraceServiceHost
import CallTraceStorage
import CallTraceTestSupport
import Foundation
import Testing

/// A vocabulary as a service declared it before the trail's words were typed: the American
/// spelling, and a name that is not dotted words.
private enum OlderVocabulary: String, AuditActionName {
    case organizationPurged = "organization.purged"
    case shouted = "Recording.Played"
    case oneWord = "played"
}

private enum BritishVocabulary: String, AuditActionName {
    case organisationPurged = "organisation.purged"
    case operatorAccess = "operator.access"
}

@Suite("P15: the audit trail's words are typed, in one spelling")
final class AuditVocabularyTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("calltrace-vocabulary-\(UUID().uuidString)")
    let database: Database
    let outbox: AuditOutbox

    init() throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        database = try Database(path: directory.appendingPathComponent("sender.sqlite").path,
                                migrations: SharedSchema.track.migrations)
        outbox = AuditOutbox(database: database, service: "media", jobs: JobQueue(database: database, clock: TestClock()))
    }

    deinit {
        database.close()
        try? FileManager.default.removeItem(at: directory)
    }

    @Test("The outbox refuses an action spelt `organization`, or not dotted lower-case words: the action fails and nothing is recorded; the British one is recorded as written")
    func outboxRefusesRetiredSpelling() async throws {
        let outbox = self.outbox
        for (action, why) in [(AuditAction(OlderVocabulary.organizationPurged), "spells organization; the trail writes organisation"),
                              (AuditAction(OlderVocabulary.shouted), "is not dotted lower-case words"),
                              (AuditAction(OlderVocabulary.oneWord), "is not dotted lower-case words"),
                              (AuditAction(BritishVocabulary.operatorAccess, member: "recordings play"), "is not dotted lower-case words"),
                              (AuditAction(BritishVocabulary.operatorAccess, member: "organizationAdmin"), "spells organization")] {
            let error = await #expect(throws: StorageError.self, "\(action)") {
                try await self.database.write { db in
                    try outbox.record(AuditRecord(org: "org-a", actor: "user:u1", action: action, resource: .organisation("org-a")), in: db)
                }
            }
            #expect(error?.message.contains(why) == true, "\(error?.message ?? "no error")")
            #expect(error?.message.hasSuffix("not recorded") == true)
        }
        #expect(try await outbox.pendingCount() == 0)

        try await database.write { db in
            try outbox.record(AuditRecord(org: "org-a", actor: "user:u1", action: AuditAction(BritishVocabulary.organisationPurged),
                                          resource: .organisation("org-a"), outcome: .failed, detail: "recordings=2"), in: db)
            try outbox.record(AuditRecord(org: "org-a", actor: "operator:ops", action: AuditAction(BritishVocabulary.operatorAccess, member: "recordingsPlay"),
                                          resource: .grant("grt_1"), outcome: .denied), in: db)
        }
        let stored = try await database.read { db in
            try db.query("SELECT event FROM audit_outbox ORDER BY id").map { try Calltrace_Compliance_V1_AuditEvent(serializedBytes: $0.blob("event") ?? Data()) }
        }
        #expect(stored.map { [$0.action, $0.resource, $0.outcome, $0.detail] } == [
            ["organisation.purged", "organisation:org-a", "failed", "recordings=2"],
            ["operator.access.recordingsPlay", "grant:grt_1", "denied", ""],
        ])
    }

    @Test("Each resource constructor writes its kind's one prefix; no kind, action check or outcome knows the American spelling")
    func resources() {
        let made: [(AuditResource, String)] = [
            (.organisation("org_1"), "organisation:org_1"), (.user("usr_1"), "user:usr_1"), (.grant("grt_1"), "grant:grt_1"),
            (.recording("rec_1"), "recording:rec_1"), (.shareLink("lnk_1"), "share_link:lnk_1"), (.call("call-1"), "call:call-1"),
            (.trackingNumber("01184960000"), "tracking_number:01184960000"), (.suppression("sup_1"), "suppression:sup_1"),
            (.blockedCaller("blk_1"), "blocked_caller:blk_1"),
            (.bundle("bun_1"), "bundle:bun_1"), (.subjectRequest("sar_1"), "subject_request:sar_1"), (.retentionRun("ret_1"), "retention_run:ret_1"),
            (.apiToken("api_1"), "api_token:api_1"), (.website("web_1"), "website:web_1"),
        ]
        #expect(made.map(\.0.name) == made.map(\.1))
        #expect(Set(made.map(\.0.kind)) == Set(AuditResource.Kind.allCases), "every kind has its constructor")
        #expect(AuditResource.Kind.allCases.allSatisfy { !$0.rawValue.contains("organization") })
        #expect(AuditOutcome.allCases.map(\.rawValue) == ["success", "denied", "failed"])
        #expect(AuditAction.problems(in: BritishVocabulary.self).isEmpty)
        #expect(AuditAction.problems(in: OlderVocabulary.self).count == 3)
    }

    @Test("A filter's words and a stored event's compare in the current spelling; a resource's id is never respelt")
    func canonicalSpelling() {
        for action in ["organization.purged", "organisation.purged"] {
            #expect(AuditSpelling.canonical(action: action) == "organisation.purged")
        }
        #expect(AuditSpelling.canonical(action: "recording.played") == "recording.played")
        for resource in ["organization:org_1", "organisation:org_1"] {
            #expect(AuditSpelling.canonical(resource: resource) == "organisation:org_1")
        }
        #expect(AuditSpelling.canonical(resource: "call:organization-7") == "call:organization-7", "a gateway chose that call id")
        #expect(AuditSpelling.canonical(resource: "organization:organization-7") == "organisation:organization-7")
    }
}
