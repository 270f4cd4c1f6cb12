// calltrace-telephony: the telephony gateway as a process (its code: Sources/TelephonyGateway).
import CallTraceServiceHost
import TelephonyGateway

await ServiceHost.main(TelephonyService.self)
