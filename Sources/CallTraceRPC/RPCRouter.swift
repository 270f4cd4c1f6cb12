public import CallTraceProto
import Foundation
public import SwiftProtobuf

/// A set of handlers a server offers. Each CallTrace service implements one.
public protocol RPCService: Sendable {
    /// Adds this service's methods, each with the peers allowed to call it.
    func register(with router: inout RPCRouter)
}

/// The method table of a server: full method name → handler and allowed peers.
public struct RPCRouter: Sendable {
    struct Route: Sendable {
        let info: MethodInfo
        let policy: PeerPolicy
        let run: @Sendable (ServerCallIO) async throws -> Void
    }

    private(set) var routes: [String: Route] = [:]

    public init() {}

    /// Longer method names are not looked up: a peer's name of any length would be hashed.
    static let maxMethodNameBytes = 256

    /// The route for a method's wire name; nil for one it does not know, and for any name over
    /// `maxMethodNameBytes`.
    func route(named method: String) -> Route? {
        method.utf8.count <= Self.maxMethodNameBytes ? routes[method] : nil
    }

    /// The fully qualified proto services with at least one registered method.
    public var serviceNames: Set<String> { Set(routes.values.map(\.info.service)) }

    /// Registers a unary method.
    public mutating func unary<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, allow policy: PeerPolicy,
        _ handler: @escaping @Sendable (Request, ServerContext) async throws -> Response
    ) {
        precondition(method.info.kind == .unary, "\(method.fullName) is not unary")
        add(method.info, policy) { io in
            let request: Request = try io.decode(io.singleRequest)
            let response = try await handler(request, io.context)
            io.finish(response: try io.encode(response))
        }
    }

    /// Registers a server-streaming method: one request, any number of responses.
    public mutating func serverStreaming<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, allow policy: PeerPolicy,
        _ handler: @escaping @Sendable (Request, ResponseWriter<Response>, ServerContext) async throws -> Void
    ) {
        precondition(method.info.kind == .serverStreaming, "\(method.fullName) is not server-streaming")
        add(method.info, policy) { io in
            let request: Request = try io.decode(io.singleRequest)
            try await handler(request, ResponseWriter(io: io), io.context)
            io.finish(response: nil)
        }
    }

    /// Registers a client-streaming method: any number of requests, one response.
    public mutating func clientStreaming<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, allow policy: PeerPolicy,
        _ handler: @escaping @Sendable (RequestStream<Request>, ServerContext) async throws -> Response
    ) {
        precondition(method.info.kind == .clientStreaming, "\(method.fullName) is not client-streaming")
        add(method.info, policy) { io in
            let response = try await handler(RequestStream(io: io), io.context)
            io.finish(response: try io.encode(response))
        }
    }

    private mutating func add(_ info: MethodInfo, _ policy: PeerPolicy,
                              _ run: @escaping @Sendable (ServerCallIO) async throws -> Void) {
        precondition(routes[info.fullName] == nil, "\(info.fullName) registered twice")
        routes[info.fullName] = Route(info: info, policy: policy, run: run)
    }
}

/// The requests of a client-streaming call, decoded as they are read.
public struct RequestStream<Request: SwiftProtobuf.Message>: AsyncSequence, Sendable {
    let io: ServerCallIO

    public struct AsyncIterator: AsyncIteratorProtocol {
        let io: ServerCallIO
        public mutating func next() async throws -> Request? {
            guard let data = try await io.requests.next() else { return nil }
            return try io.decode(data)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(io: io) }
}

/// Sends the responses of a server-streaming call, waiting when the client's window is full.
public struct ResponseWriter<Response: SwiftProtobuf.Message>: Sendable {
    let io: ServerCallIO

    public func send(_ response: Response) async throws {
        try await io.send(try io.encode(response))
    }
}
