import Foundation

/// The one error type on the wire: a canonical code, a message safe to show the caller, and
/// optional structured details.
///
/// - Important: messages travel to the peer and into logs. Never put a secret, token, phone
///   number or transcript text in one. Anything a handler throws that is neither an `RPCError`
///   nor `RPCErrorConvertible` reaches the caller as `internal` with a fixed message.
public struct RPCError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A structured detail, in google.protobuf.Any's shape.
    public struct Detail: Sendable, Hashable {
        public var typeURL: String
        public var value: Data
        public init(typeURL: String, value: Data) {
            self.typeURL = typeURL
            self.value = value
        }
    }

    public var code: StatusCode
    public var message: String
    public var details: [Detail]
    /// False for a failure that retrying cannot mend (this client refused the server's
    /// certificate or identity): idempotent calls are not retried on it. Never on the wire.
    public internal(set) var isTransient = true
    /// True when the call failed before its request left this client (no connection to be had):
    /// the server cannot have acted on it, so any call, idempotent or not, may go to another
    /// replica (`ReplicaSet`). Never on the wire.
    public internal(set) var neverSent = false

    public init(_ code: StatusCode, _ message: String, details: [Detail] = []) {
        self.code = code
        self.message = message
        self.details = details
    }

    public var description: String { "\(code): \(message)" }

    /// What the wire carries: the code, the message and the details (not the local flags).
    public static func == (a: RPCError, b: RPCError) -> Bool { a.code == b.code && a.message == b.message && a.details == b.details }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(message)
        hasher.combine(details)
    }
}

/// An error that says itself which status the caller sees: a service's domain errors, mapped
/// to status codes in one place.
public protocol RPCErrorConvertible: Error {
    var rpcError: RPCError { get }
}

extension RPCError {
    /// What the caller sees for an error that is not an `RPCError`.
    static func from(_ error: any Error) -> RPCError {
        if let error = error as? RPCError { return error }
        if let error = error as? any RPCErrorConvertible { return error.rpcError }
        if error is CancellationError { return RPCError(.cancelled, "call cancelled") }
        return RPCError(.internal, "internal error")
    }
}
