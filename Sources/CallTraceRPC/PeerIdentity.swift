/// Who is at the other end of a connection, from the SPIFFE URI SAN of its verified certificate:
/// `spiffe://<trust-domain>/<kind>/<name>`.
public struct PeerIdentity: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// One of the four CallTrace services.
        case service
        /// A gateway client: web backend, telephony gateway, CRM integration.
        case gateway
        /// A person in operations, with an operator certificate.
        case `operator`
    }

    public let trustDomain: String
    public let kind: Kind
    public let name: String
    /// `spiffe://<trust-domain>/<kind>/<name>`, built once: handlers and log lines read it per call.
    public let uri: String

    public init(trustDomain: String, kind: Kind, name: String) {
        self.trustDomain = trustDomain
        self.kind = kind
        self.name = name
        self.uri = "spiffe://\(trustDomain)/\(kind.rawValue)/\(name)"
    }

    /// Parses `spiffe://example.test/service/media`; nil for anything else.
    public init?(uri: String) {
        guard uri.hasPrefix("spiffe://") else { return nil }
        let parts = uri.dropFirst("spiffe://".count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[2].isEmpty,
              let kind = Kind(rawValue: String(parts[1])),
              parts.allSatisfy({ $0.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E || $0 == 0x5F } })
        else { return nil }
        self.init(trustDomain: String(parts[0]), kind: kind, name: String(parts[2]))
    }

    public var description: String { uri }
}

/// Which peers may call a method, checked before its request is decoded.
public struct PeerPolicy: Sendable, Hashable {
    enum Rule: Sendable, Hashable {
        case kind(PeerIdentity.Kind)
        case exact(PeerIdentity.Kind, String)
    }

    let rules: Set<Rule>
    let allowsAll: Bool

    /// Any authenticated peer of the trust domain.
    public static let anyPeer = PeerPolicy(rules: [], allowsAll: true)
    /// Any CallTrace service.
    public static let services = PeerPolicy(rules: [.kind(.service)], allowsAll: false)
    /// Any gateway client.
    public static let gateways = PeerPolicy(rules: [.kind(.gateway)], allowsAll: false)
    /// Any operator.
    public static let operators = PeerPolicy(rules: [.kind(.operator)], allowsAll: false)

    /// Exactly the named service, e.g. `.service("transcript")`.
    public static func service(_ name: String) -> PeerPolicy { PeerPolicy(rules: [.exact(.service, name)], allowsAll: false) }
    /// Exactly the named gateway.
    public static func gateway(_ name: String) -> PeerPolicy { PeerPolicy(rules: [.exact(.gateway, name)], allowsAll: false) }

    /// Exactly the named gateways; none for an empty list.
    public static func gateways(named names: [String]) -> PeerPolicy {
        PeerPolicy(rules: Set(names.map { .exact(.gateway, $0) }), allowsAll: false)
    }

    /// Exactly the named operators; none for an empty list.
    public static func operators(named names: [String]) -> PeerPolicy {
        PeerPolicy(rules: Set(names.map { .exact(.operator, $0) }), allowsAll: false)
    }

    /// Peers allowed by either policy.
    public func union(_ other: PeerPolicy) -> PeerPolicy {
        PeerPolicy(rules: rules.union(other.rules), allowsAll: allowsAll || other.allowsAll)
    }

    public static func | (lhs: PeerPolicy, rhs: PeerPolicy) -> PeerPolicy { lhs.union(rhs) }

    public func allows(_ peer: PeerIdentity) -> Bool {
        allowsAll || rules.contains(.kind(peer.kind)) || rules.contains(.exact(peer.kind, peer.name))
    }
}
