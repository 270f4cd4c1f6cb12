// calltrace-compliance: the compliance service as a process (its code: Sources/ComplianceDomain).
import CallTraceServiceHost
import ComplianceDomain

await ServiceHost.main(ComplianceService.self)
