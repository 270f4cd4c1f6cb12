public import CallTraceRPC

/// What a service's rules refuse, in the domain's words. Rules and repositories throw these,
/// never status codes; `rpcError` below is the one place each kind becomes the status the
/// caller sees.
///
/// - Important: the message reaches the caller and the log: never a secret, token, phone
///   number or transcript text.
public struct DomainError: Error, Sendable, Hashable, CustomStringConvertible, RPCErrorConvertible {
    public enum Kind: Sendable, Hashable {
        /// The request itself is wrong: a malformed or out-of-bounds field.
        case invalid
        /// No such thing in the caller's organisation (or it was deleted).
        case notFound
        /// It exists already.
        case alreadyExists
        /// The request is sound but the thing is not in a state that allows it now.
        case wrongState
        /// The caller may not do this (beyond its role: the route checks roles).
        case notAllowed
        /// The credentials do not hold.
        case unauthenticated
        /// A limit was reached: try later.
        case tooMany
        /// A position or range beyond the end.
        case outOfRange
        /// Stored data failed its integrity check.
        case corrupt
        /// Another service this answer depends on cannot give its part now: try again.
        case unavailable
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public static func invalid(_ message: String) -> DomainError { DomainError(.invalid, message) }
    public static func notFound(_ message: String) -> DomainError { DomainError(.notFound, message) }
    public static func alreadyExists(_ message: String) -> DomainError { DomainError(.alreadyExists, message) }
    public static func wrongState(_ message: String) -> DomainError { DomainError(.wrongState, message) }
    public static func notAllowed(_ message: String) -> DomainError { DomainError(.notAllowed, message) }
    public static func unauthenticated(_ message: String) -> DomainError { DomainError(.unauthenticated, message) }
    public static func tooMany(_ message: String) -> DomainError { DomainError(.tooMany, message) }
    public static func outOfRange(_ message: String) -> DomainError { DomainError(.outOfRange, message) }
    public static func corrupt(_ message: String) -> DomainError { DomainError(.corrupt, message) }
    public static func unavailable(_ message: String) -> DomainError { DomainError(.unavailable, message) }

    /// The status code of each kind: the one mapping between the domains and the wire.
    public var rpcError: RPCError {
        let code: StatusCode = switch kind {
        case .invalid: .invalidArgument
        case .notFound: .notFound
        case .alreadyExists: .alreadyExists
        case .wrongState: .failedPrecondition
        case .notAllowed: .permissionDenied
        case .unauthenticated: .unauthenticated
        case .tooMany: .resourceExhausted
        case .outOfRange: .outOfRange
        case .corrupt: .dataLoss
        case .unavailable: .unavailable
        }
        return RPCError(code, message)
    }

    public var description: String { rpcError.description }
}
