@testable import ComplianceDocuments
import CallTraceAPI
@testable import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
@testable import ComplianceDomain
import Foundation
import Testing

typealias Bundles = Calltrace_Compliance_V1_BundleServiceClient
typealias Offboardings = Calltrace_Compliance_V1_OffboardingServiceClient
typealias Matters = Calltrace_Compliance_V1_MatterServiceClient

/// The entries of a ustar archive, by path (prefix/name), checking each header's checksum.
func untar(_ archive: Data) throws -> [String: Data] {
    var entries: [String: Data] = [:]
    var offset = 0
    let bytes = [UInt8](archive)
    func text(_ range: Range<Int>) -> String { String(decoding: bytes[range].prefix { $0 != 0 }, as: UTF8.self) }
    while offset + 512 <= bytes.count, bytes[offset..<offset + 512].contains(where: { $0 != 0 }) {
        var header = Array(bytes[offset..<offset + 512])
        let stated = UInt64(text(offset + 148..<offset + 156).trimmingCharacters(in: .whitespaces), radix: 8)
        for i in 148..<156 { header[i] = UInt8(ascii: " ") }
        #expect(stated == header.reduce(0) { $0 + UInt64($1) }, "header checksum")
        let name = text(offset..<offset + 100), prefix = text(offset + 345..<offset + 500)
        let size = try #require(Int(text(offset + 124..<offset + 136), radix: 8))
        entries[prefix.isEmpty ? name : prefix + "/" + name] = Data(bytes[offset + 512..<offset + 512 + size])
        offset += 512 + (size + 511) / 512 * 512
    }
    return entries
}

extension CallDataDeployment {
    var bundles: Bundles { get throws { Bundles(try compliance.client()) } }

    /// Waits for the bundle to be ready, then downloads it whole.
    func readyBundle(_ id: String, org: String, token: String) async throws -> (bundle: Calltrace_Compliance_V1_Bundle, archive: Data) {
        var bundle = Calltrace_Compliance_V1_Bundle()
        #expect(try await eventually {
            bundle = try await self.bundles.getBundle(.with { $0.orgID = org; $0.bundleID = id }, options: try bearer(token)).bundle
            return bundle.state != .building
        })
        #expect(bundle.state == .ready, "\(bundle.failureReason)")
        var archive = Data()
        try await bundles.downloadBundle(.with { $0.orgID = org; $0.bundleID = id }, options: try bearer(token)) { stream in
            for try await piece in stream {
                #expect(piece.offset == UInt64(archive.count))
                archive += piece.data
            }
        }
        return (bundle, archive)
    }
}

/// index.json lists every other entry with its size and SHA-256, and they match.
func checkIndex(_ entries: [String: Data]) throws -> [String: Any] {
    let document = try #require(entries["index.json"])
    let index = try #require(try JSONSerialization.jsonObject(with: document) as? [String: Any])
    let listed = try #require(index["entries"] as? [[String: Any]])
    #expect(Set(listed.compactMap { $0["path"] as? String }) == Set(entries.keys).subtracting(["index.json"]))
    for entry in listed {
        let path = try #require(entry["path"] as? String)
        let data = try #require(entries[path])
        #expect(entry["bytes"] as? Int == data.count && entry["sha256"] as? String == sha256(data).hexString)
    }
    return index
}

@Suite("Compliance: bundles, matter files and offboarding (P11, P13, P14)", .serialized)
struct BundleAndOffboardingTests {
    @Test("A subject-access bundle holds every located call's audio, transcript as text and JSON, and an index; sealed at rest, audited, expiring")
    func accessBundle() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let t0 = CallDataDeployment.start
        let first = try await deployment.call("call-1", org: org, tracking: "01184960000", caller: "07700 900123", at: t0 + 1000)
        try await deployment.call("call-2", org: org, tracking: "01184960000", caller: "07700 900999", at: t0 + 2000)
        let requests = try deployment.requests()
        let request = try await SubjectRequestTests.open(requests, org: org, admin: admin, kind: .access, numbers: ["07700 900123"])
        #expect(await code {
            _ = try await requests.buildAccessBundle(.with { $0.orgID = org; $0.requestID = request.requestID }, options: try bearer(admin))
        } == .failedPrecondition, "not before the identity check passes")
        _ = try await requests.recordIdentityCheck(.with { $0.orgID = org; $0.requestID = request.requestID; $0.result = .passed }, options: try bearer(admin))
        let asked = try await requests.buildAccessBundle(.with { $0.orgID = org; $0.requestID = request.requestID }, options: try bearer(admin)).bundle
        #expect(asked.kind == .subjectAccess && asked.subject == request.requestID)

        let (bundle, archive) = try await deployment.readyBundle(asked.bundleID, org: org, token: admin)
        #expect(bundle.sizeBytes == UInt64(archive.count) && bundle.sha256 == sha256(archive).hexString && bundle.expiresAtUnixMs > bundle.readyAtUnixMs)
        let entries = try untar(archive)
        #expect(Set(entries.keys) == ["README.txt", "calls/call-1/call.json", "calls/call-1/call.txt", "calls/call-1/\(first).wav", "index.json"],
                "only the subject's call: \(entries.keys.sorted())")
        #expect(entries["calls/call-1/\(first).wav"] == wavFile(seconds: 1), "the audio as stored")
        #expect(String(decoding: entries["calls/call-1/call.txt"] ?? Data(), as: UTF8.self).contains("hurt at work"))
        let index = try checkIndex(entries)
        #expect((index["about"] as? [String: Any])?["calls"] as? [String] == ["call-1"])

        // Sealed at rest: no transcript text in the bundle file on disk.
        let folder = URL(fileURLWithPath: deployment.compliance.setup.database).deletingLastPathComponent().appendingPathComponent("bundles")
        let stored = try Data(contentsOf: folder.appendingPathComponent(bundle.bundleID))
        #expect(!String(decoding: stored, as: UTF8.self).contains("hurt at work") && stored.count > archive.count)
        // Compliance's own events reach its trail through its outbox, a moment later.
        #expect(try await eventually {
            try await Calltrace_Compliance_V1_AuditServiceClient(try deployment.compliance.client())
                .listAuditEvents(.with { $0.orgID = org; $0.action = "bundle.downloaded" }, options: try bearer(admin)).events.count == 1
        }, "the download is audited")

        // Seven days on, the hourly sweep destroys it.
        deployment.clock.advance(by: .days(7))
        #expect(try await eventually {
            try await deployment.bundles.getBundle(.with { $0.orgID = org; $0.bundleID = bundle.bundleID }, options: try bearer(admin)).bundle.state == .expired
        })
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent(bundle.bundleID).path))
        #expect(await code {
            try await deployment.bundles.downloadBundle(.with { $0.orgID = org; $0.bundleID = bundle.bundleID }, options: try bearer(admin)) { stream in
                for try await _ in stream {}
            }
        } == .failedPrecondition)
    }

    @Test("A matter file holds the call, its audio, transcript, summary and audit excerpt; with delete-after, the call is then deleted everywhere")
    func matterFile() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let recording = try await deployment.call("call-1", org: org, tracking: "01184960000", caller: "07700 900123", at: CallDataDeployment.start + 1000)
        let matters = Matters(try deployment.compliance.client())
        // Media forwards its audit events through its outbox, a moment after the upload: the
        // excerpt holds what the trail holds when the file is made.
        #expect(try await eventually {
            try await Calltrace_Compliance_V1_AuditServiceClient(try deployment.compliance.client())
                .listAuditEvents(.with { $0.orgID = org; $0.resource = "recording:\(recording)" }, options: try bearer(admin)).events.count > 0
        })
        #expect(await code {
            _ = try await matters.exportMatter(.with { $0.orgID = org; $0.callID = "call-1" }, options: try bearer(admin))
        } == .invalidArgument, "a matter reference is required")
        let asked = try await matters.exportMatter(.with {
            $0.orgID = org; $0.callID = "call-1"; $0.matterReference = "PI/2026/0042"; $0.deleteAfterExport = true
        }, options: try bearer(admin)).bundle
        let (_, archive) = try await deployment.readyBundle(asked.bundleID, org: org, token: admin)
        let entries = try untar(archive)
        #expect(Set(entries.keys) == ["README.txt", "call.json", "call.txt", "\(recording).wav", "audit-excerpt.jsonl", "index.json"], "\(entries.keys.sorted())")
        let index = try checkIndex(entries)
        #expect((index["about"] as? [String: Any])?["matter_reference"] as? String == "PI/2026/0042")
        #expect(String(decoding: entries["call.json"] ?? Data(), as: UTF8.self).contains("PI/2026/0042"), "the matter is recorded on the call")
        #expect(String(decoding: entries["audit-excerpt.jsonl"] ?? Data(), as: UTF8.self).contains("recording:\(recording)"))
        #expect(try await eventually { try await deployment.exists(call: "call-1", recording: recording, org: org, admin: admin) == (false, false) },
                "deleted once exported")
    }

    @Test("Call ids '.' and '..' (valid ids) get archive folders of their own, never the folder itself or its parent")
    func dotCallIDs() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        for (index, call) in [".", "..", ".x"].enumerated() {
            try await deployment.call(call, org: org, tracking: "01184960000", caller: "07700 900123", at: CallDataDeployment.start + Int64(index) * 1000)
        }
        let started = try await Offboardings(try deployment.compliance.client()).startOffboarding(.with { $0.orgID = org }, options: try bearer(admin))
        let (_, archive) = try await deployment.readyBundle(started.offboarding.exportBundleID, org: org, token: admin)
        let names = try untar(archive).keys
        #expect(names.contains("calls/%2E/call.json") && names.contains("calls/%2E%2E/call.json") && names.contains("calls/%2Ex/call.txt"),
                "\(names.sorted())")
        #expect(!names.contains { $0.split(separator: "/").contains { $0 == "." || $0 == ".." } })
    }

    @Test("A matter file asked again with delete-after, while the earlier export is still building or ready, deletes the call (it used to hand back the export and delete nothing)",
          arguments: [true, false])
    func deleteAfterAnEarlierExport(waitUntilReady: Bool) async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let recording = try await deployment.call("call-1", org: org, tracking: "01184960000", caller: "07700 900123", at: CallDataDeployment.start + 1000)
        let matters = Matters(try deployment.compliance.client())
        let first = try await matters.exportMatter(.with { $0.orgID = org; $0.callID = "call-1"; $0.matterReference = "PI/2026/0042" },
                                                   options: try bearer(admin)).bundle
        if waitUntilReady {
            _ = try await deployment.readyBundle(first.bundleID, org: org, token: admin)
            #expect(try await deployment.exists(call: "call-1", recording: recording, org: org, admin: admin) == (true, true))
        }
        let again = try await matters.exportMatter(.with {
            $0.orgID = org; $0.callID = "call-1"; $0.matterReference = "PI/2026/0042"; $0.deleteAfterExport = true
        }, options: try bearer(admin)).bundle
        #expect(again.bundleID == first.bundleID, "the export is shared")
        #expect(try await eventually { try await deployment.exists(call: "call-1", recording: recording, org: org, admin: admin) == (false, false) },
                "and the call is deleted everywhere")
    }

    @Test("Offboarding end to end: export, confirmation, every service purges, identity offboards, and the certificate verifies — and fails when any byte changes")
    func offboarding() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let (other, otherAdmin) = try await deployment.organisation("Jones LLP", tracking: "01184960001")
        let t0 = CallDataDeployment.start
        let recording = try await deployment.call("call-1", org: org, tracking: "01184960000", caller: "07700 900123", at: t0 + 1000)
        try await deployment.call("call-2", org: org, tracking: "01184960000", caller: "07700 900124", at: t0 + 2000)
        let theirs = try await deployment.call("theirs", org: other, tracking: "01184960001", caller: "07700 900125", at: t0 + 1000)
        let offboardings = Offboardings(try deployment.compliance.client())

        let started = try await offboardings.startOffboarding(.with { $0.orgID = org }, options: try bearer(admin)).offboarding
        #expect([.exporting, .awaitingConfirmation].contains(started.state))
        let early = await code {
            _ = try await offboardings.confirmOffboarding(.with { $0.orgID = org; $0.offboardingID = started.offboardingID; $0.confirmOrgID = "org_wrong" },
                                                          options: try bearer(admin))
        }
        #expect(early == .invalidArgument, "the organisation id must be typed again")
        _ = try await deployment.readyBundle(started.exportBundleID, org: org, token: admin)
        // Left unconfirmed until the export expires: asking again builds a fresh one.
        deployment.clock.advance(by: .days(8))
        #expect(try await eventually {
            try await deployment.bundles.getBundle(.with { $0.orgID = org; $0.bundleID = started.exportBundleID }, options: try bearer(admin)).bundle.state == .expired
        })
        let again = try await offboardings.startOffboarding(.with { $0.orgID = org }, options: try bearer(admin)).offboarding
        #expect(again.offboardingID == started.offboardingID && again.exportBundleID != started.exportBundleID)
        let (_, archive) = try await deployment.readyBundle(again.exportBundleID, org: org, token: admin)
        let entries = try untar(archive)
        #expect(entries["recordings/\(recording).wav"] == wavFile(seconds: 1))
        #expect(entries["calls/call-1/call.json"] != nil && entries["calls/call-2/call.txt"] != nil)
        let trail = String(decoding: entries["audit/trail.jsonl"] ?? Data(), as: UTF8.self)
        #expect(trail.contains("offboarding.started"))
        // The trail comes with a signed checkpoint of its last event, which the deployment's key verifies.
        let signingKey = try #require(Data(base64Encoded: try await offboardings.getSigningKey(.init()).publicKey))
        let checkpoint = AuditCheckpointDocument.verify(String(decoding: entries["audit/checkpoint.txt"] ?? Data(), as: UTF8.self), pinned: signingKey)
        #expect(checkpoint.valid && checkpoint.organisation == org && checkpoint.chainIndex == Int64(trail.split(separator: "\n").count),
                "\(checkpoint.reason)")
        _ = try checkIndex(entries)

        let confirmed = try await offboardings.confirmOffboarding(.with {
            $0.orgID = org; $0.offboardingID = started.offboardingID; $0.confirmOrgID = org
        }, options: try bearer(admin)).offboarding
        #expect(confirmed.state == .completed && confirmed.certificate.hasPrefix("CALLTRACE DELETION CERTIFICATE v1"), "\(confirmed.lastError)")

        // Every service purged; identity no longer lets the firm's users in; the other firm is untouched.
        #expect(await code { _ = try await deployment.identity.login(email: try #require(deployment.adminEmail(of: org)), org: org) } != .ok)
        let certificate = confirmed.certificate
        #expect(certificate.contains("\"recordings_purged\" : 2") && certificate.contains("\"calls_purged\" : 2"), "\(certificate)")
        #expect(!certificate.contains("07700") && !certificate.contains("900123"))
        #expect(try await deployment.exists(call: "theirs", recording: theirs, org: other, admin: otherAdmin) == (true, true))
        // Identity deleted the firm's people and its key, and the certificate counts them.
        let people = try await deployment.identity.instance.database.read { db in
            try db.query("SELECT count(*) AS n FROM users WHERE org_id = ?", org)[0].int("n")
        }
        #expect(people == 0)
        #expect(certificate.contains("\"users_deleted\" : 1") && certificate.contains("\"sessions_deleted\" : "), "\(certificate)")
        for service in [deployment.media, deployment.transcript, deployment.compliance, deployment.identity] {
            let kept = try service.instance.keyStore.sync { db in try db.query("SELECT 1 FROM org_keys WHERE org_id = ?", org) }
            #expect(kept.isEmpty, "\(service.name)'s key for the organisation is gone")
        }
        // The services' own records of the purge (`organisation.purged`, `organisation.offboarded`)
        // reach compliance after the firm's trail went with it: let go, not refused, so nothing of
        // the firm stays behind in an outbox or a dead letter (they used to be dead-lettered).
        // (Identity is started here without compliance as its peer: its events wait in its outbox.)
        let services = [deployment.media, deployment.transcript, deployment.compliance]
        var left: [String] = []
        #expect(try await eventually(timeout: .seconds(30)) {
            for service in services { _ = await service.instance.jobs.runDue() }
            left = try services.flatMap { service in
                try service.instance.database.sync { db in
                    try db.query("SELECT 'unsent' AS what FROM audit_outbox WHERE org_id = ? UNION ALL SELECT reason FROM audit_dead_letters", org)
                        .map { "\(service.name): \($0.text("what") ?? "")" }
                }
            }
            return left.isEmpty
        }, "every service's outbox forwarded the firm's last events, and none was refused: \(left)")

        // The certificate verifies offline, with the key compliance publishes; any altered byte fails.
        let key = try await offboardings.getSigningKey(.init())
        let pinned = try #require(Data(base64Encoded: key.publicKey))
        let verdict = DeletionCertificate.verify(certificate, pinned: pinned)
        #expect(verdict.valid && verdict.organisation == org && verdict.keyID == key.keyID, "\(verdict.reason)")
        var bytes = Array(certificate.utf8)
        for position in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 40)) {
            let original = bytes[position]
            bytes[position] = original == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            #expect(!DeletionCertificate.verify(String(decoding: bytes, as: UTF8.self), pinned: pinned).valid, "byte \(position) altered")
            bytes[position] = original
        }
        #expect(!DeletionCertificate.verify(certificate, pinned: Data(repeating: 7, count: 32)).valid, "another key is refused when pinned")
        // It binds the export the firm holds: the archive's digest and size, not an empty bundle's.
        let digest = sha256(archive).map { String(format: "%02x", $0) }.joined()
        #expect(certificate.contains("\"sha256\" : \"\(digest)\"") && certificate.contains("\"bytes\" : \(archive.count)"), "\(certificate)")
        // A forgery signed with a fresh key that names itself never verifies against the deployment's key.
        let forger = try Ed25519Signer(seed: try SecretKey.random())
        let body = String(certificate[..<certificate.range(of: DeletionCertificate.begin)!.lowerBound])
            .replacingOccurrences(of: key.publicKey.replacingOccurrences(of: "/", with: "\\/"), with: forger.publicKey.base64EncodedString())  // as JSON escapes it
            .replacingOccurrences(of: key.keyID, with: DeletionCertificate.keyID(forger.publicKey))
            .replacingOccurrences(of: "\"recordings_purged\" : 2", with: "\"recordings_purged\" : 3")
        let forged = body + DeletionCertificate.begin + "ed25519 \(DeletionCertificate.keyID(forger.publicKey)) "
            + (try forger.sign(Data(body.utf8))).base64EncodedString() + "\n" + DeletionCertificate.end
        #expect(DeletionCertificate.verify(forged, pinned: forger.publicKey).valid, "the forgery is well made")
        #expect(!DeletionCertificate.verify(forged, pinned: pinned).valid, "and refused against the pinned key")

        // Afterwards an operator (no grant: the organisation is gone) fetches the record for the firm.
        let record = try await Offboardings(try deployment.compliance.client(identity: TemporaryPKI.identity("operator", "ops")))
            .getOffboarding(.with { $0.orgID = org }).offboarding
        #expect(record.certificate == certificate)
    }
}
