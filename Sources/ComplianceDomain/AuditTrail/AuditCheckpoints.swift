import CallTraceKeys
import CallTraceServiceHost
import ComplianceDocuments
import Foundation

/// A checkpoint compliance signed: where an organisation's chain stood.
struct CheckpointRow: Sendable {
    enum Reason: String, Sendable {
        case daily, export, requested
    }

    let id: String
    let org: String
    /// 1, 2, 3… per organisation, in the order signed: the latest is the highest (times can tie); 0 for one given.
    let seq: Int64
    /// The head's chain index.
    let index: Int64
    /// The head's link.
    let head: Data
    let signedAt: Int64
    let reason: Reason
    let keyID: String
    /// The signed text (`AuditCheckpointDocument`), as the firm keeps it.
    let document: String
}

/// Audit checkpoints (P15): the chain's links catch an event changed, removed or moved, but not
/// the newest events removed — the chain still verifies up to whatever row is last. So compliance
/// signs, with the deployment's Ed25519 key (the one deletion certificates are signed with),
/// where each organisation's chain stood: its head's index and link. It signs one daily for each
/// organisation whose chain grew, one at each export, and one when the firm asks; it keeps them
/// all, and the firm keeps its copies elsewhere. Verification then holds the chain against the
/// checkpoint the firm gives and against compliance's own latest, and names the events missing
/// (the chain ends before a checkpoint's index) or altered (the event there is not the one signed).
///
/// Compliance never signs over a chain that no longer holds its previous checkpoint: the latest
/// stays the one that shows the damage.
struct AuditCheckpoints: Sendable {
    static let maxDocumentBytes = 16 * 1024

    let repository: any AuditChainRepository
    let signer: Ed25519Signer
    let clock: any WallClock

    /// Where a checkpoint request left an organisation.
    struct Current: Sendable {
        /// The checkpoint of the head: signed now, or the latest when the head has not moved (or
        /// when the chain no longer holds it); nil with no events and no checkpoint.
        var checkpoint: CheckpointRow?
        var signedNow = false
        /// The chain no longer holds the latest checkpoint, so none was signed over it.
        var withheld = false
        /// The head's index when it was read (0: no events).
        var headIndex: Int64 = 0
    }

    /// The checkpoint of `org`'s chain as it stands (see `Current`).
    func current(org: String, reason: CheckpointRow.Reason) async throws -> Current {
        let now = clock.nowUnixMs
        return try await repository.write { [self] tx in try current(org: org, reason: reason, at: now, in: tx) }
    }

    private func current(org: String, reason: CheckpointRow.Reason, at now: Int64, in tx: any AuditChainTransaction) throws -> Current {
        let latest = try tx.latestCheckpoint(org: org)
        guard let head = try tx.head(org: org) else { return Current(checkpoint: latest, withheld: latest != nil) }
        if let latest {
            if latest.index == head.index && latest.head == head.link { return Current(checkpoint: latest, headIndex: head.index) }
            guard try tx.event(org: org, index: latest.index)?.link == latest.head else {
                return Current(checkpoint: latest, withheld: true, headIndex: head.index)
            }
        }
        let signed = try sign(org: org, seq: (latest?.seq ?? 0) + 1, index: head.index, head: head.link, reason: reason, at: now)
        try tx.insert(signed)
        return Current(checkpoint: signed, signedNow: true, headIndex: head.index)
    }

    private func sign(org: String, seq: Int64, index: Int64, head: Data, reason: CheckpointRow.Reason, at now: Int64) throws -> CheckpointRow {
        let id = "ckp_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let document = try SignedDocument.sign(title: AuditCheckpointDocument.title, [
            "checkpoint_id": id, "organisation": org, "chain_index": Int(index), "head": head.hexString,
            "signed_at": iso(now), "signed_at_unix_ms": Int(now), "reason": reason.rawValue,
        ], with: signer)
        return CheckpointRow(id: id, org: org, seq: seq, index: index, head: head, signedAt: now, reason: reason,
                             keyID: SignedDocument.keyID(signer.publicKey), document: document)
    }

    /// The daily run: a checkpoint for every organisation whose chain moved since its latest.
    /// - Throws: `PermanentJobFailure` naming the organisations whose chain no longer holds its
    ///   latest checkpoint (after signing every other), so operators see it among dead jobs.
    func signDaily() async throws -> Int {
        var signed = 0, withheld: [String] = [], after = ""
        while true {
            let cursor = after
            let organisations = try await repository.read { tx in try tx.organisations(after: cursor, limit: 200) }
            guard let last = organisations.last else { break }
            for org in organisations {
                let current = try await current(org: org, reason: .daily)
                if current.signedNow { signed += 1 }
                if current.withheld { withheld.append(org) }
            }
            after = last
        }
        guard withheld.isEmpty else {
            throw PermanentJobFailure("the audit chain no longer holds its latest checkpoint (no checkpoint signed over it; VerifyAuditChain "
                                      + "names the events) for \(withheld.count) organisation(s): \(withheld.prefix(20).joined(separator: ", "))")
        }
        return signed
    }

    /// A page of checkpoints, newest first.
    func list(org: String, pageSize: Int, pageToken: String) async throws -> (checkpoints: [CheckpointRow], next: String) {
        let limit = pageSize == 0 ? 100 : min(pageSize, 500)
        var before: Int64?
        if !pageToken.isEmpty {
            guard let seq = Int64(pageToken), seq > 0 else { throw DomainError.invalid("page_token is not one this service issued") }
            before = seq
        }
        let cursor = before
        let rows = try await repository.read { tx in try tx.checkpoints(org: org, before: cursor, limit: limit + 1) }
        let page = Array(rows.prefix(limit))
        return (page, rows.count > limit ? page.last.map { String($0.seq) } ?? "" : "")
    }

    // MARK: Verifying

    /// A checkpoint held against the chain.
    struct Check: Sendable {
        /// Whose checkpoint it is.
        enum Source: Sendable {
            /// The one the caller gave.
            case given
            /// Compliance's own latest.
            case compliance
        }

        enum Finding: Sendable {
            /// The chain reaches the checkpoint's index and its event there is the one signed.
            case holds
            /// The chain ends before the checkpoint's index (or an event up to it is gone).
            case eventsMissing
            /// The event at the checkpoint's index is not the one signed: events up to it were replaced.
            case eventsAltered
            /// A checkpoint compliance stored whose signature does not verify: its table was altered.
            case checkpointForged
        }

        var source: Source
        var checkpoint: CheckpointRow
        var finding: Finding = .holds
        /// The events missing or altered, inclusive (0 when it holds).
        var from: Int64 = 0, through: Int64 = 0
        var reason = ""
    }

    /// Reads a checkpoint the caller gives: it must be one this deployment signed, for `org`.
    func given(_ document: String, org: String) throws -> CheckpointRow {
        guard document.utf8.count <= Self.maxDocumentBytes else { throw DomainError.invalid("checkpoint_document is over \(Self.maxDocumentBytes) bytes") }
        let verdict = AuditCheckpointDocument.verify(document, pinned: signer.publicKey)
        guard verdict.valid else { throw DomainError.invalid("checkpoint_document is not a checkpoint this deployment signed: \(verdict.reason)") }
        guard verdict.organisation == org else { throw DomainError.invalid("checkpoint_document is another organisation's checkpoint") }
        guard let head = Data(lowerHex: verdict.head), verdict.chainIndex > 0, let reason = CheckpointRow.Reason(rawValue: verdict.signedFor) else {
            throw DomainError.invalid("checkpoint_document does not say where the chain stood")
        }
        return CheckpointRow(id: verdict.checkpointID, org: org, seq: 0, index: verdict.chainIndex, head: head, signedAt: verdict.signedAtUnixMs,
                             reason: reason, keyID: verdict.keyID, document: document)
    }

    /// Holds `org`'s chain against `given` (when there is one), then compliance's own latest checkpoint.
    func check(org: String, given: CheckpointRow?) async throws -> [Check] {
        try await repository.read { [self] tx in
            var checks: [Check] = []
            if let given { checks.append(try check(given, source: .given, in: tx)) }
            if let stored = try tx.latestCheckpoint(org: org) {
                let verdict = AuditCheckpointDocument.verify(stored.document, pinned: signer.publicKey)
                if verdict.valid && verdict.organisation == org && verdict.chainIndex == stored.index && verdict.head == stored.head.hexString {
                    checks.append(try check(stored, source: .compliance, in: tx))
                } else {
                    checks.append(Check(source: .compliance, checkpoint: stored, finding: .checkpointForged, from: 1, through: stored.index,
                                        reason: "compliance's latest checkpoint (event \(stored.index)) is not as signed: its table was altered"))
                }
            }
            return checks
        }
    }

    private func check(_ checkpoint: CheckpointRow, source: Check.Source, in tx: any AuditChainTransaction) throws -> Check {
        var check = Check(source: source, checkpoint: checkpoint)
        let k = checkpoint.index, org = checkpoint.org
        let whose = "the checkpoint signed \(iso(checkpoint.signedAt)) (\(source == .given ? "given" : "compliance's"))"
        let last = try tx.head(org: org)?.index ?? 0
        if last < k {
            check.finding = .eventsMissing
            (check.from, check.through) = (last + 1, k)
            check.reason = "\(Self.events(last + 1, k)) missing: \(whose) saw the chain reach event \(k); "
                + (last == 0 ? "it now has no events" : "it now ends at event \(last)")
        } else if let row = try tx.event(org: org, index: k) {
            guard row.link != checkpoint.head else { return check }
            // The events from just after the highest earlier checkpoint that still holds.
            var from: Int64 = 1
            for earlier in try tx.checkpoints(org: org, below: k, limit: 50)
            where AuditCheckpointDocument.verify(earlier.document, pinned: signer.publicKey).valid {
                if try tx.event(org: org, index: earlier.index)?.link == earlier.head {
                    from = earlier.index + 1
                    break
                }
            }
            check.finding = .eventsAltered
            (check.from, check.through) = (from, k)
            check.reason = "event \(k) is not the one \(whose) saw: \(Self.events(from, k)) removed or replaced"
        } else {
            check.finding = .eventsMissing
            (check.from, check.through) = (k, k)
            check.reason = "event \(k), which \(whose) saw, is missing"
        }
        return check
    }

    /// "event 7 is" or "events 7–9 are".
    static func events(_ from: Int64, _ through: Int64) -> String {
        from == through ? "event \(from) is" : "events \(from)–\(through) are"
    }

    /// The walk's verdict, with what the checkpoints found: not intact if any does not hold,
    /// naming the first events one finds missing or altered.
    static func combine(_ walk: AuditTrail.Verdict, _ checks: [Check]) -> AuditTrail.Verdict {
        var verdict = walk
        guard verdict.intact, let failed = checks.filter({ $0.finding != .holds }).min(by: { $0.from < $1.from }) else { return verdict }
        verdict.intact = false
        verdict.firstBroken = failed.from
        verdict.reason = failed.reason
        verdict.head = ""
        return verdict
    }
}

/// The daily run (scheduled): a checkpoint for each organisation whose chain grew.
struct AuditCheckpointDaily: PayloadFreeJob { static let kind = "audit.checkpoint.daily" }

struct AuditCheckpointDailyJob: DurableJobHandler {
    let checkpoints: AuditCheckpoints

    func run(_ work: AuditCheckpointDaily, job: Job) async throws -> JobOutcome {
        _ = try await checkpoints.signDaily()
        return .done
    }
}

extension Data {
    /// Lower-case hexadecimal as `hexString` writes it, two digits a byte; nil for anything else.
    fileprivate init?(lowerHex text: String) {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let high = value(digits[i]), let low = value(digits[i + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        self.init(bytes)
    }
}
