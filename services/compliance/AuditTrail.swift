import CallTraceProto
import CallTraceRPC
import CallTraceStorage
import Foundation

/// Receives the audit events every service forwards from its outbox (P15) and stores each
/// idempotency key once. The per-organisation hash chain arrives with compliance's own issue.
struct AuditTrail: RPCService {
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

    func register(with router: inout RPCRouter) {
        router.unary(Calltrace_Compliance_V1_AuditService.appendAuditEvents, allow: .services) { request, context in
            for event in request.events {
                guard !event.idempotencyKey.isEmpty, !event.orgID.isEmpty, !event.action.isEmpty else {
                    throw RPCError(.invalidArgument, "an audit event needs idempotency_key, org_id and action")
                }
                // A service may only forward its own events.
                guard event.sourceService == context.peer.name else {
                    throw RPCError(.permissionDenied, "\(context.peer) may not append events of service \(event.sourceService)")
                }
            }
            let events = request.events
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            try await database.write { db in
                for event in events {
                    try db.execute(
                        "INSERT OR IGNORE INTO audit_events (idempotency_key, org_id, source_service, event, received_at_unix_ms) VALUES (?, ?, ?, ?, ?)",
                        event.idempotencyKey, event.orgID, event.sourceService, try event.serializedBytes() as Data, now)
                }
            }
            var response = Calltrace_Compliance_V1_AppendAuditEventsResponse()
            response.acknowledgedKeys = events.map(\.idempotencyKey)
            return response
        }
    }
}
