// calltrace-compliance: the compliance service. Owns the audit trail, retention policies, deletion and purge jobs, subject-request cases, offboarding cases, notice templates, the sub-processor register, per-organisation compliance settings (DESIGN.md §3).
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage

struct ComplianceService: CallTraceService {
    static let name = "compliance"
    static let defaultPort = 7104
    static let migrations = [Migration(version: 1, SharedSchema.v1), Migration(version: 2, AuditTrail.schema),
                             Migration(version: 3, SharedSchema.v2)]

    let auditTrail: AuditTrail

    init(context: ServiceContext) {
        auditTrail = AuditTrail(database: context.database)
    }

    /// More domain RPCs arrive with compliance's issues; health and info are always served.
    var rpcServices: [any RPCService] { [auditTrail] }
}

await ServiceHost.main(ComplianceService.self)
