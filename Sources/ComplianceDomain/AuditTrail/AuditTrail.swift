import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import Foundation
import SwiftProtobuf

/// The audit trail (P8, P15): every service's events, one hash chain per organisation. Each
/// event is sealed under the organisation's key (bound to its place in the chain) and linked to
/// the one before by an HMAC under the organisation's index key, so an event changed, removed or
/// moved — even by someone who can write the database — breaks every later link, and
/// `verify` names the first one.
struct AuditTrail: Sendable {
    typealias Event = AuditEvent
    let repository: any AuditChainRepository
    let keys: KeyRing
    let clock: any WallClock
    /// The link before an organisation's first event.
    static let genesis = Data(repeating: 0, count: 32)

    // MARK: Appending

    /// Judges each event on its own: stored (or already stored identically) → acknowledged;
    /// malformed, another service's, or a different event under a used key → rejected with the
    /// reason. One bad event never holds back the others.
    func append(_ events: [Event], from service: String) async throws -> Appended {
        var appended = Appended()
        var acceptable: [(Event, Data)] = []
        for event in events {
            if let problem = AuditEventRules.problem(key: event.idempotencyKey, org: event.orgID, actor: event.actor, action: event.action,
                                                     resource: event.resource, outcome: event.outcome, detail: event.detail,
                                                     source: event.sourceService, from: service) {
                appended.rejected.append((String(event.idempotencyKey.prefix(AuditEventRules.maxKeyBytes)), problem))
            } else {
                acceptable.append((event, try event.sealedForm()))
            }
        }
        let now = clock.nowUnixMs
        let candidates = acceptable
        let verdicts = try await repository.write { [self] tx in
            try candidates.map { event, bytes in (event.idempotencyKey, try chain(event, bytes: bytes, receivedAt: now, in: tx)) }
        }
        for (key, verdict) in verdicts {
            switch verdict {
            case .stored: appended.acknowledgedKeys.append(key)
            case .trailClosed:
                appended.acknowledgedKeys.append(key)
                appended.closed += 1
            case .refused(let problem): appended.rejected.append((key, problem))
            }
        }
        return appended
    }

    /// What became of a batch: the keys now stored (newly or before) or let go, and the events
    /// refused with the reason (never stored, never to be resent).
    struct Appended: Sendable {
        var acknowledgedKeys: [String] = []
        var rejected: [(key: String, reason: String)] = []
        /// Of the acknowledged, those of an organisation offboarded since they were recorded.
        var closed = 0
    }

    enum Appending: Sendable, Equatable {
        /// In the chain, now or before.
        case stored
        /// Of an organisation offboarded since: its trail went with it, and the deletion
        /// certificate holds what each service's purge did. The services' own records of that
        /// purge (`organisation.purged`, `organisation.offboarded`) arrive after it by design;
        /// they are let go, not refused, so nothing of the firm stays behind in any service's
        /// outbox or dead letters, and no operator is alerted for what is expected.
        case trailClosed
        case refused(String)
    }

    /// Links one event after its organisation's head.
    private func chain(_ event: Event, bytes: Data, receivedAt: Int64, in tx: any AuditChainTransaction) throws -> Appending {
        if let existing = try tx.event(idempotencyKey: event.idempotencyKey) {
            let stored = try? open(existing)
            return stored == bytes ? .stored : .refused("a different event was already stored under this idempotency_key")
        }
        do {
            try keys.createKeys(for: event.orgID)
        } catch let error as KeyError where error.kind == .noKey {
            return .trailClosed
        }
        let head = try tx.head(org: event.orgID)
        let index = (head?.index ?? 0) + 1
        let sealed = try keys.seal(bytes, org: event.orgID, table: "audit_chain", column: "event", row: String(index))
        let link = try Self.link(after: head?.link ?? Self.genesis, index: index, sealed: sealed, org: event.orgID, keys: keys)
        try tx.insert(ChainRow(org: event.orgID, index: index, idempotencyKey: event.idempotencyKey, sourceService: event.sourceService,
                               occurredAt: event.occurredAtUnixMs, receivedAt: receivedAt, sealedEvent: sealed, link: link))
        return .stored
    }

    /// HMAC-SHA256 under the organisation's index key of (previous link, index, SHA-256 of the sealed event).
    static func link(after previous: Data, index: Int64, sealed: Data, org: String, keys: KeyRing) throws -> Data {
        let digest = try SHA256Stream()
        digest.update(sealed)
        return try keys.blindIndex("\(previous.hexString):\(index):\(digest.finish().hexString)", kind: "audit-chain", org: org)
    }

    func open(_ row: ChainRow) throws -> Data {
        try keys.open(row.sealedEvent, org: row.org, table: "audit_chain", column: "event", row: String(row.index))
    }

    /// Moves events received before the chain existed into it, in the order they arrived.
    func importUnchained() throws -> Int {
        var moved = 0
        while true {
            let batch = try repository.sync { tx -> Int in
                let rows = try tx.unchained(limit: 500)
                for row in rows {
                    let event = try Event(sealedForm: row.event)
                    _ = try chain(event, bytes: row.event, receivedAt: row.receivedAt, in: tx)
                    try tx.removeUnchained(seq: row.seq)
                }
                return rows.count
            }
            moved += batch
            if batch == 0 { return moved }
        }
    }

    // MARK: Reading

    /// Exact matches, except that action and resource are compared in the trail's current
    /// spelling (`AuditSpelling`): events chained as `organization.purged` on
    /// `organization:org_…` before the vocabulary was typed cannot be rewritten, so a filter
    /// written either way finds both.
    struct Filter: Sendable {
        var actor = "", action = "", resource = ""
        var from: Int64 = 0, before: Int64 = 0
        var operatorsOnly = false

        func admits(_ event: Event) -> Bool {
            (actor.isEmpty || event.actor == actor)
                && (action.isEmpty || AuditSpelling.canonical(action: event.action) == AuditSpelling.canonical(action: action))
                && (resource.isEmpty || AuditSpelling.canonical(resource: event.resource) == AuditSpelling.canonical(resource: resource))
                && (from == 0 || event.occurredAtUnixMs >= from)
                && (before == 0 || event.occurredAtUnixMs < before) && (!operatorsOnly || event.actor.hasPrefix("operator:"))
        }
    }

    /// A page of events, newest first. Events are sealed, so the filter is applied as they are
    /// opened; one call opens at most `scanLimit` and says where to go on.
    func list(org: String, filter: Filter, pageSize: Int, pageToken: String, scanLimit: Int = 5000) async throws
        -> (events: [ChainedAuditEvent], next: String) {
        let limit = pageSize == 0 ? 100 : min(pageSize, 500)
        var before: Int64?
        if !pageToken.isEmpty {
            guard let index = Int64(pageToken), index > 0 else { throw DomainError.invalid("page_token is not one this service issued") }
            before = index
        }
        var found: [ChainedAuditEvent] = []
        var scanned = 0
        while found.count < limit && scanned < scanLimit {
            let cursor = before
            let rows = try await repository.read { tx in try tx.newest(org: org, before: cursor, limit: 500) }
            guard !rows.isEmpty else { return (found, "") }
            for row in rows {
                scanned += 1
                before = row.index
                let event = try Event(sealedForm: try open(row))
                if filter.admits(event) { found.append(ChainedAuditEvent(row, event)) }
                if found.count == limit || scanned == scanLimit { break }
            }
            if before == 1 { return (found, "") }
        }
        return (found, before.map { String($0) } ?? "")
    }

    struct Verdict: Sendable {
        var intact = true
        var checked = 0
        var firstBroken: Int64 = 0
        var reason = ""
        var head = ""
    }

    /// Walks the chain from its first event.
    func verify(org: String) async throws -> Verdict {
        var verdict = Verdict()
        var previous = Self.genesis
        var expected: Int64 = 1
        while true {
            let after = expected - 1
            let rows = try await repository.read { tx in try tx.oldest(org: org, after: after, limit: 1000) }
            if rows.isEmpty { break }
            for row in rows {
                func broken(_ reason: String) -> Verdict {
                    Verdict(intact: false, checked: verdict.checked, firstBroken: expected, reason: reason, head: "")
                }
                guard row.index == expected else { return broken("event \(expected) is missing (the next is \(row.index))") }
                guard (try? open(row)) != nil else { return broken("event \(expected) was altered or moved: it does not open") }
                let link = try Self.link(after: previous, index: row.index, sealed: row.sealedEvent, org: org, keys: keys)
                guard link == row.link else { return broken("event \(expected) does not follow event \(expected - 1): the chain was changed here") }
                verdict.checked += 1
                previous = row.link
                expected += 1
            }
        }
        verdict.head = verdict.checked == 0 ? "" : previous.hexString
        return verdict
    }

    /// The index of the organisation's newest event (0 with none).
    func headIndex(org: String) async throws -> Int64 {
        try await repository.read { tx in try tx.head(org: org)?.index ?? 0 }
    }

    /// The events of a period, oldest first, as JSON lines, `lines` at a time.
    /// - Parameter through: the last chain index to include (nil: to the head as it grows).
    func export(org: String, from: Int64, before: Int64, through: Int64? = nil, send: (Data) async throws -> Void) async throws {
        var after: Int64 = 0
        while true {
            let cursor = after
            let rows = try await repository.read { tx in try tx.oldest(org: org, after: cursor, limit: 500) }
                .filter { row in through.map { row.index <= $0 } ?? true }
            guard let last = rows.last else { return }
            var chunk = Data()
            for row in rows {
                let event = try Event(sealedForm: try open(row))
                guard (from == 0 || event.occurredAtUnixMs >= from) && (before == 0 || event.occurredAtUnixMs < before) else { continue }
                chunk += Data(try ChainedAuditEvent(row, event).jsonLine(protoFieldNames: true).utf8)
            }
            if !chunk.isEmpty { try await send(chunk) }
            after = last.index
        }
    }
}

/// An event as a service recorded it, in the trail's words (`AuditRecord` on the sender's side).
struct AuditEvent: Sendable, Equatable {
    /// Unique per event, chosen by the recording service (`<service>:<uuid>`).
    var idempotencyKey = ""
    var orgID = ""
    var actor = ""
    var action = ""
    var resource = ""
    var outcome = ""
    var occurredAtUnixMs: Int64 = 0
    var sourceService = ""
    var detail = ""
}

/// An event where it stands in its organisation's chain.
struct ChainedAuditEvent: Sendable, Equatable {
    let event: AuditEvent
    let chainIndex: Int64
    let link: Data
    let receivedAtUnixMs: Int64
    /// An operator acting under a support grant (P8).
    var operatorAccess: Bool { event.actor.hasPrefix("operator:") }

    init(_ row: ChainRow, _ event: AuditEvent) {
        self.event = event
        chainIndex = row.index
        link = row.link
        receivedAtUnixMs = row.receivedAt
    }
}

/// The events and their messages (`calltrace.compliance.v1.AuditEvent`, `ChainedAuditEvent`):
/// the one mapping, for the handler's answers, for the sealed form — the message's bytes, as
/// the chain has always held them, so every link still verifies — and for the JSON lines of
/// exports and bundles.
extension AuditEvent {
    init(_ message: Calltrace_Compliance_V1_AuditEvent) {
        self.init(idempotencyKey: message.idempotencyKey, orgID: message.orgID, actor: message.actor, action: message.action,
                  resource: message.resource, outcome: message.outcome, occurredAtUnixMs: message.occurredAtUnixMs,
                  sourceService: message.sourceService, detail: message.detail)
    }

    var proto: Calltrace_Compliance_V1_AuditEvent {
        .with {
            $0.idempotencyKey = idempotencyKey; $0.orgID = orgID; $0.actor = actor; $0.action = action; $0.resource = resource
            $0.outcome = outcome; $0.occurredAtUnixMs = occurredAtUnixMs; $0.sourceService = sourceService; $0.detail = detail
        }
    }

    init(sealedForm plain: Data) throws {
        self.init(try Calltrace_Compliance_V1_AuditEvent(serializedBytes: plain))
    }

    func sealedForm() throws -> Data { try proto.serializedBytes() }
}

extension ChainedAuditEvent {
    var proto: Calltrace_Compliance_V1_ChainedAuditEvent {
        .with {
            $0.event = event.proto; $0.chainIndex = UInt64(chainIndex); $0.link = link; $0.receivedAtUnixMs = receivedAtUnixMs
            $0.operatorAccess = operatorAccess
        }
    }

    /// One line of JSON: the export's (`protoFieldNames`: `chain_index`) or a bundle's excerpt's (`chainIndex`).
    func jsonLine(protoFieldNames: Bool) throws -> String {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = protoFieldNames
        return try proto.jsonString(options: options) + "\n"
    }
}
