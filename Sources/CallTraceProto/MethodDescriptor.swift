public import SwiftProtobuf

/// How many messages flow each way in a call.
public enum MethodKind: String, Sendable, Hashable {
    /// One request, one response.
    case unary
    /// A stream of requests, one response.
    case clientStreaming
    /// One request, a stream of responses.
    case serverStreaming
    /// Streams both ways (declared for completeness; ctrpc/1 servers refuse it).
    case bidirectionalStreaming
}

/// What the runtime needs to know about a method, without its message types.
public struct MethodInfo: Sendable, Hashable {
    /// The fully qualified service name, e.g. `calltrace.ops.v1.HealthService`.
    public let service: String
    /// The method's own name, e.g. `Check`.
    public let name: String
    public let kind: MethodKind
    /// True for methods declared `NO_SIDE_EFFECTS` or `IDEMPOTENT`: the client may retry them.
    public let isIdempotent: Bool

    /// The wire name, `/calltrace.ops.v1.HealthService/Check` (built once: it is on every call's path).
    public let fullName: String

    public init(service: String, name: String, kind: MethodKind, isIdempotent: Bool) {
        self.service = service
        self.name = name
        self.kind = kind
        self.isIdempotent = isIdempotent
        self.fullName = "/\(service)/\(name)"
    }
}

/// A method with its request and response types. Generated from proto/ into `Methods.swift`.
public struct MethodDescriptor<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>: Sendable {
    public let info: MethodInfo

    public init(service: String, name: String, kind: MethodKind, isIdempotent: Bool) {
        self.info = MethodInfo(service: service, name: name, kind: kind, isIdempotent: isIdempotent)
    }

    public var fullName: String { info.fullName }
}
