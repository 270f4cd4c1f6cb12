import CallTraceProto
public import CallTraceRPC
public import CallTraceStorage
import Foundation
public import Logging
import Synchronization

/// What happened, for the audit trail. Never put secrets, tokens, phone numbers or transcript
/// text in any field.
public struct AuditRecord: Sendable {
    public var org: String
    public var actor: String
    public var action: String
    public var resource: String
    public var outcome: String

    public init(org: String, actor: String, action: String, resource: String, outcome: String) {
        self.org = org
        self.actor = actor
        self.action = action
        self.resource = resource
        self.outcome = outcome
    }
}

/// A service's audit outbox: events are written to its own database in the same transaction as
/// the action they describe, then forwarded to compliance's `AppendAuditEvents` until
/// acknowledged. Delivery is at least once; compliance stores each idempotency key once, so the
/// trail holds every event exactly once. Events wait safely while compliance is unreachable,
/// and survive restarts of the sender.
public final class AuditOutbox: Sendable {
    private let database: Database
    private let service: String
    private let batchSize: Int
    private let wake = Mutex<CheckedContinuation<Void, Never>?>(nil)
    private let forwarder = Mutex<Task<Void, Never>?>(nil)

    public init(database: Database, service: String, batchSize: Int = 200) {
        self.database = database
        self.service = service
        self.batchSize = batchSize
    }

    /// Records `record` inside the caller's transaction (`Database.write`).
    public func record(_ record: AuditRecord, in connection: Connection) throws {
        var event = Calltrace_Compliance_V1_AuditEvent()
        event.idempotencyKey = "\(service):\(UUID().uuidString.lowercased())"
        event.orgID = record.org
        event.actor = record.actor
        event.action = record.action
        event.resource = record.resource
        event.outcome = record.outcome
        event.occurredAtUnixMs = Int64(Date().timeIntervalSince1970 * 1000)
        event.sourceService = service
        try connection.execute(
            "INSERT INTO audit_outbox (idempotency_key, org_id, event, created_at_unix_ms) VALUES (?, ?, ?, ?)",
            event.idempotencyKey, event.orgID, try event.serializedBytes() as Data, event.occurredAtUnixMs)
        wakeForwarder()
    }

    /// Events not yet acknowledged.
    public func pendingCount() async throws -> Int {
        try await database.read { db in Int(try db.query("SELECT count(*) AS n FROM audit_outbox")[0].int("n") ?? 0) }
    }

    /// Starts forwarding to compliance through `client`; retries with backoff until acknowledged.
    public func startForwarding(to client: RPCClient, logger: Logger, idlePoll: Duration = .seconds(2)) {
        let task = Task { [self] in
            var backoff: Duration = .milliseconds(100)
            while !Task.isCancelled {
                do {
                    let sent = try await forwardOnce(client)
                    backoff = .milliseconds(100)
                    if sent == 0 { await waitForWork(upTo: idlePoll) }
                } catch {
                    logger.debug("audit forwarding deferred", metadata: ["reason": "\(error)"])
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .seconds(10))
                }
            }
        }
        forwarder.withLock { $0 = task }
    }

    /// Stops forwarding (events stay in the outbox).
    public func stopForwarding() {
        forwarder.withLock { $0?.cancel() }
        wakeForwarder()
    }

    /// Sends one batch; returns how many events compliance acknowledged.
    @discardableResult
    public func forwardOnce(_ client: RPCClient) async throws -> Int {
        let limit = batchSize
        let rows = try await database.read { db in
            try db.query("SELECT idempotency_key, event FROM audit_outbox ORDER BY id LIMIT ?", limit)
        }
        guard !rows.isEmpty else { return 0 }
        var request = Calltrace_Compliance_V1_AppendAuditEventsRequest()
        request.events = try rows.compactMap { row in
            guard let data = row.blob("event") else { return nil }
            return try Calltrace_Compliance_V1_AuditEvent(serializedBytes: data)
        }
        let response = try await client.unary(Calltrace_Compliance_V1_AuditService.appendAuditEvents, request,
                                              options: .init(timeout: .seconds(10)))
        let acknowledged = response.acknowledgedKeys
        try await database.write { db in
            for key in acknowledged { try db.execute("DELETE FROM audit_outbox WHERE idempotency_key = ?", key) }
        }
        return acknowledged.count
    }

    private func waitForWork(upTo timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                await withCheckedContinuation { continuation in
                    let previous = wake.withLock { slot -> CheckedContinuation<Void, Never>? in
                        defer { slot = continuation }
                        return slot
                    }
                    previous?.resume()
                }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            wakeForwarder()
            group.cancelAll()
        }
    }

    private func wakeForwarder() {
        wake.withLock { slot in
            slot?.resume()
            slot = nil
        }
    }
}
