import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceStorage
import CallTraceTestSupport
import Foundation

/// What must hold of the whole deployment once it is idle after a kill, read from each
/// service's database, key store and folder (read-only, beside the running processes) and from
/// compliance's trail as the firm reads it.
extension CrashHarness {
    /// Appends each broken invariant to `violations`; answers how many were checked.
    func check(into violations: inout [String]) async throws -> Int {
        var checked = 0
        func expect(_ holds: Bool, _ what: @autoclosure () -> String) {
            checked += 1
            if !holds { violations.append(what()) }
        }
        func rows(_ service: String, _ sql: String, keys: Bool = false) throws -> [Row] {
            let setup = process(service).setup
            return try Database.query(readOnly: keys ? setup.keyStore : setup.database, sql)
        }

        // P10, P11: no recording without its call; every recording's file and key there, and no
        // file or key that no recording names (nothing a kill left half-written or half-deleted).
        let calls = Set(try rows("transcript", "SELECT org_id, id FROM calls").map { "\($0.text("org_id") ?? "")/\($0.text("id") ?? "")" })
        let recordings = try rows("media", "SELECT id, org_id, call_id, blob_id FROM recordings")
        let blobs = Set(recordings.compactMap { $0.text("blob_id") })
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: deployment.recordingsFolder))
        let mediaKeys = Set(try rows("media", "SELECT object_id FROM object_keys", keys: true).compactMap { $0.text("object_id") })
        for recording in recordings {
            let id = recording.text("id") ?? "", call = "\(recording.text("org_id") ?? "")/\(recording.text("call_id") ?? "")"
            let blob = recording.text("blob_id") ?? ""
            expect(calls.contains(call), "recording \(id) without its call \(call)")
            expect(files.contains(blob), "recording \(id) without its file \(blob)")
            expect(mediaKeys.contains(blob), "recording \(id) without its key")
        }
        for file in files { expect(blobs.contains(file), "a file no recording names in media's folder: \(file)") }
        for key in mediaKeys { expect(blobs.contains(key), "a key no recording names in media's key store: \(key)") }

        // P11: a call rung through the webhooks has in media each recording Twilio made of it,
        // exactly once, and Twilio keeps none.
        var rungRecordings: [String] = []
        for (call, made) in rung.sorted(by: { $0.key < $1.key }) {
            let kept = recordings.filter { $0.text("org_id") == org && $0.text("call_id") == call }
            expect(kept.count == made, "call \(call) through the webhooks: Twilio made \(made) recordings, media has \(kept.count)")
            rungRecordings += kept.compactMap { $0.text("id") }
        }
        let atTwilio = telephony.stack.fake.recordingSIDs
        expect(atTwilio.isEmpty, "Twilio still holds \(atTwilio.count) recordings")

        // No key left for a deleted call's caller or transcript.
        for object in try rows("transcript", "SELECT org_id, object_id FROM object_keys", keys: true) {
            let parts = (object.text("object_id") ?? "").split(separator: "/")
            guard parts.count == 3, parts[0] == "call" else { continue }
            expect(calls.contains("\(object.text("org_id") ?? "")/\(parts[1])"), "a key of call \(parts[1]) that transcript no longer has")
        }

        // P10, P13: every deletion asked (by a user or an erasure) finished, and its call is gone
        // from transcript and media; every erasure asked is confirmed.
        let deletions = try rows("compliance", "SELECT id, org_id, call_id, finished_at_unix_ms FROM deletions")
        let stillRecorded = Set(recordings.map { "\($0.text("org_id") ?? "")/\($0.text("call_id") ?? "")" })
        var finished: [String: String] = [:]
        for deletion in deletions {
            let id = deletion.text("id") ?? "", call = "\(deletion.text("org_id") ?? "")/\(deletion.text("call_id") ?? "")"
            expect((deletion.int("finished_at_unix_ms") ?? 0) > 0, "deletion \(id) not finished")
            expect(!calls.contains(call), "deletion \(id) finished but transcript still has \(call)")
            expect(!stillRecorded.contains(call), "deletion \(id) finished but media still has a recording of \(call)")
            finished[id] = call
        }
        for id in deletionsAsked { expect(finished[id] != nil, "deletion \(id) was answered but compliance has no row of it") }
        let erasures = Dictionary(try rows("compliance", "SELECT id, erasure_confirmed_at_unix_ms FROM subject_requests").map {
            ($0.text("id") ?? "", $0.int("erasure_confirmed_at_unix_ms") ?? 0)
        }, uniquingKeysWith: max)
        for id in erasuresAsked { expect((erasures[id] ?? 0) > 0, "erasure \(id) not confirmed") }
        // A call deleted on the web app's page has a finished deletion, however often the page was
        // asked while calltrace-web or a service was down.
        let deletedCalls = Set(deletions.filter { ($0.int("finished_at_unix_ms") ?? 0) > 0 }.map { "\($0.text("org_id") ?? "")/\($0.text("call_id") ?? "")" })
        for call in deletedOnPage { expect(deletedCalls.contains("\(org)/\(call)"), "call \(call) deleted on the page has no finished deletion") }

        // P9: every retention run asked finished, and the calls aged past the policy are gone
        // from transcript and media (their files and keys with them, checked above).
        let runs = Dictionary(try rows("compliance", "SELECT id, finished_at_unix_ms FROM retention_runs").map {
            ($0.text("id") ?? "", $0.int("finished_at_unix_ms") ?? 0)
        }, uniquingKeysWith: max)
        for id in retentionRuns { expect((runs[id] ?? 0) > 0, "retention run \(id) not finished") }
        for call in aged {
            expect(!calls.contains("\(org)/\(call)"), "call \(call) aged past the policy is still in transcript")
            expect(!stillRecorded.contains("\(org)/\(call)"), "call \(call) aged past the policy still has a recording in media")
        }

        // P15: no job given up, no audit event refused; the chain verifies and holds each event
        // once: one `recording.stored` per recording stored, one `call.deleted` per deletion.
        for name in Self.victims {
            let dead = try rows(name, "SELECT kind FROM jobs WHERE state = 'dead'").compactMap { $0.text("kind") }
            expect(dead.isEmpty, "\(name) dead-lettered jobs: \(dead)")
            let refused = try rows(name, "SELECT event, reason FROM audit_dead_letters").map { row in
                let event = try Calltrace_Compliance_V1_AuditEvent(serializedBytes: row.blob("event") ?? Data())
                return "\(event.action) of \(event.orgID == org ? "the firm" : "another firm"): \(row.text("reason") ?? "")"
            }
            expect(refused.isEmpty, "\(name) has audit events compliance refused: \(refused)")
        }
        let trail = Calltrace_Compliance_V1_AuditServiceClient(try deployment.compliance.client())
        let verified = try await trail.verifyAuditChain(.with { $0.orgID = org }, options: try await asAdmin())
        expect(verified.intact, "the audit chain is broken at \(verified.firstBrokenIndex): \(verified.reason)")
        let chain = try rows("compliance", "SELECT COUNT(*) AS n, COUNT(DISTINCT idempotency_key) AS keys, MAX(chain_index) AS top FROM audit_chain WHERE org_id = '\(org)'")[0]
        let (links, keys, top) = (chain.int("n") ?? 0, chain.int("keys") ?? 0, chain.int("top") ?? 0)
        expect(links == keys && links == top && verified.eventsChecked == UInt64(links),
               "the chain has \(links) links, \(keys) events, top index \(top); \(verified.eventsChecked) checked")
        let stored = try await events(trail, action: "recording.stored").map(\.resource)
        for id in recordingsStored.union(rungRecordings) { expect(stored.filter { $0 == "recording:\(id)" }.count == 1, "recording \(id) stored \(stored.filter { $0 == "recording:\(id)" }.count) times in the trail") }
        let deleted = try await events(trail, action: "call.deleted").map(\.detail)
        for id in finished.keys { expect(deleted.filter { $0.hasPrefix("deletion \(id);") }.count == 1, "deletion \(id) in the trail \(deleted.filter { $0.hasPrefix("deletion \(id);") }.count) times") }
        let retained = try await events(trail, action: "retention.run").map(\.resource)
        for id in retentionRuns {
            expect(retained.filter { $0 == "retention_run:\(id)" }.count == 1, "retention run \(id) in the trail \(retained.filter { $0 == "retention_run:\(id)" }.count) times")
        }

        // A firm offboarded has nothing left anywhere: no call, recording, user or key.
        for gone in offboarded {
            expect(try Self.offboardingCompleted(gone, in: deployment), "offboarding of \(gone) not completed")
            let left = [("transcript", "SELECT COUNT(*) AS n FROM calls WHERE org_id = '\(gone)'"),
                        ("media", "SELECT COUNT(*) AS n FROM recordings WHERE org_id = '\(gone)'"),
                        ("identity", "SELECT COUNT(*) AS n FROM users WHERE org_id = '\(gone)'")]
            for (service, sql) in left {
                let n = try rows(service, sql)[0].int("n") ?? 0
                expect(n == 0, "\(service) keeps \(n) rows of offboarded \(gone)")
            }
            for service in ProcessDeployment.names {
                let keys = try rows(service, "SELECT COUNT(*) AS n FROM org_keys WHERE org_id = '\(gone)'", keys: true)[0].int("n") ?? 0
                expect(keys == 0, "\(service) keeps the key of offboarded \(gone)")
            }
        }

        // Nothing unfinished left in compliance's bundle folder either.
        let bundles = (try? FileManager.default.contentsOfDirectory(atPath: deployment.bundlesFolder)) ?? []
        expect(!bundles.contains { $0.hasSuffix(".partial") }, "an unfinished bundle left: \(bundles)")
        return checked
    }

    /// Every event of the firm with `action`, all pages.
    private func events(_ trail: Calltrace_Compliance_V1_AuditServiceClient, action: String) async throws -> [Calltrace_Compliance_V1_AuditEvent] {
        var all: [Calltrace_Compliance_V1_AuditEvent] = [], token = ""
        repeat {
            let page = try await trail.listAuditEvents(.with { $0.orgID = org; $0.action = action; $0.pageSize = 500; $0.pageToken = token },
                                                       options: try await asAdmin())
            all += page.events.map(\.event)
            token = page.nextPageToken
        } while !token.isEmpty
        return all
    }
}
