public import CallTraceProto
import SwiftProtobuf

/// What the generated typed clients call through: a ctrpc/1 connection (`RPCClient`), or another
/// way to the same methods, such as the `calltrace` CLI's path through the web gateway's
/// `/api/v1/rpc` for a firm's staff, who hold an API token and no certificate. The calls mean
/// the same on every channel: the same messages, status codes, deadlines and metadata.
public protocol RPCChannel: Sendable {
    /// One request, one response.
    func unary<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, options: CallOptions
    ) async throws -> Response

    /// One request; `handle` reads the responses as they arrive.
    func serverStreaming<Request, Response, Result: Sendable>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, options: CallOptions,
        handle: (ResponseStream<Response>) async throws -> Result
    ) async throws -> Result

    /// `send` writes the requests, then the response is awaited.
    func clientStreaming<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, options: CallOptions,
        send: (RequestWriter<Request>) async throws -> Void
    ) async throws -> Response

    /// Ends the channel; calls in flight fail with UNAVAILABLE.
    func close()
}

extension RPCChannel {
    /// With the default options (no timeout of its own, no metadata).
    public func unary<Request, Response>(_ method: MethodDescriptor<Request, Response>, _ request: Request) async throws -> Response {
        try await unary(method, request, options: CallOptions())
    }
}
