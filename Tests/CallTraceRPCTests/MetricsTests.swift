import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Testing

@Suite("Per-method metrics")
struct MetricsTests {
    @Test("Calls, status codes and latency buckets per method; operators may read them, gateways may not")
    func metrics() async throws {
        let fixture = try EchoFixture()
        let gateway = try fixture.client()
        for _ in 0..<3 { _ = try await gateway.unary(Calltrace_Testing_V1_EchoService.echo, .init()) }
        var failing = Calltrace_Testing_V1_EchoRequest()
        failing.failWithCode = StatusCode.notFound.rawValue
        _ = try? await gateway.unary(Calltrace_Testing_V1_EchoService.echo, failing)
        // Connections count into different tables (one per connection, a few in all): the
        // report adds them up.
        for _ in 0..<9 {
            let other = try fixture.client()
            _ = try await other.unary(Calltrace_Testing_V1_EchoService.echo, .init())
            other.close()
        }

        let denied = await #expect(throws: RPCError.self) { try await gateway.unary(Calltrace_Ops_V1_MetricsService.getMetrics, .init()) }
        #expect(denied?.code == .permissionDenied)

        let operatorClient = try fixture.client(identity: TemporaryPKI.identity("operator", "ops"))
        let metrics = try await operatorClient.unary(Calltrace_Ops_V1_MetricsService.getMetrics, .init())
        let echo = try #require(metrics.methods.first { $0.method == Calltrace_Testing_V1_EchoService.echo.fullName })
        #expect(echo.calls == 13)
        #expect(echo.statuses.first { $0.code == "OK" }?.count == 12)
        #expect(echo.statuses.first { $0.code == "NOT_FOUND" }?.count == 1)
        #expect(echo.cumulativeBucketCounts.count == metrics.bucketUpperBoundsSeconds.count + 1)
        #expect(echo.cumulativeBucketCounts.last == 13)
        #expect(echo.durationSumSeconds > 0)
        let getMetrics = metrics.methods.first { $0.method == Calltrace_Ops_V1_MetricsService.getMetrics.fullName }
        #expect(getMetrics?.statuses.first { $0.code == "PERMISSION_DENIED" }?.count == 1)
    }
}

@Suite("Call logs")
struct CallLogTests {
    @Test("Each call's log line has method, peer, call id, org, status and duration — and no metadata values or payload")
    func callLogLine() async throws {
        let log = CapturedLog()
        let fixture = try EchoFixture(log: log)
        let client = try fixture.client()
        var metadata = Metadata()
        try metadata.add("x-org", "org_42")
        try metadata.add("authorization", "Bearer secret-token-value")
        var request = Calltrace_Testing_V1_EchoRequest()
        request.payload = Data("+441182304651 said something confidential".utf8)
        _ = try await client.unary(Calltrace_Testing_V1_EchoService.echo, request, options: .init(metadata: metadata))
        var failing = Calltrace_Testing_V1_EchoRequest()
        failing.failWithCode = StatusCode.permissionDenied.rawValue
        _ = try? await client.unary(Calltrace_Testing_V1_EchoService.echo, failing)
        let text = log.text
        #expect(text.contains("call call_id=1 duration_us="))
        #expect(text.contains("method=/calltrace.testing.v1.EchoService/Echo org=org_42 peer=spiffe://calltrace.test/gateway/web status=OK"))
        #expect(text.contains("status=PERMISSION_DENIED"))
        #expect(!text.contains("secret-token-value"))
        #expect(!text.contains("441182304651"))
        #expect(!text.contains("confidential"))
    }
}
