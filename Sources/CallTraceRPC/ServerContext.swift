public import CallTraceProto

/// What a handler knows about its call: who is calling, with which metadata, until when.
public struct ServerContext: Sendable {
    public let method: MethodInfo
    /// The caller's verified identity.
    public let peer: PeerIdentity
    public let metadata: Metadata
    /// When the caller stops waiting; nil if it gave no timeout. Nested calls made from the
    /// handler inherit it (see `RPCClient`).
    public let deadline: ContinuousClock.Instant?
    public let callID: UInt64
    /// The caller's TCP address, `host:port`.
    public let peerAddress: String
    /// The negotiated TLS version, e.g. `TLSv1.3`.
    public let tlsVersion: String

    /// Time left until the deadline (negative once passed); nil without a deadline.
    public var timeRemaining: Duration? {
        deadline.map { ContinuousClock.now.duration(to: $0) }
    }

    /// The context of the call the current task serves, if any.
    @TaskLocal public static var current: ServerContext?
}
