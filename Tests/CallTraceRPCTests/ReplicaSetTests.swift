import CallTraceAPI
import CallTraceProto
@testable import CallTraceRPC
import CallTraceTLS
import CallTraceTestSupport
import Foundation
import Logging
import Testing

/// Several replicas of one service as one channel (issue 34): calls spread across them, a
/// replica that stops is passed over — for any call, since one that never left cannot have been
/// acted on — and a replica's own answer, a refusal included, is never retried elsewhere.
@Suite("RPC: a replica set spreads calls and passes over a replica that is down")
struct ReplicaSetTests {
    /// Two echo servers of one service (one PKI, the same identity), each with its own echo.
    static func replicas() throws -> (EchoFixture, second: (server: RPCServer, echo: EchoService)) {
        let fixture = try EchoFixture()
        let echo = EchoService()
        let configuration = RPCServer.Configuration(credentials: try fixture.pki.credentials(for: EchoFixture.serverIdentity),
                                                    info: .init(serviceName: "media", version: "test"))
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return (fixture, (try RPCServer(configuration: configuration, services: [echo], logger: logger), echo))
    }

    @Test("Calls alternate between two replicas; with one stopped, an idempotent call moves on to the other, and then every call, an upload (not idempotent) included, goes there; with none, UNAVAILABLE")
    func spreadAndFailOver() async throws {
        let (fixture, second) = try Self.replicas()
        defer { second.server.stop() }
        let set = ReplicaSet([try fixture.client(), try fixture.client(port: second.server.port)])
        defer { set.close() }
        for n in 0..<20 {
            _ = try await set.unary(Calltrace_Testing_V1_EchoService.echo, .with { $0.tag = "spread-\(n)" }, options: .init(timeout: .seconds(30)))
        }
        #expect(fixture.echo.observations.completedTags.count == 10 && second.echo.observations.completedTags.count == 10)

        second.server.stop()
        // The first calls find the stopped replica's connection gone (or no connection to be
        // had): Echo, idempotent, moves on. An upload written to a connection that then closed
        // would not (the replica may have taken it): once the set knows, it sends none there.
        for n in 0..<2 {
            _ = try await set.unary(Calltrace_Testing_V1_EchoService.echo, .with { $0.tag = "probe-\(n)" }, options: .init(timeout: .seconds(30)))
        }
        for n in 0..<6 {
            _ = try await set.unary(Calltrace_Testing_V1_EchoService.echo, .with { $0.tag = "over-\(n)" }, options: .init(timeout: .seconds(30)))
            let uploaded = try await set.clientStreaming(Calltrace_Testing_V1_EchoService.upload, options: .init(timeout: .seconds(30))) { writer in
                try await writer.send(.with { $0.chunk = Data(repeating: 7, count: 1000) })
            }
            #expect(uploaded.receivedBytes == 1000)
        }
        #expect(fixture.echo.observations.completedTags.filter { $0.hasPrefix("over-") }.count == 6)

        fixture.server.stop()
        let error = await #expect(throws: RPCError.self) {
            _ = try await set.unary(Calltrace_Testing_V1_EchoService.echo, .with { $0.tag = "none" }, options: .init(timeout: .seconds(2), failFast: true))
        }
        #expect(error?.code == .unavailable)
    }

    @Test("A replica gone silent (its port takes connections and never answers) does not hold a call to its deadline: the next replica gets the rest of the time")
    func silentReplica() async throws {
        let (fixture, second) = try Self.replicas()
        second.server.stop()
        let silent = try TCPListener(host: "127.0.0.1", port: 0)  // never accepts: TCP connects, TLS never answers
        defer { silent.shutdown() }
        let set = ReplicaSet([try fixture.client(port: silent.port), try fixture.client()])
        defer { set.close() }
        // The silent replica gets a share of the time to connect (2 s), not the call's 60 s (on a loaded machine its timer fires late: 11 s seen).
        let started = ContinuousClock.now
        _ = try await set.unary(Calltrace_Testing_V1_EchoService.echo, .with { $0.tag = "past-silence" }, options: .init(timeout: .seconds(60)))
        #expect(started.duration(to: .now) < .seconds(45))
        #expect(fixture.echo.observations.completedTags == ["past-silence"])
    }

    @Test("A replica's own answer stands: a refusal is not tried on the other replica")
    func answersAreNotRetried() async throws {
        let (fixture, second) = try Self.replicas()
        defer { second.server.stop() }
        let set = ReplicaSet([try fixture.client(), try fixture.client(port: second.server.port)])
        defer { set.close() }
        for n in 0..<4 {
            let error = await #expect(throws: RPCError.self) {
                _ = try await set.unary(Calltrace_Testing_V1_EchoService.echo, .with {
                    $0.tag = "refused-\(n)"; $0.failWithCode = StatusCode.permissionDenied.rawValue
                })
            }
            #expect(error?.code == .permissionDenied && error?.neverSent == false)
        }
        #expect(fixture.echo.observations.startedTags.count == 2 && second.echo.observations.startedTags.count == 2, "each call reached one replica once")
    }

    @Test("Addresses: one host:port, or several comma-separated for replicas; anything else refused")
    func addresses() {
        #expect(Deployment.addresses("10.0.0.6:7102")?.map { "\($0.host):\($0.port)" } == ["10.0.0.6:7102"])
        #expect(Deployment.addresses("10.0.0.6:7102, 10.0.0.9:7102")?.map { "\($0.host):\($0.port)" } == ["10.0.0.6:7102", "10.0.0.9:7102"])
        for bad in ["", ",", "10.0.0.6:7102,", "10.0.0.6", "10.0.0.6:0", "a:1,b", "x:70000"] {
            #expect(Deployment.addresses(bad) == nil, "\(bad)")
        }
    }
}
