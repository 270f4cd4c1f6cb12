// calltrace-compliance: the compliance service. Owns the audit trail, retention policies, deletion and purge jobs, subject-request cases, offboarding cases, notice templates, the sub-processor register, per-organisation compliance settings (DESIGN.md §3).
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage

struct ComplianceService: CallTraceService {
    static let name = "compliance"
    static let defaultPort = 7104
    static let migrations = [Migration(version: 1, SharedSchema.v1)]

    init(context: ServiceContext) {}

    /// Domain RPCs arrive with their issues; health and info are always served.
    var rpcServices: [any RPCService] { [] }
}

await ServiceHost.main(ComplianceService.self)
