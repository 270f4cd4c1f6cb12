// calltrace-web: the web gateway as a process (its code: Sources/WebGateway).
import CallTraceServiceHost
import WebGateway

await ServiceHost.main(WebService.self)
