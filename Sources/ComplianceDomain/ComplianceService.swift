public import CallTraceRPC
public import CallTraceServiceHost
public import CallTraceStorage

/// The compliance service: the audit trail, retention policies, deletion and purge jobs,
/// subject-request cases, offboarding cases, notice templates, the sub-processor register and
/// per-organisation compliance settings (DESIGN.md §3). Today: the audit trail (P8, P15) and the
/// ICO deadline engine; the rest arrives with compliance's issue.
public struct ComplianceService: CallTraceService {
    public static let name = "compliance"
    public static let defaultPort = 7104
    /// Its own audit events are appended locally.
    public static let requiredPeers: [String: String] = ["identity": "to authorise users and operators"]
    public static let migrations = [Migration(version: 1, SharedSchema.v1), Migration(version: 2, Self.receivedEvents),
                                    Migration(version: 3, SharedSchema.v2), Migration(version: 4, SharedSchema.v3),
                                    Migration(version: 5, SQLiteAuditChainRepository.schema)]

    /// Events as received before the chain existed (schema 2); moved into the chain at start-up.
    static let receivedEvents = """
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

    let audit: AuditHandler

    public init(context: ServiceContext) throws {
        guard let authorizer = context.authorizer else { throw ConfigurationError("compliance needs its identity peer") }
        let trail = AuditTrail(repository: SQLiteAuditChainRepository(database: context.database), keys: context.keys, clock: context.clock)
        let moved = try trail.importUnchained()
        if moved > 0 { context.logger.notice("audit events moved into the chain", metadata: ["events": "\(moved)"]) }
        // Compliance's own events go straight into its trail.
        context.outbox.forward { events in try await trail.append(events, from: ComplianceService.name) }
        audit = AuditHandler(trail: trail, authorizer: authorizer)
    }

    public var rpcServices: [any RPCService] { [audit] }
}
