import CallTraceProto
import CallTraceRPC
import CallTraceSync
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Synchronization
import CallTraceKeys
import NIOCore
import SwiftProtobuf

/// `/api/v1/rpc/<service>/<Method>`: the services' user-facing methods over HTTP, in the Connect
/// protocol (`ConnectWire`), for a person holding an API token — the `calltrace` CLI's firm
/// commands, or any Connect client. Only the methods listed in services/web/relayed-methods.txt
/// are relayed (`RelayedMethod.table`, generated). Each call goes to its service under the
/// person's token with the address this gateway saw (never one the caller names), so the
/// service authorises, refuses and audits it as it does a page's; the gateway adds no rule of its own.
struct RPCRelay {
    let peers: [String: any RPCChannel]
    let logger: Logger
    /// Streams held open at once: a reader that stops reading holds one until its deadline.
    let streams = StreamBudget(perToken: 4, total: 64)
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
        guard let method = RelayedMethod.table["\(service)/\(name)"] else {
            throw RPCError(.unimplemented, "\(service)/\(name) is not relayed here (the methods are listed in the API's openapi-rpc.json)")
        }
        guard let peer = peers[method.peer] else { throw RPCError(.unavailable, "no \(method.peer) service is configured") }
        if let version = request.headers[.connectProtocolVersion], version != "1" {
            throw RPCError(.invalidArgument, "\(ConnectWire.versionHeader) \(version) is not supported (1 is)")
        }
        for encoding in [request.headers[.contentEncoding], request.headers[.connectContentEncoding]].compactMap({ $0 })
        where encoding.lowercased() != "identity" {
            throw RPCError(.unimplemented, "compressed bodies are not taken: send them uncompressed")
        }
        let codec = try Codec(contentType: request.headers[.contentType], streaming: method.isStreaming)
        var options = who.options
        options.timeout = try Self.timeout(request.headers[.connectTimeoutMs], max: method.isStreaming ? Self.maxStream : Self.maxUnary)
        let body = try await Self.collect(request, upTo: Self.maxRequestBytes + (method.isStreaming ? 5 : 0))

        switch method.call {
        case .unary(let call):
            let answer = try await call(body, codec, peer, options)
            return Response(status: .ok, headers: [.contentType: codec.contentType, .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(data: answer)))
        case .serverStreaming(let call):
            // The request is one enveloped message.
            var reader = ConnectWire.EnvelopeReader(limit: Self.maxRequestBytes)
            reader.append(body)
            // Flags 0: neither compressed (1) nor the end of a stream (2).
            guard let (flags, message) = try? reader.next(), flags == 0, reader.isEmpty else {
                throw RPCError(.invalidArgument, "a streaming call's body is one uncompressed enveloped message of at most \(Self.maxRequestBytes) bytes")
            }
            let ticket = try streams.take(for: who.token)
            let requestBody = message, callOptions = options, logger = logger, route = "\(service)/\(name)"
            let stream = try await StreamedDownload.body { write in
                defer { ticket.release() }
                do {
                    try await call(requestBody, codec, peer, callOptions) { try await write(ConnectWire.envelope($0)) }
                    try await write(ConnectWire.endOfStream(nil))
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    try await write(ConnectWire.endOfStream(Self.outward(error, route: route, logger: logger)))
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
        guard (1...10).contains(header.count), header.allSatisfy({ $0.isASCII && $0.isNumber }), let milliseconds = Int64(header), milliseconds > 0 else {
            throw RPCError(.invalidArgument, "\(ConnectWire.timeoutHeader) is a positive number of milliseconds (at most 10 digits)")
        }
        return min(.milliseconds(milliseconds), max)
    }

    /// What the caller is told of a failure: the service's refusal as it is; but for what went
    /// wrong inside (a service unreachable, an internal error), a plain sentence and a reference
    /// that the log carries beside the cause — never a host, a port or a TLS detail.
    static func outward(_ error: any Error, route: String, logger: Logger) -> RPCError {
        let rpc = error as? RPCError ?? RPCError(.internal, "\(type(of: error))")
        switch rpc.code {
        case .internal, .unknown, .dataLoss, .unavailable, .deadlineExceeded:
            let reference = (try? SecretBytes.random(6).map { String(format: "%02x", $0) }.joined()) ?? "unknown"
            logger.error("relayed call failed", metadata: ["reference": "\(reference)", "method": "\(route)", "error": "\(rpc.description)"])
            let sentence = rpc.code == .unavailable || rpc.code == .deadlineExceeded
                ? "part of CallTrace is not answering just now; try again in a minute" : "something went wrong on our side"
            return RPCError(rpc.code, "\(sentence) (reference \(reference))")
        default:
            return rpc
        }
    }

    /// A failure of a relayed call, as Connect answers it: a unary call's HTTP status with the
    /// code and message as JSON (a streaming call failing before its stream began, too).
    static func failure(_ error: any Error, route: String, logger: Logger) -> Response {
        let rpc: RPCError
        var status: Int?
        switch error {
        case let error as UnsupportedMediaType:
            status = 415
            rpc = RPCError(.invalidArgument, error.message)
        case is RPCError: rpc = outward(error, route: route, logger: logger)
        case let problem as APIProblem: rpc = RPCError(problem.status == 401 ? .unauthenticated : .invalidArgument, problem.detail)
        case let http as HTTPError where http.status.code < 500:
            // The router's: no such route, or not a POST.
            status = http.status.code
            rpc = RPCError(http.status == .notFound ? .unimplemented : .invalidArgument,
                           "a relayed method is called with POST /api/v1/rpc/<service>/<Method>")
        default: rpc = outward(error, route: route, logger: logger)
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
            throw UnsupportedMediaType(message: "this method's Content-Type is \(expected)")
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
        case unary(@Sendable (Data, Codec, any RPCChannel, CallOptions) async throws -> Data)
        case serverStreaming(@Sendable (Data, Codec, any RPCChannel, CallOptions, _ emit: (Data) async throws -> Void) async throws -> Void)
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

/// A body of a type the method does not take: 415.
struct UnsupportedMediaType: Error {
    let message: String
}

/// How many relayed streams may be open at once, per API token and in all: a reader that stops
/// reading holds its stream (and a call on the service's connection) until its deadline, so
/// one token cannot take the connection's every call from the firm's pages and everyone else.
final class StreamBudget: Sendable {
    private let counts = Locked<(byToken: [String: Int], total: Int)>(([:], 0))
    let perToken: Int
    let total: Int

    init(perToken: Int, total: Int) {
        self.perToken = perToken
        self.total = total
    }

    /// A place for one stream, given back by `release` (once), or RESOURCE_EXHAUSTED.
    func take(for token: String) throws -> Ticket {
        let taken = counts.withLock { counts -> Bool in
            guard counts.total < total, counts.byToken[token, default: 0] < perToken else { return false }
            counts.total += 1
            counts.byToken[token, default: 0] += 1
            return true
        }
        guard taken else { throw RPCError(.resourceExhausted, "too many streams are open; finish one first") }
        return Ticket(budget: self, token: token)
    }

    fileprivate func release(_ token: String) {
        counts.withLock { counts in
            counts.total -= 1
            let left = counts.byToken[token, default: 1] - 1
            counts.byToken[token] = left > 0 ? left : nil
        }
    }

    final class Ticket: Sendable {
        private let budget: StreamBudget
        private let token: String
        private let released = Atomic(false)
        fileprivate init(budget: StreamBudget, token: String) {
            self.budget = budget
            self.token = token
        }
        func release() {
            if !released.exchange(true, ordering: .acquiringAndReleasing) { budget.release(token) }
        }
        deinit { release() }
    }
}

extension HTTPField.Name {
    static let connectContentEncoding = HTTPField.Name("Connect-Content-Encoding")!
    static let connectProtocolVersion = HTTPField.Name(ConnectWire.versionHeader)!
    static let connectTimeoutMs = HTTPField.Name(ConnectWire.timeoutHeader)!
}
