import CallTraceProto
import CallTraceRPC
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SwiftProtobuf

/// `/api/v1/rpc/<service>/<Method>`: the services' user-facing methods over HTTP, in the Connect
/// protocol (`ConnectWire`), for a person holding an API token — the `calltrace` CLI's firm
/// commands, or any Connect client. Only the methods listed in services/web/relayed-methods.txt
/// are relayed (`RelayedMethod.table`, generated). Each call goes to its service under the
/// person's token with the address this gateway saw (never one the caller names), so the
/// service authorises, refuses and audits it as it does a page's; the gateway adds no rule of its own.
struct RPCRelay {
    let peers: [String: RPCClient]
    static let prefix = "\(APIv1.base)/rpc/"
    /// The largest request body, and the largest message in a request stream.
    static let maxRequestBytes = 1 << 20
    /// The longest a relayed call may take: a unary call, and a stream (a bundle, a recording).
    static let maxUnary: Duration = .seconds(120)
    static let maxStream: Duration = .seconds(600)

    func register(on router: Router<WebContext>) {
        router.post("\(Self.prefix):service/:method") { request, context in
            try await relay(request, service: try context.parameters.require("service"), method: try context.parameters.require("method"))
        }
    }

    func relay(_ request: Request, service: String, method name: String) async throws -> Response {
        let who = try APICaller.required()
        guard let method = RelayedMethod.table["\(service)/\(name)"], let peer = peers[method.peer] else {
            throw RPCError(.unimplemented, "\(service)/\(name) is not relayed here (the methods are listed in the API's openapi-rpc.json)")
        }
        if let version = request.headers[.connectProtocolVersion], version != "1" {
            throw RPCError(.invalidArgument, "\(ConnectWire.versionHeader) \(version) is not supported (1 is)")
        }
        let codec = try Codec(contentType: request.headers[.contentType], streaming: method.isStreaming)
        var options = who.options
        options.timeout = try Self.timeout(request.headers[.connectTimeoutMs], max: method.isStreaming ? Self.maxStream : Self.maxUnary)
        let body = try await Self.collect(request, upTo: Self.maxRequestBytes + 5)

        switch method.call {
        case .unary(let call):
            let answer = try await call(body, codec, peer, options)
            return Response(status: .ok, headers: [.contentType: codec.contentType, .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(data: answer)))
        case .serverStreaming(let call):
            // The request is one enveloped message.
            var reader = ConnectWire.EnvelopeReader(limit: Self.maxRequestBytes)
            reader.append(body)
            guard let (flags, message) = try? reader.next(), flags & ConnectWire.endStreamFlag == 0, reader.buffer.isEmpty else {
                throw RPCError(.invalidArgument, "a streaming call's body is one enveloped message of at most \(Self.maxRequestBytes) bytes")
            }
            let requestBody = message, callOptions = options
            let stream = try await StreamedDownload.body { write in
                do {
                    try await call(requestBody, codec, peer, callOptions) { try await write(ConnectWire.envelope($0)) }
                    try await write(ConnectWire.endOfStream(nil))
                } catch let error as RPCError {
                    try await write(ConnectWire.endOfStream(error))
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    try await write(ConnectWire.endOfStream(RPCError(.internal, "the stream failed")))
                }
            }
            return Response(status: .ok, headers: [.contentType: codec.contentType, .cacheControl: "no-store"], body: stream)
        }
    }

    /// The request body, refused past `limit` bytes.
    static func collect(_ request: Request, upTo limit: Int) async throws -> Data {
        do {
            return Data(buffer: try await request.body.collect(upTo: limit))
        } catch is NIOTooManyBytesError {
            throw RPCError(.resourceExhausted, "the request body is larger than \(limit) bytes")
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw RPCError(.resourceExhausted, "the request body is larger than \(limit) bytes")
        }
    }

    /// The caller's `Connect-Timeout-Ms`, within `max`; `max` when none is given.
    static func timeout(_ header: String?, max: Duration) throws -> Duration {
        guard let header else { return max }
        guard (1...10).contains(header.count), header.allSatisfy(\.isASCII), let milliseconds = Int64(header), milliseconds > 0 else {
            throw RPCError(.invalidArgument, "\(ConnectWire.timeoutHeader) is a positive number of milliseconds (at most 10 digits)")
        }
        return min(.milliseconds(milliseconds), max)
    }

    /// A failure of a relayed call, as Connect answers it: a unary call's HTTP status with the
    /// code and message as JSON (a streaming call failing before its stream began, too).
    static func failure(_ error: any Error) -> Response {
        let rpc: RPCError
        var status: Int?
        switch error {
        case let error as RPCError: rpc = error
        case let problem as APIProblem: rpc = RPCError(problem.status == 401 ? .unauthenticated : .invalidArgument, problem.detail)
        case let http as HTTPError where http.status.code < 500:
            // The router's: no such route, or not a POST.
            status = http.status.code
            rpc = RPCError(http.status == .notFound ? .unimplemented : .invalidArgument,
                           "a relayed method is called with POST /api/v1/rpc/<service>/<Method>")
        default: rpc = RPCError(.internal, "the call could not be relayed")
        }
        var headers: HTTPFields = [.contentType: ConnectWire.jsonType]
        if rpc.code == .unauthenticated { headers[.wwwAuthenticate] = #"Bearer realm="calltrace""# }
        if status == 405 { headers[.allow] = "POST" }
        return Response(status: .init(code: status ?? ConnectWire.httpStatus(of: rpc.code)), headers: headers,
                        body: .init(byteBuffer: ByteBuffer(data: ConnectWire.errorJSON(rpc))))
    }
}

/// How a relayed call's messages are written: JSON (the proto3 JSON mapping) or binary protobuf,
/// whole (unary) or enveloped (streaming), as its Content-Type says.
struct Codec: Sendable {
    enum Format: Sendable { case json, proto }
    let format: Format
    let streaming: Bool

    init(contentType: String?, streaming: Bool) throws {
        let type = contentType?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        switch (type, streaming) {
        case (ConnectWire.jsonType, false), (ConnectWire.streamingJSONType, true): format = .json
        case (ConnectWire.protoType, false), (ConnectWire.streamingProtoType, true): format = .proto
        default:
            let expected = streaming ? "\(ConnectWire.streamingJSONType) or \(ConnectWire.streamingProtoType)"
                                     : "\(ConnectWire.jsonType) or \(ConnectWire.protoType)"
            throw RPCError(.invalidArgument, "this method's Content-Type is \(expected)")
        }
        self.streaming = streaming
    }

    var contentType: String {
        switch (format, streaming) {
        case (.json, false): ConnectWire.jsonType
        case (.proto, false): ConnectWire.protoType
        case (.json, true): ConnectWire.streamingJSONType
        case (.proto, true): ConnectWire.streamingProtoType
        }
    }

    func decode<M: SwiftProtobuf.Message>(_ data: Data, as type: M.Type) throws -> M {
        do {
            switch format {
            case .json: return try M(jsonUTF8Data: data)
            case .proto: return try M(serializedBytes: data)
            }
        } catch {
            throw RPCError(.invalidArgument, "the body is not a \(M.protoMessageName) in \(format == .json ? "JSON (the proto3 JSON mapping)" : "binary protobuf")")
        }
    }

    func encode(_ message: some SwiftProtobuf.Message) throws -> Data {
        switch format {
        case .json: return try message.jsonUTF8Data()
        case .proto: return try message.serializedBytes()
        }
    }
}

/// One method the relay passes on: the service (peer) that serves it, and how to call it with a
/// body in either codec.
struct RelayedMethod: Sendable {
    enum Call: Sendable {
        case unary(@Sendable (Data, Codec, RPCClient, CallOptions) async throws -> Data)
        case serverStreaming(@Sendable (Data, Codec, RPCClient, CallOptions, _ emit: (Data) async throws -> Void) async throws -> Void)
    }
    let peer: String
    let call: Call
    var isStreaming: Bool { if case .serverStreaming = call { true } else { false } }

    static func unary<Request, Response>(_ method: MethodDescriptor<Request, Response>, peer: String) -> RelayedMethod {
        RelayedMethod(peer: peer, call: .unary { body, codec, client, options in
            try codec.encode(try await client.unary(method, try codec.decode(body, as: Request.self), options: options))
        })
    }

    static func serverStreaming<Request, Response>(_ method: MethodDescriptor<Request, Response>, peer: String) -> RelayedMethod {
        RelayedMethod(peer: peer, call: .serverStreaming { body, codec, client, options, emit in
            try await client.serverStreaming(method, try codec.decode(body, as: Request.self), options: options) { responses in
                for try await response in responses { try await emit(try codec.encode(response)) }
            }
        })
    }
}

extension HTTPField.Name {
    static let connectProtocolVersion = HTTPField.Name(ConnectWire.versionHeader)!
    static let connectTimeoutMs = HTTPField.Name(ConnectWire.timeoutHeader)!
}
