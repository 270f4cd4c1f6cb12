import CallTraceProto
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
        var draining = false
        /// Draining because the server stops: the ops services (health answering NOT_SERVING,
        /// server info, metrics) are still served until the server closes the connection.
        var serverDraining = false
        var lastActivity = ContinuousClock.now
        /// Request bytes the calls in flight hold or may buffer (see `Limits.maxRequestBytesPerConnection`).
        var heldRequestBytes = 0
    }
    private let state = Mutex(State())

    /// Whether this peer's `x-client-address` is believed (a trusted gateway).
    private let trustsClientAddress: Bool
    /// When the connection was established (for `Limits.maxConnectionAge`).
    private let establishedAt = ContinuousClock.now
    /// The call metrics' table this connection's calls are counted in.
    private let metricsStripe: Int

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

    private func open(_ frame: WireFrame, _ header: WireFrame.Header) -> RPCError? {
        let core = self.core, peer = self.peer
        let callID = frame.callID
        /// Answers the call with `error`, unless its id is in flight: reusing one is a protocol
        /// violation, and the connection closes.
        func refuse(_ error: RPCError, known: Bool = true) -> RPCError? {
            let inUse = state.withLock { state -> Bool in
                state.lastActivity = .now
                return state.calls[callID] != nil
            }
            if inUse { return Self.callIDInUse(callID) }
            refuseCall(callID, method: known ? header.method : Self.unknownMethod, error)
            return nil
        }

        // A name the router does not know is never stored, logged or echoed: any peer could
        // otherwise fill metrics and logs with names of its choosing.
        guard header.method.utf8.count <= Self.maxMethodNameBytes, let route = core.router.routes[header.method] else {
            return refuse(RPCError(.unimplemented, "unknown method"), known: false)
        }
        guard route.policy.allows(peer) else {
            return refuse(RPCError(.permissionDenied, "\(peer) may not call \(header.method)"))
        }
        guard core.started.load(ordering: .acquiring) || route.info.isOps else {
            return refuse(RPCError(.unavailable, "server is starting"))
        }
        guard route.info.kind != .bidirectionalStreaming else {
            return refuse(RPCError(.unimplemented, "bidirectional streaming is not supported"))
        }
        let request: Data?
        if route.info.kind == .clientStreaming {
            request = nil
        } else {
            guard let message = frame.message, frame.endStream else {
                return refuse(RPCError(.invalidArgument, "\(header.method) takes one request, in the opening frame with end_stream"))
            }
            request = message
        }
        let metadata: Metadata
        do {
            metadata = try Metadata(validating: header.metadata)
        } catch {
            return refuse(RPCError.from(error))
        }
        let now = ContinuousClock.now
        let deadline = header.timeoutMs > 0 ? now + min(.milliseconds(Int64(clamping: header.timeoutMs)), core.limits.maxCallTimeout) : nil
        let context = ServerContext(method: route.info, peer: peer, metadata: metadata, deadline: deadline, callID: callID,
                                    peerAddress: connection.stream.peerAddress, tlsVersion: connection.stream.protocolVersion,
                                    trustsClientAddress: trustsClientAddress)
        let call = ServerCallIO(context: context, request: request, owner: self, windowBytes: core.limits.initialWindowBytes,
                                peerWindowBytes: Int(peerSettings.initialWindowBytes), maxFrameBytes: core.limits.maxFrameBytes)
        enum Admission { case admitted, refused(RPCError), violation(RPCError) }
        let admission = state.withLock { state -> Admission in
            state.lastActivity = now
            if state.calls[callID] != nil { return .violation(Self.callIDInUse(callID)) }
            if state.draining && !(state.serverDraining && route.info.isOps) {
                return .refused(RPCError(.unavailable, "server is shutting down"))
            }
            if state.calls.count >= core.limits.maxConcurrentCallsPerConnection {
                return .refused(RPCError(.resourceExhausted, "too many concurrent calls on this connection (limit \(core.limits.maxConcurrentCallsPerConnection))"))
            }
            if state.heldRequestBytes + call.requestBytes > core.limits.maxRequestBytesPerConnection {
                return .refused(RPCError(.resourceExhausted, "the calls in flight on this connection hold too many request bytes (limit \(core.limits.maxRequestBytesPerConnection))"))
            }
            state.heldRequestBytes += call.requestBytes
            state.calls[callID] = call
            if let deadline { state.deadlines.insert(callID, at: deadline) }
            return .admitted
        }
        switch admission {
        case .admitted: break
        case .refused(let error): return refuse(error)
        case .violation(let error): return error
        }
        if let deadline { connection.wakeUp(at: deadline) }
        core.log.trace("call started", metadata: ["method": "\(header.method)", "peer": "\(peer)", "call_id": "\(callID)"])

        if request == nil {
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
        return nil
    }

    /// How unknown methods are counted and logged, all under one name.
    static let unknownMethod = "<unknown>"
    /// Longer method names are not looked up.
    static let maxMethodNameBytes = 256

    private static func callIDInUse(_ callID: UInt64) -> RPCError {
        RPCError(.invalidArgument, "call id \(callID) is already in use")
    }

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
            state.deadlines.remove(call.context.callID)
            state.lastActivity = .now
            return state.draining && !state.serverDraining && state.calls.isEmpty
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
            let tooOld = !state.draining && establishedAt.duration(to: now) > core.limits.maxConnectionAge
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
            state.draining = true
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
        state.withLock { state in
            state.draining = true
            state.serverDraining = true
        }
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
