/// gRPC's 17 canonical status codes, with the same numbers on the wire.
///
/// Retry meaning, for clients: only `unavailable` is retried automatically, and only for
/// methods declared idempotent. `deadlineExceeded` and `resourceExhausted` may succeed later
/// but are the caller's decision; the rest will fail again unchanged.
public enum StatusCode: UInt32, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Success.
    case ok = 0
    /// The caller cancelled the call.
    case cancelled = 1
    /// An error with no better code; not retried.
    case unknown = 2
    /// The request is malformed or a value is out of range; fix the request.
    case invalidArgument = 3
    /// The deadline passed before the call completed. The work may or may not have happened.
    case deadlineExceeded = 4
    /// The addressed entity (organisation, call, recording…) does not exist or is not visible.
    case notFound = 5
    /// The entity being created exists already.
    case alreadyExists = 6
    /// The caller is known but may not do this.
    case permissionDenied = 7
    /// A limit was hit (size, rate, quota, concurrent calls); may succeed after backing off.
    case resourceExhausted = 8
    /// The system is not in the state the operation needs (e.g. a retention job already running).
    case failedPrecondition = 9
    /// A concurrency conflict; retry the whole read-modify-write at a higher level.
    case aborted = 10
    /// A value is outside the valid range (e.g. reading past the end of a recording).
    case outOfRange = 11
    /// The method or feature is not implemented by this server.
    case unimplemented = 12
    /// An invariant broke inside the server. Message carries no detail; logs do (without secrets).
    case `internal` = 13
    /// The service cannot be reached or is draining; safe to retry for idempotent methods.
    case unavailable = 14
    /// Data was lost or corrupted (e.g. a sealed field failed authentication).
    case dataLoss = 15
    /// The caller presented no valid credentials (missing, expired or revoked token).
    case unauthenticated = 16

    /// Codes outside 0...16 from a peer are read as `unknown`.
    public init(wireValue: UInt32) {
        self = StatusCode(rawValue: wireValue) ?? .unknown
    }

    public var description: String {
        switch self {
        case .ok: "OK"
        case .cancelled: "CANCELLED"
        case .unknown: "UNKNOWN"
        case .invalidArgument: "INVALID_ARGUMENT"
        case .deadlineExceeded: "DEADLINE_EXCEEDED"
        case .notFound: "NOT_FOUND"
        case .alreadyExists: "ALREADY_EXISTS"
        case .permissionDenied: "PERMISSION_DENIED"
        case .resourceExhausted: "RESOURCE_EXHAUSTED"
        case .failedPrecondition: "FAILED_PRECONDITION"
        case .aborted: "ABORTED"
        case .outOfRange: "OUT_OF_RANGE"
        case .unimplemented: "UNIMPLEMENTED"
        case .internal: "INTERNAL"
        case .unavailable: "UNAVAILABLE"
        case .dataLoss: "DATA_LOSS"
        case .unauthenticated: "UNAUTHENTICATED"
        }
    }
}
