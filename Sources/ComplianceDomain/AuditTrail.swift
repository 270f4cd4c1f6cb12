import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import Foundation

/// Receives the audit events every service forwards from its outbox (P15) and stores each
/// idempotency key once. The per-organisation hash chain arrives with compliance's own issue.
struct AuditTrail: Calltrace_Compliance_V1_AuditServiceHandler {
    static let schema = """
        CREATE TABLE audit_events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            idempotency_key TEXT NOT NULL UNIQUE,
            org_id TEXT NOT NULL,
            source_service TEXT NOT NULL,
            event BLOB NOT NULL,
            received_at_unix_ms INTEGER NOT NULL
        );
        CREATE INDEX audit_events_by_org ON audit_events (org_id, seq);
        """

    let database: Database
    /// Services only; each may append only its own events.
    let policies = Calltrace_Compliance_V1_AuditServicePolicies(appendAuditEvents: .services)

    func appendAuditEvents(_ request: Calltrace_Compliance_V1_AppendAuditEventsRequest, context: ServerContext) async throws
        -> Calltrace_Compliance_V1_AppendAuditEventsResponse {
        try await append(request.events, from: context.peer.name)
    }

    /// Judges each event on its own: stored (or already stored identically) → acknowledged;
    /// malformed, another service's, or a different event under a used key → rejected with the
    /// reason. One bad event never holds back the others.
    func append(_ events: [Calltrace_Compliance_V1_AuditEvent], from service: String) async throws
        -> Calltrace_Compliance_V1_AppendAuditEventsResponse {
        var response = Calltrace_Compliance_V1_AppendAuditEventsResponse()
        var acceptable: [(Calltrace_Compliance_V1_AuditEvent, Data)] = []
        for event in events {
            if let problem = AuditEventRules.problem(with: event, from: service) {
                response.rejected.append(.with {
                    $0.idempotencyKey = String(event.idempotencyKey.prefix(AuditEventRules.maxKeyBytes))
                    $0.reason = problem
                })
            } else {
                acceptable.append((event, try event.serializedBytes()))
            }
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let candidates = acceptable
        let verdicts = try await database.write { db -> [(String, String?)] in
            try candidates.map { event, bytes in
                if let existing = try db.query("SELECT event FROM audit_events WHERE idempotency_key = ?", event.idempotencyKey).first {
                    return (event.idempotencyKey, existing.blob("event") == bytes ? nil : "a different event was already stored under this idempotency_key")
                }
                try db.execute(
                    "INSERT INTO audit_events (idempotency_key, org_id, source_service, event, received_at_unix_ms) VALUES (?, ?, ?, ?, ?)",
                    event.idempotencyKey, event.orgID, event.sourceService, bytes, now)
                return (event.idempotencyKey, nil)
            }
        }
        for (key, problem) in verdicts {
            if let problem {
                response.rejected.append(.with { $0.idempotencyKey = key; $0.reason = problem })
            } else {
                response.acknowledgedKeys.append(key)
            }
        }
        return response
    }
}
