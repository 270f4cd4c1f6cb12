// calltrace-identity: the identity service as a process (its code: Sources/IdentityDomain).
import CallTraceServiceHost
import IdentityDomain

await ServiceHost.main(IdentityService.self)
