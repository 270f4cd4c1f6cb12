public import CallTraceProto
import CallTraceSync

/// What a handler knows about its call: who is calling, with which metadata, until when.
/// (A class: it travels with the call and in a task-local, so it is shared, not copied.)
public final class ServerContext: Sendable {
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
    /// The organisation id for this call's log line; see `annotate(org:)`.
    private let org = Locked<String?>(nil)
    /// Whether this peer may name the end user's address (see `clientAddress`).
    private let trustsClientAddress: Bool

    init(method: MethodInfo, peer: PeerIdentity, metadata: Metadata, deadline: ContinuousClock.Instant?, callID: UInt64,
         peerAddress: String, tlsVersion: String, trustsClientAddress: Bool) {
        self.trustsClientAddress = trustsClientAddress
        self.method = method
        self.peer = peer
        self.metadata = metadata
        self.deadline = deadline
        self.callID = callID
        self.peerAddress = peerAddress
        self.tlsVersion = tlsVersion
    }

    /// Names the organisation this call acts on, for the call's log line and metrics labels.
    /// Ids only: never a phone number, a name, a token or any content.
    public func annotate(org id: String) { org.withLock { $0 = id } }

    /// The organisation a handler named with `annotate(org:)`, if any.
    var annotatedOrg: String? { org.withLock { $0 } }

    /// The metadata key in which a gateway names the end user's network address.
    public static let clientAddressKey = "x-client-address"

    /// What a gateway names there when it acts for nobody at an address (the web gateway's
    /// webhook deliveries): said outright, never inferred from a missing address, so a gateway
    /// a service does not trust for addresses (or an address that got lost) fails closed.
    public static let actingForNobody = "nobody"

    /// The end user's address as a gateway reported it; nil unless the caller is one of the
    /// gateways the server trusts for it (`RPCServer.Configuration.clientAddressGateways`, by
    /// default only `web`), so no other peer — a telephony gateway, a CRM integration, a
    /// service — can spoof it.
    public var clientAddress: String? {
        trustsClientAddress ? metadata[Self.clientAddressKey] : nil
    }

    /// Time left until the deadline (negative once passed); nil without a deadline.
    public var timeRemaining: Duration? {
        deadline.map { ContinuousClock.now.duration(to: $0) }
    }

    /// The context of the call the current task serves, if any.
    @TaskLocal public static var current: ServerContext?
}
