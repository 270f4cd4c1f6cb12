import CallTraceProto
import Foundation

/// What the server does with a call's opening frame, decided before its request is decoded
/// (docs/PROTOCOL.md §4, "Admission").
///
/// A pure function of plain values, so each rule is tested on its own and their order is
/// read in one place. `ServerConnection.open` reads its own state, asks, and applies the
/// answer (the call table, the status frame, the metrics) under the same lock.
enum Admission: Equatable {
    /// Serve the call.
    case admit(Admitted)
    /// Answer the call with this status, without decoding its request; the connection goes on.
    case refuse(RPCError)
    /// A protocol violation: the connection tells the peer (a goaway with this status) and closes.
    case violation(RPCError)

    /// What an admitted call starts with.
    struct Admitted: Equatable {
        /// The header's metadata, validated.
        var metadata: Metadata
        /// The one request of a unary or server-streaming call; nil when a request stream follows.
        var request: Data?
        /// What the call holds against `Limits.maxRequestBytesPerConnection`: its request, or
        /// the window its request stream may fill.
        var requestBytes: Int
        /// The caller's timeout, capped at `Limits.maxCallTimeout`; nil when it gave none.
        var timeout: Duration?
    }

    /// The connection's side of the decision, read under its lock.
    struct Load: Equatable {
        /// Whether a call in flight has the opening frame's call id.
        var callIDInUse = false
        /// Calls in flight.
        var calls = 0
        /// Request bytes the calls in flight hold (see `Admitted.requestBytes`).
        var heldRequestBytes = 0
        var drain = DrainState.open
    }

    /// Decides a call's opening `frame` (whose header is `header`).
    ///
    /// - Parameters:
    ///   - route: the method table's entry for the header's method; nil when it has none
    ///     (`RPCRouter.route(named:)`).
    ///   - serverStarted: false while the server starts (migrates): only the ops services are served.
    static func decide(_ frame: WireFrame, header: WireFrame.Header, route: RPCRouter.Route?, peer: PeerIdentity,
                       serverStarted: Bool, limits: RPCServer.Limits, connection: Load) -> Admission {
        // Reusing an id in flight is a violation whatever else is wrong with the call: a status
        // for it would reach the caller as the answer of the call that holds the id.
        if connection.callIDInUse { return .violation(RPCError(.invalidArgument, "call id \(frame.callID) is already in use")) }
        // A name the router does not know is never stored, logged or echoed: any peer could
        // otherwise fill metrics and logs with names of its choosing.
        // While the server starts, its application's methods are not in the table yet: a name
        // it does not know may be one it is about to serve, and a caller asks again after
        // UNAVAILABLE, where UNIMPLEMENTED would tell it to give up.
        guard let route else {
            return .refuse(serverStarted ? RPCError(.unimplemented, "unknown method") : RPCError(.unavailable, "server is starting"))
        }
        let info = route.info
        guard route.policy.allows(peer) else {
            return .refuse(RPCError(.permissionDenied, "\(peer) may not call \(header.method)"))
        }
        guard serverStarted || info.isOps else { return .refuse(RPCError(.unavailable, "server is starting")) }
        guard info.kind != .bidirectionalStreaming else {
            return .refuse(RPCError(.unimplemented, "bidirectional streaming is not supported"))
        }
        let request: Data?
        if info.kind == .clientStreaming {
            request = nil
        } else {
            guard let message = frame.message, frame.endStream else {
                return .refuse(RPCError(.invalidArgument, "\(header.method) takes one request, in the opening frame with end_stream"))
            }
            request = message
        }
        let metadata: Metadata
        do {
            metadata = try Metadata(validating: header.metadata)
        } catch {
            return .refuse(RPCError.from(error))
        }
        guard connection.drain.admits(ops: info.isOps) else { return .refuse(RPCError(.unavailable, "server is shutting down")) }
        guard connection.calls < limits.maxConcurrentCallsPerConnection else {
            return .refuse(RPCError(.resourceExhausted, "too many concurrent calls on this connection (limit \(limits.maxConcurrentCallsPerConnection))"))
        }
        let requestBytes = request?.count ?? limits.initialWindowBytes
        guard connection.heldRequestBytes + requestBytes <= limits.maxRequestBytesPerConnection else {
            return .refuse(RPCError(.resourceExhausted, "the calls in flight on this connection hold too many request bytes (limit \(limits.maxRequestBytesPerConnection))"))
        }
        let timeout = header.timeoutMs > 0 ? min(.milliseconds(Int64(clamping: header.timeoutMs)), limits.maxCallTimeout) : nil
        return .admit(Admitted(metadata: metadata, request: request, requestBytes: requestBytes, timeout: timeout))
    }
}

/// Whether a server connection takes new calls. One value where there were two flags
/// (`draining`, `serverDraining`), so the combination that meant nothing — stopping with the
/// server, yet not draining — cannot be written; its transitions are the two below.
enum DrainState: Equatable {
    /// New calls are admitted.
    case open
    /// The connection reached its maximum age: no new calls (the peer had a goaway), and it
    /// closes once the calls in flight are done, so the client reconnects and its certificate
    /// is checked again.
    case draining
    /// The server stops: only the ops services are admitted (health answers NOT_SERVING),
    /// until the server closes the connection itself (`ServerConnection.terminate`).
    case serverDraining

    /// Whether a new call is admitted; `ops`: the call is to the ops services.
    func admits(ops: Bool) -> Bool {
        switch self {
        case .open: true
        case .draining: false
        case .serverDraining: ops
        }
    }

    /// Whether the connection closes once its last call ends (a server drain closes it instead).
    var closesWhenIdle: Bool { self == .draining }

    /// The connection stops taking calls (its maximum age); a server drain stays one.
    mutating func drain() {
        if self == .open { self = .draining }
    }

    /// The server stops, whatever the connection was doing.
    mutating func drainForShutdown() { self = .serverDraining }
}
