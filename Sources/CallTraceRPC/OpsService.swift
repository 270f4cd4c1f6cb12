import CallTraceProto

/// `calltrace.ops.v1` on every server: health (gRPC semantics), server info, metrics.
struct OpsService: RPCService {
    let core: ServerCore

    func register(with router: inout RPCRouter) {
        let core = self.core
        router.unary(Calltrace_Ops_V1_HealthService.check, allow: .anyPeer) { request, _ in
            guard request.service.isEmpty || core.router.serviceNames.contains(request.service) else {
                throw RPCError(.notFound, "unknown service \(request.service)")
            }
            var response = Calltrace_Ops_V1_CheckResponse()
            response.status = core.serving.load(ordering: .acquiring) ? .serving : .notServing
            return response
        }
        router.unary(Calltrace_Ops_V1_ServerInfoService.getServerInfo, allow: .anyPeer) { _, context in
            var response = Calltrace_Ops_V1_GetServerInfoResponse()
            response.serviceName = core.info.serviceName
            response.version = core.info.version
            response.schemaVersion = core.info.schemaVersion
            response.uptimeSeconds = UInt64(max(0, core.startedAt.duration(to: .now).components.seconds))
            response.callerIdentity = context.peer.uri
            response.protocol = "ctrpc/1"
            response.tlsVersion = context.tlsVersion
            return response
        }
        // Operators and services only: call volumes are operational metadata, not for gateways.
        router.unary(Calltrace_Ops_V1_MetricsService.getMetrics, allow: .operators | .services) { _, _ in
            var response = Calltrace_Ops_V1_GetMetricsResponse()
            response.serviceName = core.info.serviceName
            response.bucketUpperBoundsSeconds = CallMetrics.bounds
            response.methods = core.metrics.snapshot()
            if let provider = core.gauges.withLock({ $0 }) {
                response.gauges = await provider().map { gauge in .with { $0.name = gauge.name; $0.value = gauge.value } }
            }
            return response
        }
    }
}
