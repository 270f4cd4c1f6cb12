import CallTraceProto
@testable import CallTraceRPC
import Foundation
import Testing

/// Admission, one rule at a time: what the server decides about a call's opening frame before
/// decoding its request (docs/PROTOCOL.md §4), as the pure function the connection applies.
/// The same rules over a real connection: BadInputTests, LifecycleTests, ConnectionBudgetTests.
@Suite("Admission: the decision for each rule")
struct AdmissionTests {
    static let web = PeerIdentity(trustDomain: "calltrace.test", kind: .gateway, name: "web")
    static let echo = route("calltrace.testing.v1.EchoService", "Echo", .unary)
    static let upload = route("calltrace.testing.v1.EchoService", "Upload", .clientStreaming)
    static let health = route("calltrace.ops.v1.HealthService", "Check", .unary)

    static func route(_ service: String, _ name: String, _ kind: MethodKind, allow: PeerPolicy = .anyPeer) -> RPCRouter.Route {
        RPCRouter.Route(info: MethodInfo(service: service, name: name, kind: kind, isIdempotent: false), policy: allow, run: { _ in })
    }

    /// Decides call 7's opening frame for `route`: by default a well-formed unary call (the
    /// request "ping" and end_stream) from the web gateway, on an idle open connection of a
    /// started server with the default limits.
    func decide(_ route: RPCRouter.Route?, message: Data? = Data("ping".utf8), endStream: Bool = true,
                metadata: [Metadata.Entry] = [], timeoutMs: UInt64 = 0, peer: PeerIdentity = web, serverStarted: Bool = true,
                limits: RPCServer.Limits = .defaults, connection: Admission.Load = .init()) -> Admission {
        var frame = WireFrame(callID: 7)
        var header = WireFrame.Header()
        header.method = route?.info.fullName ?? "/calltrace.testing.v1.EchoService/Nothing"
        header.metadata = metadata
        header.timeoutMs = timeoutMs
        frame.header = header
        frame.message = message
        frame.endStream = endStream
        return Admission.decide(frame, header: header, route: route, peer: peer, serverStarted: serverStarted,
                                limits: limits, connection: connection)
    }

    func admitted(request: Data? = Data("ping".utf8), requestBytes: Int = 4, timeout: Duration? = nil,
                  metadata: [Metadata.Entry] = []) throws -> Admission {
        .admit(.init(metadata: try Metadata(validating: metadata), request: request, requestBytes: requestBytes, timeout: timeout))
    }

    @Test("A call id in flight: a protocol violation, whatever else the frame says")
    func callIDInUse() {
        let violation = Admission.violation(RPCError(.invalidArgument, "call id 7 is already in use"))
        #expect(decide(Self.echo, connection: .init(callIDInUse: true)) == violation)
        #expect(decide(nil, connection: .init(callIDInUse: true)) == violation)
        #expect(decide(Self.echo, connection: .init(callIDInUse: true, drain: .draining)) == violation)
    }

    @Test("An unknown method: UNIMPLEMENTED \"unknown method\", the name not echoed; while the server starts (its methods not installed yet), UNAVAILABLE")
    func unknownMethod() {
        #expect(decide(nil) == .refuse(RPCError(.unimplemented, "unknown method")))
        // A service restarted after a crash opens its port before its methods are in the table:
        // a gateway's retry arriving then must be told to ask again (the crash harness saw UNIMPLEMENTED).
        #expect(decide(nil, serverStarted: false) == .refuse(RPCError(.unavailable, "server is starting")))
    }

    @Test("A method name over 256 bytes is not looked up, even one the router knows")
    func longNamesNotLookedUp() {
        var router = RPCRouter()
        for length in [250, 251] {  // "/" + service + "/Echo": 256 and 257 bytes
            let method = MethodDescriptor<Calltrace_Testing_V1_EchoRequest, Calltrace_Testing_V1_EchoResponse>(
                service: String(repeating: "a", count: length), name: "Echo", kind: .unary, isIdempotent: false)
            router.unary(method, allow: .anyPeer) { request, _ in .with { $0.payload = request.payload } }
        }
        #expect(router.route(named: "/" + String(repeating: "a", count: 250) + "/Echo")?.info.service.count == 250)
        #expect(router.route(named: "/" + String(repeating: "a", count: 251) + "/Echo") == nil)
    }

    @Test("A peer the method's policy does not allow: PERMISSION_DENIED naming peer and method")
    func peerNotAllowed() throws {
        let servicesOnly = Self.route("calltrace.testing.v1.EchoService", "Echo", .unary, allow: .services)
        #expect(decide(servicesOnly) == .refuse(RPCError(.permissionDenied,
            "spiffe://calltrace.test/gateway/web may not call /calltrace.testing.v1.EchoService/Echo")))
        let media = PeerIdentity(trustDomain: "calltrace.test", kind: .service, name: "media")
        #expect(decide(servicesOnly, peer: media) == (try admitted()))
    }

    @Test("A server still starting: UNAVAILABLE for application methods; the ops services are served")
    func serverStarting() throws {
        #expect(decide(Self.echo, serverStarted: false) == .refuse(RPCError(.unavailable, "server is starting")))
        #expect(decide(Self.health, serverStarted: false) == (try admitted()))
    }

    @Test("Bidirectional streaming: UNIMPLEMENTED")
    func bidirectional() {
        let chat = Self.route("calltrace.testing.v1.EchoService", "Chat", .bidirectionalStreaming)
        #expect(decide(chat) == .refuse(RPCError(.unimplemented, "bidirectional streaming is not supported")))
    }

    @Test("A unary or server-streaming call without its request and end_stream in the opening frame: INVALID_ARGUMENT")
    func singleRequestInOpeningFrame() {
        let download = Self.route("calltrace.testing.v1.EchoService", "Download", .serverStreaming)
        for route in [Self.echo, download] {
            let refusal = Admission.refuse(RPCError(.invalidArgument,
                "\(route.info.fullName) takes one request, in the opening frame with end_stream"))
            #expect(decide(route, message: nil) == refusal)
            #expect(decide(route, endStream: false) == refusal)
        }
    }

    @Test("Malformed metadata: INVALID_ARGUMENT (bad key, reserved ctrpc- prefix, unprintable text value)")
    func malformedMetadata() {
        #expect(decide(Self.echo, metadata: [.init(key: "Bad Key", value: Data("x".utf8))])
            == .refuse(RPCError(.invalidArgument, "metadata key must be lowercase ASCII letters, digits, '-', '_' or '.'")))
        #expect(decide(Self.echo, metadata: [.init(key: "ctrpc-timeout", value: Data("1".utf8))])
            == .refuse(RPCError(.invalidArgument, "metadata key prefix ctrpc- is reserved for the protocol")))
        #expect(decide(Self.echo, metadata: [.init(key: "x-note", value: Data([0x07]))])
            == .refuse(RPCError(.invalidArgument, "metadata value for x-note is not printable ASCII")))
    }

    @Test("Metadata over 64 entries or 16 KiB: RESOURCE_EXHAUSTED")
    func metadataTooLarge() {
        let refusal = Admission.refuse(RPCError(.resourceExhausted, "call metadata exceeds 64 entries or 16384 bytes"))
        let many = (0..<65).map { Metadata.Entry(key: "k\($0)", value: Data("v".utf8)) }
        #expect(decide(Self.echo, metadata: many) == refusal)
        #expect(decide(Self.echo, metadata: [.init(key: "big-bin", value: Data(count: 16 * 1024))]) == refusal)
    }

    @Test("A draining connection: UNAVAILABLE; while the server drains, the ops services are still served")
    func draining() throws {
        let shuttingDown = Admission.refuse(RPCError(.unavailable, "server is shutting down"))
        #expect(decide(Self.echo, connection: .init(drain: .draining)) == shuttingDown)
        #expect(decide(Self.health, connection: .init(drain: .draining)) == shuttingDown)
        #expect(decide(Self.echo, connection: .init(drain: .serverDraining)) == shuttingDown)
        #expect(decide(Self.health, connection: .init(drain: .serverDraining)) == (try admitted()))
    }

    @Test("More calls than max_concurrent_calls: RESOURCE_EXHAUSTED")
    func tooManyCalls() throws {
        var limits = RPCServer.Limits.defaults
        limits.maxConcurrentCallsPerConnection = 3
        #expect(decide(Self.echo, limits: limits, connection: .init(calls: 3))
            == .refuse(RPCError(.resourceExhausted, "too many concurrent calls on this connection (limit 3)")))
        #expect(decide(Self.echo, limits: limits, connection: .init(calls: 2)) == (try admitted()))
    }

    @Test("Request bytes held past the connection's budget: RESOURCE_EXHAUSTED; a request stream holds its window")
    func requestBytes() throws {
        var limits = RPCServer.Limits.defaults
        limits.maxRequestBytesPerConnection = 1000
        limits.initialWindowBytes = 100
        let refusal = Admission.refuse(RPCError(.resourceExhausted,
            "the calls in flight on this connection hold too many request bytes (limit 1000)"))
        #expect(decide(Self.echo, limits: limits, connection: .init(heldRequestBytes: 996)) == (try admitted()))
        #expect(decide(Self.echo, limits: limits, connection: .init(heldRequestBytes: 997)) == refusal)
        #expect(decide(Self.upload, message: nil, endStream: false, limits: limits, connection: .init(heldRequestBytes: 900))
            == (try admitted(request: nil, requestBytes: 100)))
        #expect(decide(Self.upload, message: nil, endStream: false, limits: limits, connection: .init(heldRequestBytes: 901)) == refusal)
    }

    @Test("Admitted: the metadata validated, the request, the bytes it holds, the timeout capped at maxCallTimeout")
    func admit() throws {
        let metadata = [Metadata.Entry(key: "x-client-address", value: Data("203.0.113.9".utf8))]
        #expect(decide(Self.echo, metadata: metadata, timeoutMs: 5000) == (try admitted(timeout: .seconds(5), metadata: metadata)))
        #expect(decide(Self.echo, timeoutMs: .max) == (try admitted(timeout: RPCServer.Limits.defaults.maxCallTimeout)))
        // A request stream may start in the opening frame; its messages are not the admission's.
        #expect(decide(Self.upload) == (try admitted(request: nil, requestBytes: RPCServer.Limits.defaults.initialWindowBytes)))
    }

    @Test("Drain state: the connection's age drains an open connection only; a server drain overrides either")
    func drainTransitions() {
        var state = DrainState.open
        #expect(state.admits(ops: false) && !state.closesWhenIdle)
        state.drain()
        #expect(state == .draining && !state.admits(ops: true) && state.closesWhenIdle)
        state.drainForShutdown()
        #expect(state == .serverDraining && state.admits(ops: true) && !state.admits(ops: false) && !state.closesWhenIdle)
        state.drain()
        #expect(state == .serverDraining)
    }
}
