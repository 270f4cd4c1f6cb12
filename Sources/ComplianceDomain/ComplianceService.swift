public import CallTraceRPC
public import CallTraceServiceHost
public import CallTraceStorage

/// The compliance service: the audit trail, retention policies, deletion and purge jobs,
/// subject-request cases, offboarding cases, notice templates, the sub-processor register and
/// per-organisation compliance settings (DESIGN.md §3). Today it receives the audit trail; the
/// rest arrives with compliance's issue.
public struct ComplianceService: CallTraceService {
    public static let name = "compliance"
    public static let defaultPort = 7104
    /// Its own audit events are appended locally; it calls no other service yet.
    public static let requiredPeers: [String: String] = [:]
    public static let migrations = [Migration(version: 1, SharedSchema.v1), Migration(version: 2, AuditTrail.schema),
                                    Migration(version: 3, SharedSchema.v2), Migration(version: 4, SharedSchema.v3)]

    let auditTrail: AuditTrail

    public init(context: ServiceContext) {
        auditTrail = AuditTrail(database: context.database)
    }

    public var rpcServices: [any RPCService] { [auditTrail] }
}
