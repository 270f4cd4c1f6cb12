import CallTraceProto
import CallTraceRPC
import CallTraceTestSupport
import Foundation
import Testing

@Suite("Connection budgets: pending handshakes, connections per peer and in all")
struct ConnectionBudgetTests {
    func health(_ client: RPCClient) async -> StatusCode? {
        do {
            _ = try await client.unary(Calltrace_Ops_V1_HealthService.check, .init(), options: .init(timeout: patience))
            return .ok
        } catch let error as RPCError {
            return error.code
        } catch {
            return nil
        }
    }

    @Test("Past the per-peer cap a connection is refused with RESOURCE_EXHAUSTED; other peers and operators still get in")
    func perPeerAndTotalCaps() async throws {
        var limits = RPCServer.Limits.defaults
        limits.maxConnectionsPerPeer = 2
        limits.maxConnections = 4
        limits.reservedOperatorConnections = 1
        let fixture = try EchoFixture(limits: limits)
        // Each RPCClient holds one connection.
        let web = try (0..<3).map { _ in try fixture.client(identity: TemporaryPKI.identity("gateway", "web")) }
        #expect(await health(web[0]) == .ok)
        #expect(await health(web[1]) == .ok)
        #expect(await health(web[2]) == .resourceExhausted)
        let crm = try (0..<3).map { _ in try fixture.client(identity: TemporaryPKI.identity("gateway", "crm")) }
        #expect(await health(crm[0]) == .ok)
        #expect(await health(crm[1]) == .ok)
        // Four established: the server is full for everyone but an operator.
        let telephony = try fixture.client(identity: TemporaryPKI.identity("gateway", "telephony"))
        #expect(await health(telephony) == .resourceExhausted)
        let ops = try fixture.client(identity: TemporaryPKI.identity("operator", "ops"))
        #expect(await health(ops) == .ok)
        // A connection that closes frees its place.
        web[0].close()
        #expect(await eventually { await health(telephony) == .ok })
        // Held open to here (an optimised build ends a value's life at its last use).
        for client in web + crm { client.close() }
    }

    @Test("A flood of idle TCP connections: the oldest pending ones are cut, a legitimate call still gets through")
    func idleFlood() async throws {
        var limits = RPCServer.Limits.defaults
        limits.maxPendingHandshakes = 32
        limits.maxPendingHandshakesPerAddress = 8
        let fixture = try EchoFixture(limits: limits)
        var flood: [Int32] = []
        defer { for fd in flood { close(fd) } }
        for _ in 0..<300 { flood.append(try RawTLSClient.plainTCP(port: fixture.server.port)) }
        let client = try fixture.client()
        #expect(await health(client) == .ok)
        // Most of the flood was cut: reading from the oldest connections finds them closed.
        let oldest = Array(flood.prefix(100))
        let closed = try await onThread { () -> Int in
            oldest.filter { fd in
                var byte: UInt8 = 0
                return recv(fd, &byte, 1, 0) == 0
            }.count
        }
        #expect(closed == 100)
    }

    @Test("A connection past its maximum age gets a goaway and closes once its call is done; the client reconnects")
    func maximumAge() async throws {
        var limits = RPCServer.Limits.defaults
        limits.maxConnectionAge = .milliseconds(300)
        let fixture = try EchoFixture(limits: limits)
        let raw = try RawTLSClient(certificate: try fixture.pki.credentials(for: TemporaryPKI.identity("gateway", "web")), caPath: fixture.pki.caPath)
        _ = try raw.connect(port: fixture.server.port)
        raw.setReceiveTimeout(.seconds(60))
        try raw.sendSettings()
        // The call is held until the goaway has arrived: the order does not depend on timing.
        try raw.send(try .echoCall(1, payload: "finished", tag: "hold:age"))
        let first = try await onThread { try raw.readFrame() }
        #expect(first?.goaway == true, "the goaway comes while the call is in flight")
        fixture.echo.release("hold:age")
        let rest = try await onThread { () -> [Calltrace_Rpc_V1_Frame] in
            var frames: [Calltrace_Rpc_V1_Frame] = []
            while let frame = try raw.readFrame() { frames.append(frame) }
            return frames
        }
        // Then the call's answer, then the close.
        #expect(rest.last?.callID == 1 && rest.last?.status.code == 0)
        // A client simply opens a new connection for its next call. That one lives 300 ms too:
        // on a loaded machine its handshake can take that long, and a call sent as its goaway
        // leaves is refused UNAVAILABLE (the client does not retry it); the next call then goes
        // on the next connection.
        let client = try fixture.client()
        #expect(await eventually { await health(client) == .ok })
    }
}
