import CallTraceAPI
import CallTraceProto
public import CallTraceRPC
public import CallTraceStorage
import Foundation

/// What happened, for the audit trail, in the trail's typed words (`AuditVocabulary.swift`):
/// the action from the recording service's own vocabulary, the resource from the shared kinds.
/// Never put secrets, tokens, phone numbers or transcript text in any field.
public struct AuditRecord: Sendable {
    public var org: String
    public var actor: String
    public var action: AuditAction
    public var resource: AuditResource
    public var outcome: AuditOutcome
    /// Context, e.g. a playback's byte range and reason (at most `AuditEventRules.maxDetailBytes`).
    public var detail: String

    public init(org: String, actor: String, action: AuditAction, resource: AuditResource, outcome: AuditOutcome = .success, detail: String = "") {
        self.org = org
        self.actor = actor
        self.action = action
        self.resource = resource
        self.outcome = outcome
        self.detail = detail
    }
}

/// A service's audit outbox: events are written to its own database in the same transaction as
/// the action they describe, together with the durable job that forwards them (`audit.forward`,
/// one coalescing job on the service's `JobQueue`), which sends them to compliance's
/// `AppendAuditEvents` until each is acknowledged or rejected. Delivery is at least once;
/// compliance stores each idempotency key once, so the trail holds every event exactly once.
/// Events wait safely while compliance is unreachable (the job retries with backoff, without
/// limit), and survive restarts of the sender.
public final class AuditOutbox: Sendable {
    /// The job kind that forwards the outbox.
    public static let forwardJob = "audit.forward"

    private let database: Database
    private let service: String
    private let jobs: JobQueue
    private let batchSize: Int
    private let batchBytes: Int

    /// - Parameters:
    ///   - batchSize: events per `AppendAuditEvents` call at most. Default 200.
    ///   - batchBytes: encoded bytes per call at most (an event larger than this goes alone).
    ///     Default 256 KiB.
    public init(database: Database, service: String, jobs: JobQueue, batchSize: Int = 200, batchBytes: Int = 256 << 10) {
        self.database = database
        self.service = service
        self.jobs = jobs
        self.batchSize = batchSize
        self.batchBytes = batchBytes
    }

    /// How a batch of events reaches the trail: compliance's `AppendAuditEvents`.
    public typealias Append = @Sendable ([Calltrace_Compliance_V1_AuditEvent]) async throws -> Calltrace_Compliance_V1_AppendAuditEventsResponse

    /// Forwards to compliance through `client`: registers the `audit.forward` job's handler.
    public func forward(to client: any RPCChannel) {
        forward { events in
            try await Calltrace_Compliance_V1_AuditServiceClient(client).appendAuditEvents(.with { $0.events = events },
                                                                                           options: .init(timeout: .seconds(10), failFast: true))
        }
    }

    /// Forwards through `append` (compliance appends its own events to its trail directly).
    public func forward(_ append: @escaping Append) {
        jobs.register(Forwarder(outbox: self, append: append), maxAttempts: Int.max)
    }

    /// One coalescing job forwards the whole outbox, a batch per run.
    struct Forward: PayloadFreeJob {
        static var kind: String { AuditOutbox.forwardJob }
    }

    /// The job that empties the outbox, a batch per run.
    private struct Forwarder: DurableJobHandler {
        let outbox: AuditOutbox
        let append: Append

        func run(_ work: Forward, job: Job) async throws -> JobOutcome {
            try await outbox.forwardOnce(append) > 0 ? .again : .done
        }
    }

    /// Records `record` inside the caller's transaction (`Database.write`).
    ///
    /// - Throws: `StorageError` for an event compliance would refuse (a malformed organisation
    ///   id, an empty or oversized field), or an action out of the trail's vocabulary (malformed,
    ///   or in a retired spelling), so the action fails instead of poisoning the trail.
    public func record(_ record: AuditRecord, in connection: Connection) throws {
        let (action, resource, outcome) = (record.action.name, record.resource.name, record.outcome.rawValue)
        if let problem = AuditAction.problem(with: action) { throw StorageError("\(problem); not recorded") }
        guard OrganizationID.isValid(record.org),
              [record.actor, action, resource, outcome].allSatisfy({ $0.utf8.count <= AuditEventRules.maxFieldBytes }),
              record.detail.utf8.count <= AuditEventRules.maxDetailBytes
        else { throw StorageError("audit event \(action.prefix(64)) is malformed; not recorded") }
        var event = Calltrace_Compliance_V1_AuditEvent()
        event.idempotencyKey = "\(service):\(UUID().uuidString.lowercased())"
        event.orgID = record.org
        event.actor = record.actor
        event.action = action
        event.resource = resource
        event.outcome = outcome
        event.detail = record.detail
        event.occurredAtUnixMs = jobs.clock.nowUnixMs
        event.sourceService = service
        try connection.execute(
            "INSERT INTO audit_outbox (idempotency_key, org_id, event, created_at_unix_ms) VALUES (?, ?, ?, ?)",
            event.idempotencyKey, event.orgID, try event.serializedBytes() as Data, event.occurredAtUnixMs)
        try jobs.enqueue(Forward(), idempotencyKey: Self.forwardJob, in: connection)
    }

    /// Events not yet acknowledged.
    public func pendingCount() async throws -> Int {
        try await database.read { db in Int(try db.query("SELECT count(*) AS n FROM audit_outbox")[0].int("n") ?? 0) }
    }

    /// Events compliance refused, kept in the dead-letter table.
    public func deadLetterCount() async throws -> Int {
        try await database.read { db in Int(try db.query("SELECT count(*) AS n FROM audit_dead_letters")[0].int("n") ?? 0) }
    }

    /// The dead letters, oldest first: key and reason (for operators).
    public func deadLetters() async throws -> [(key: String, reason: String)] {
        try await database.read { db in
            try db.query("SELECT idempotency_key, reason FROM audit_dead_letters ORDER BY rejected_at_unix_ms, idempotency_key")
                .map { ($0.text("idempotency_key") ?? "", $0.text("reason") ?? "") }
        }
    }

    /// The outbox's gauges for `GetMetrics`.
    public func gauges() async -> [(name: String, value: Double)] {
        var gauges: [(name: String, value: Double)] = []
        if let pending = try? await pendingCount() { gauges.append(("audit_outbox_pending", Double(pending))) }
        if let dead = try? await deadLetterCount() { gauges.append(("audit_dead_letters", Double(dead))) }
        return gauges
    }

    /// Sends one batch (at most `batchSize` events and `batchBytes` bytes); returns how many
    /// events compliance answered for. Acknowledged events leave the outbox; rejected ones move to
    /// the dead-letter table with compliance's reason, so one bad event never blocks the others.
    @discardableResult
    public func forwardOnce(_ client: any RPCChannel) async throws -> Int {
        try await forwardOnce { events in
            try await Calltrace_Compliance_V1_AuditServiceClient(client).appendAuditEvents(.with { $0.events = events },
                                                                                           options: .init(timeout: .seconds(10), failFast: true))
        }
    }

    /// One batch through `append`.
    @discardableResult
    public func forwardOnce(_ append: Append) async throws -> Int {
        let limit = batchSize, byteLimit = batchBytes
        let rows = try await database.read { db in
            var taken: [Row] = []
            var bytes = 0
            for row in try db.query("SELECT idempotency_key, event FROM audit_outbox ORDER BY id LIMIT ?", limit) {
                let size = row.blob("event")?.count ?? 0
                if !taken.isEmpty && bytes + size > byteLimit { break }
                taken.append(row)
                bytes += size
            }
            return taken
        }
        guard !rows.isEmpty else { return 0 }
        var events: [Calltrace_Compliance_V1_AuditEvent] = []
        var stored: [String: Data] = [:]
        for row in rows {
            guard let key = row.text("idempotency_key"), let data = row.blob("event") else { continue }
            stored[key] = data
            events.append(try Calltrace_Compliance_V1_AuditEvent(serializedBytes: data))
        }
        let response = try await append(events)
        let acknowledged = response.acknowledgedKeys
        let sent = stored
        let rejected = response.rejected.filter { sent[$0.idempotencyKey] != nil }
        let now = jobs.clock.nowUnixMs
        try await database.write { db in
            for key in acknowledged { try db.execute("DELETE FROM audit_outbox WHERE idempotency_key = ?", key) }
            for refusal in rejected {
                try db.execute("DELETE FROM audit_outbox WHERE idempotency_key = ?", refusal.idempotencyKey)
                if try db.query("SELECT 1 FROM audit_dead_letters WHERE idempotency_key = ?", refusal.idempotencyKey).isEmpty {
                    try db.execute("INSERT INTO audit_dead_letters (idempotency_key, event, reason, rejected_at_unix_ms) VALUES (?, ?, ?, ?)",
                                   refusal.idempotencyKey, sent[refusal.idempotencyKey]!, String(refusal.reason.prefix(500)), now)
                }
            }
        }
        return acknowledged.count + rejected.count
    }
}

/// What compliance accepts in an audit event; senders check the same before recording.
public enum AuditEventRules {
    /// Longest actor, action, resource or outcome, in bytes.
    public static let maxFieldBytes = 256
    public static let maxDetailBytes = 1024
    /// Longest idempotency key, in bytes.
    public static let maxKeyBytes = 128

    /// Why compliance refuses an event (its fields, as `AuditEvent` names them) from `service`,
    /// or nil when it is acceptable. An action in a retired spelling (`organization.purged`) is
    /// accepted as written, unlike in `AuditOutbox.record`: a sender not yet upgraded, or its
    /// outbox from before, still holds such events, and they are facts to keep; the trail's
    /// filter finds them either way.
    public static func problem(key: String, org: String, actor: String, action: String, resource: String, outcome: String,
                               detail: String, source: String, from service: String) -> String? {
        guard source == service else { return "a service may append only its own events" }
        guard (1...maxKeyBytes).contains(key.utf8.count), key.hasPrefix("\(service):") else {
            return "idempotency_key must start with \"\(service):\" and be at most \(maxKeyBytes) bytes"
        }
        guard OrganizationID.isValid(org) else { return "org_id is not a valid organisation id" }
        guard !action.isEmpty else { return "an audit event needs an action" }
        guard [actor, action, resource, outcome].allSatisfy({ $0.utf8.count <= maxFieldBytes }) else {
            return "actor, action, resource and outcome are at most \(maxFieldBytes) bytes each"
        }
        guard detail.utf8.count <= maxDetailBytes else { return "detail is at most \(maxDetailBytes) bytes" }
        return nil
    }
}
