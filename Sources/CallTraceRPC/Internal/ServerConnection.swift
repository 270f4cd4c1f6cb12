import CallTraceProto
import CallTraceSync
import CallTraceTLS
import Foundation
import Synchronization

/// The server's view of one client connection: the calls in flight on it, their deadlines,
/// and the checks a new call passes before its request is decoded.
final class ServerConnection: FrameConnectionDelegate, @unchecked Sendable {
    let connection: FrameConnection
    let peer: PeerIdentity
    private let core: ServerCore
    private let peerSettings: WireFrame.Settings

    private struct State {
        var calls: [UInt64: ServerCallIO] = [:]
        var deadlines = DeadlineQueue()
        /// Whether new calls are admitted (see `DrainState`; its transitions are its own).
        var drain = DrainState.open
        var lastActivity = ContinuousClock.now
        /// Request bytes the calls in flight hold or may buffer (see `Limits.maxRequestBytesPerConnection`).
        var heldRequestBytes = 0
    }
    private let state = Locked(State())

    /// Whether this peer's `x-client-address` is believed (a trusted gateway).
    private let trustsClientAddress: Bool
    /// When the connection was established (for `Limits.maxConnectionAge`).
    private let establishedAt = ContinuousClock.now
    /// The call metrics' table this connection's calls are counted in.
    private let metricsStripe: Int
    /// The route of the last call opened here (I/O thread only). A connection mostly calls one
    /// method after another, and a route, once registered, never changes: a repeat is found by
    /// comparing names, without the method table's lock and hashing.
    private var lastRoute: RPCRouter.Route?

    init(connection: FrameConnection, peer: PeerIdentity, peerSettings: WireFrame.Settings, core: ServerCore) {
        self.connection = connection
        self.peer = peer
        self.trustsClientAddress = peer.kind == .gateway && core.clientAddressGateways.contains(peer.name)
        self.peerSettings = peerSettings
        self.core = core
        self.metricsStripe = core.metrics.stripe()
    }

    var activeCalls: Int { state.withLock { $0.calls.count } }

    /// Calls in flight other than the ops services' (health, info, metrics): what a drain waits for.
    var applicationCalls: Int {
        state.withLock { $0.calls.values.count { !$0.context.method.isOps } }
    }

    // MARK: Frames from the client (I/O thread)

    func connection(_ connection: FrameConnection, received frame: WireFrame) -> RPCError? {
        if frame.callID == 0 {
            // Call id 0 is the connection's own: settings repeats and empty frames are no-ops,
            // but a call cannot live there.
            if frame.header != nil || frame.message != nil || frame.endStream || frame.cancel {
                return RPCError(.invalidArgument, "call id 0 is reserved for the connection")
            }
            return nil
        }
        if let header = frame.header { return open(frame, header) }
        guard let call = state.withLock({ $0.calls[frame.callID] }) else {
            return nil  // a call that ended or was refused; late frames are dropped
        }
        if frame.cancel {
            call.abandon(RPCError(.cancelled, "cancelled by the caller"))
            return nil
        }
        if frame.windowUpdateBytes > 0 { call.window?.grant(Int(frame.windowUpdateBytes)) }
        if let message = frame.message, !call.receive(message) {
            return RPCError(.resourceExhausted, "call \(frame.callID) sent beyond its flow-control window")
        }
        if frame.endStream { call.endOfRequests() }
        return nil
    }

    /// A call's opening frame: the admission decides (`Admission.decide`), and this applies
    /// its answer.
    private func open(_ frame: WireFrame, _ header: WireFrame.Header) -> RPCError? {
        let callID = frame.callID
        let route: RPCRouter.Route?
        if let last = lastRoute, last.info.fullName == header.method {
            route = last
        } else {
            route = core.router.route(named: header.method)
            if route != nil { lastRoute = route }
        }
        let serverStarted = core.started.load(ordering: .acquiring)
        let now = ContinuousClock.now
        var admitted: ServerCallIO?
        // Decided and applied under one lock, so what the decision read (the call ids in
        // flight, their number and bytes, the drain) still holds when the call joins them.
        let admission = state.withLock { state -> Admission in
            state.lastActivity = now
            let load = Admission.Load(callIDInUse: state.calls[callID] != nil, calls: state.calls.count,
                                      heldRequestBytes: state.heldRequestBytes, drain: state.drain)
            let admission = Admission.decide(frame, header: header, route: route, peer: peer, serverStarted: serverStarted,
                                             limits: core.limits, connection: load)
            if case .admit(let admit) = admission, let route {
                let call = makeCall(callID, route: route, admit, now: now)
                state.calls[callID] = call
                state.heldRequestBytes += call.requestBytes
                if let deadline = call.context.deadline { state.deadlines.insert(callID, at: deadline) }
                admitted = call
            }
            return admission
        }
        switch admission {
        case .violation(let error):
            return error
        case .refuse(let error):
            // An unknown method is counted and logged under one name, never its own.
            refuseCall(callID, method: route?.info.fullName ?? Self.unknownMethod, error)
        case .admit:
            if let call = admitted, let route { start(call, route: route, opening: frame) }
        }
        return nil
    }

    private func makeCall(_ callID: UInt64, route: RPCRouter.Route, _ admit: Admission.Admitted, now: ContinuousClock.Instant) -> ServerCallIO {
        let context = ServerContext(method: route.info, peer: peer, metadata: admit.metadata, deadline: admit.timeout.map { now + $0 },
                                    callID: callID, peerAddress: connection.stream.peerAddress,
                                    tlsVersion: connection.stream.protocolVersion, trustsClientAddress: trustsClientAddress)
        return ServerCallIO(context: context, request: admit.request, requestBytes: admit.requestBytes, owner: self,
                            windowBytes: core.limits.initialWindowBytes, peerWindowBytes: Int(peerSettings.initialWindowBytes),
                            maxFrameBytes: core.limits.maxFrameBytes)
    }

    /// Starts an admitted call's handler.
    private func start(_ call: ServerCallIO, route: RPCRouter.Route, opening frame: WireFrame) {
        let core = self.core, peer = self.peer, context = call.context
        if let deadline = context.deadline { connection.wakeUp(at: deadline) }
        core.log.trace("call started", metadata: ["method": "\(route.info.fullName)", "peer": "\(peer)", "call_id": "\(context.callID)"])

        // A request stream may begin in the opening frame.
        if route.info.kind == .clientStreaming {
            if let message = frame.message { _ = call.receive(message) }
            if frame.endStream { call.endOfRequests() }
        }

        // The handler starts at once, on this connection's I/O thread, and resumes there after
        // any suspension: read, handle, answer, with no thread hop.
        call.attach(Task.immediate(executorPreference: connection.executor) {
            await ServerContext.$current.withValue(context) {
                do {
                    try await route.run(call)
                } catch {
                    let status = RPCError.from(error)
                    if status.code == .internal, !(error is RPCError) {
                        core.log.error("handler failed", metadata: ["method": "\(route.info.fullName)", "peer": "\(peer)",
                                                                   "error_type": "\(type(of: error))"])
                    }
                    call.complete(status: status)
                }
            }
        })
    }

    /// How unknown methods are counted and logged, all under one name.
    static let unknownMethod = "<unknown>"

    /// Answers a call that is not admitted with its status, without decoding its request.
    private func refuseCall(_ callID: UInt64, method: String, _ error: RPCError) {
        var reply = WireFrame(callID: callID)
        reply.status = error
        connection.send(reply)
        core.record(method: method, peer: peer, callID: callID, code: error.code, duration: .zero, stripe: metricsStripe)
    }

    // MARK: Calls ending

    func callEnded(_ call: ServerCallIO, code: StatusCode) {
        let closeNow = state.withLock { state -> Bool in
            if state.calls.removeValue(forKey: call.context.callID) != nil { state.heldRequestBytes -= call.requestBytes }
            if call.context.deadline != nil { state.deadlines.remove(call.context.callID) }
            state.lastActivity = .now
            return state.drain.closesWhenIdle && state.calls.isEmpty
        }
        core.record(method: call.context.method.fullName, peer: peer, callID: call.context.callID,
                    org: call.context.annotatedOrg, code: code,
                    duration: call.startedAt.duration(to: .now), stripe: metricsStripe)
        if closeNow { connection.close() }
    }

    func grantWindow(callID: UInt64, bytes: Int) {
        var frame = WireFrame(callID: callID)
        frame.windowUpdateBytes = UInt32(clamping: bytes)
        connection.send(frame)
    }

    // MARK: Time (I/O thread)

    func connectionTick(_ connection: FrameConnection, now: ContinuousClock.Instant) {
        let (expired, idle, nextDeadline, tooOld) = state.withLock { state -> ([ServerCallIO], Bool, ContinuousClock.Instant?, Bool) in
            let expired = state.deadlines.popExpired(now: now).compactMap { state.calls[$0] }
            let idle = state.calls.isEmpty && state.lastActivity.duration(to: now) > core.limits.idleTimeout
            let tooOld = state.drain == .open && establishedAt.duration(to: now) > core.limits.maxConnectionAge
            return (expired, idle, state.deadlines.next(), tooOld)
        }
        // Old enough: no new calls; it closes when the calls in flight are done (the client
        // reconnects, and its certificate is checked again).
        if tooOld { drain() }
        for call in expired { call.terminate(RPCError(.deadlineExceeded, "deadline exceeded")) }
        if let nextDeadline { connection.wakeUp(at: nextDeadline) }
        if idle {
            sendGoaway()
            connection.close()
        }
    }

    // MARK: Draining and closing

    /// No new calls; close once the calls in flight are done.
    func drain() {
        let closeNow = state.withLock { state -> Bool in
            state.drain.drain()
            return state.calls.isEmpty
        }
        sendGoaway()
        if closeNow { connection.close() }
    }

    /// The server stops: no new application calls, but health (NOT_SERVING), server info and
    /// metrics are answered until `terminate` closes the connection. A connection open before
    /// the drain is told with a goaway (its client moves new calls elsewhere); one made during
    /// it is not, so the health check it was made for is answered, not sent round again.
    func drainForShutdown(announce: Bool) {
        state.withLock { $0.drain.drainForShutdown() }
        if announce { sendGoaway() }
    }

    /// Ends every call still running with `error`, then closes.
    func terminate(_ error: RPCError) {
        let calls = state.withLock { Array($0.calls.values) }
        for call in calls { call.terminate(error) }
        connection.close()
    }

    private func sendGoaway() {
        var frame = WireFrame()
        frame.goaway = true
        connection.send(frame)
    }

    func connectionClosed(_ connection: FrameConnection, error: RPCError?) {
        let calls = state.withLock { state -> [ServerCallIO] in
            defer { state.calls.removeAll() }
            return Array(state.calls.values)
        }
        for call in calls { call.abandon(RPCError(.cancelled, "connection closed")) }
        core.connectionClosed(self)
    }
}

extension MethodInfo {
    /// The services every server answers (health, server info, metrics): served while the
    /// server starts and while it drains.
    var isOps: Bool { service.hasPrefix("calltrace.ops.v1.") }
}
