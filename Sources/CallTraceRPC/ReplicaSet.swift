public import CallTraceProto
import CallTraceSync
import SwiftProtobuf

/// Several replicas of one service, as one channel: each call goes to the next replica in turn,
/// so calls spread across them; a replica that cannot be reached is passed over for the next,
/// so calls go on while one is down, and it is tried last for `probeAfter` (then in its turn
/// again: one that came back gets its share).
///
/// A call that never left this client moves on (`RPCError.neverSent`: no connection could be
/// had), and so does an idempotent unary call that found its replica gone (UNAVAILABLE: the
/// connection dropped under it); any other failure is the replica's answer and stays, as with
/// one address. Replicas before the last are asked with `failFast` (one connection attempt, no
/// back-off waited out) and a share of the time left to connect in (a host gone silent does not
/// hold the call to its deadline); the last one as the caller asked. The caller's timeout runs
/// once, over all the replicas tried.
public final class ReplicaSet: RPCChannel {
    public let replicas: [RPCClient]
    private struct State {
        var next = 0
        /// When each replica last could not be reached (nil: it answered since).
        var unreachableSince: [ContinuousClock.Instant?]
    }
    private let state: Locked<State>
    /// How long a replica that could not be reached is tried after the others.
    public let probeAfter: Duration

    /// - Precondition: at least one replica.
    public init(_ replicas: [RPCClient], probeAfter: Duration = .seconds(5)) {
        precondition(!replicas.isEmpty, "a replica set needs a replica")
        self.replicas = replicas
        self.probeAfter = probeAfter
        state = Locked(State(unreachableSince: Array(repeating: nil, count: replicas.count)))
    }

    /// This call's order: from the next in turn, those last unreachable after the rest.
    private func order() -> [Int] {
        let now = ContinuousClock.now
        return state.withLock { state in
            let start = state.next
            state.next = (state.next + 1) % replicas.count
            let turn = (0..<replicas.count).map { (start + $0) % replicas.count }
            let since = state.unreachableSince, probeAfter = self.probeAfter
            let passedOver = { (index: Int) in since[index].map { $0.duration(to: now) < probeAfter } ?? false }
            return turn.filter { !passedOver($0) } + turn.filter(passedOver)
        }
    }

    private func mark(_ index: Int, reachable: Bool) {
        state.withLock { state in
            state.unreachableSince[index] = reachable ? nil : .now
        }
    }

    /// The most a replica but the last waits for a connection.
    static let connectShare = Duration.seconds(2)

    /// Runs `call` on each replica in this call's order until one takes it.
    private func first<T>(_ options: CallOptions, repeatable: Bool, _ call: (RPCClient, CallOptions) async throws -> T) async throws -> T {
        let order = order()
        let deadline = options.timeout.map { ContinuousClock.now + $0 }
        for (position, index) in order.enumerated() {
            let isLast = position == order.count - 1
            var attempt = options
            let remaining = deadline.map { ContinuousClock.now.duration(to: $0) }
            if let remaining {
                guard remaining > .zero else { throw RPCError(.deadlineExceeded, "deadline exceeded before a replica answered") }
                attempt.timeout = remaining
            }
            if !isLast {
                attempt.failFast = true
                attempt.connectWithin = min(Self.connectShare, (remaining ?? Self.connectShare) / (order.count - position))
            }
            do {
                let result = try await call(replicas[index], attempt)
                mark(index, reachable: true)
                return result
            } catch let error as RPCError where error.neverSent || (repeatable && error.code == .unavailable && error.isTransient) {
                mark(index, reachable: false)
                if isLast { throw error }
            } catch let error as RPCError where error.code == .deadlineExceeded || error.code == .cancelled {
                throw error  // the caller's limits ran out: the replica said nothing either way
            } catch let error as RPCError {
                mark(index, reachable: true)  // it answered, if only to refuse
                throw error
            }
        }
        throw RPCError(.unavailable, "no replica to call")
    }

    public func unary<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, options: CallOptions
    ) async throws -> Response {
        try await first(options, repeatable: method.info.isIdempotent) { client, options in try await client.unary(method, request, options: options) }
    }

    public func serverStreaming<Request, Response, Result: Sendable>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, options: CallOptions,
        handle: (ResponseStream<Response>) async throws -> Result
    ) async throws -> Result {
        // `handle` runs only once a replica took the call: a call that never left has not begun it.
        try await first(options, repeatable: false) { client, options in
            try await client.serverStreaming(method, request, options: options, handle: handle)
        }
    }

    public func clientStreaming<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, options: CallOptions,
        send: (RequestWriter<Request>) async throws -> Void
    ) async throws -> Response {
        try await first(options, repeatable: false) { client, options in try await client.clientStreaming(method, options: options, send: send) }
    }

    public func close() {
        for replica in replicas { replica.close() }
    }
}
