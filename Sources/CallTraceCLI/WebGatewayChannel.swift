import CallTraceOutbound
import CallTraceProto
import CallTraceRPC
import CallTraceSync
import Foundation
import Synchronization
import SwiftProtobuf

/// The services' methods through the firm's web gateway (`<url>/api/v1/rpc/<service>/<Method>`,
/// the Connect protocol with JSON bodies), for a firm's staff: they hold an API token
/// (`ctk_…`, made in the web app under Account → API tokens) and no certificate. The gateway
/// passes the call on under the token with the address it saw, so the firm's address list,
/// roles and audit apply as for a page. HTTPS through libcurl (plain http only to this
/// machine's loopback, as `make run` serves it).
package struct WebGatewayChannel: RPCChannel {
    let base: String
    let transport: CurlHTTPS
    /// The largest message in a stream (a recording's or a bundle's chunk is far smaller).
    static let maxStreamedMessage = 16 << 20

    /// - Parameters:
    ///   - url: the web app's address, `https://calltrace.firm.example` (a path prefix is kept).
    ///   - caFile: the CA that signed its certificate, when not one the system trusts.
    package init(url: String, caFile: String?) throws {
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        guard let parsed = URL(string: base), parsed.host != nil, parsed.user == nil, parsed.query == nil, parsed.fragment == nil,
              base.hasPrefix("https://") || CurlHTTPS.isLoopbackHTTP(base) else {
            throw RPCError(.invalidArgument, "--url is the web app's https:// address (http:// only for localhost), not \(url)")
        }
        self.base = base
        transport = CurlHTTPS(caFile: caFile, maxResponseBytes: 64 << 20, allowsLoopbackHTTP: true)
    }

    package func unary<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, options: CallOptions
    ) async throws -> Response {
        let answer = try await send(method.info, body: try Self.json(request), streaming: false, options: options, sink: nil)
        guard answer.status == 200 else { throw ConnectWire.error(fromJSON: answer.body, httpStatus: answer.status) }
        do {
            return try Response(jsonUTF8Data: answer.body, options: Self.decoding)
        } catch {
            throw RPCError(.internal, "the web gateway's answer is not a \(Response.protoMessageName)")
        }
    }

    package func serverStreaming<Request, Response, Result: Sendable>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, options: CallOptions,
        handle: (ResponseStream<Response>) async throws -> Result
    ) async throws -> Result {
        let pieces = ResponsePieces()
        let body = ConnectWire.envelope(try Self.json(request))
        let transfer = Task {
            do {
                let answer = try await send(method.info, body: body, streaming: true, options: options, sink: pieces)
                pieces.finish(answer.status == 200 ? nil : ConnectWire.error(fromJSON: pieces.errorBody, httpStatus: answer.status))
            } catch {
                pieces.finish(error)
            }
        }
        defer { pieces.cancel(); transfer.cancel() }
        let messages = Messages<Response>(pieces: pieces)
        let result = try await handle(ResponseStream { try await messages.next() })
        // Read to the end-of-stream message, so a failure after the last message is not lost.
        while try await messages.next() != nil {}
        return result
    }

    package func clientStreaming<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, options: CallOptions,
        send: (RequestWriter<Request>) async throws -> Void
    ) async throws -> Response {
        throw RPCError(.unimplemented, "\(method.info.fullName) is not called through the web app (it streams requests)")
    }

    package func close() {}

    // MARK: The exchange

    static let decoding: JSONDecodingOptions = { var options = JSONDecodingOptions(); options.ignoreUnknownFields = true; return options }()

    static func json(_ message: some SwiftProtobuf.Message) throws -> Data {
        do { return try message.jsonUTF8Data() } catch { throw RPCError(.invalidArgument, "request cannot be serialised") }
    }

    private func send(_ method: MethodInfo, body: Data, streaming: Bool, options: CallOptions,
                      sink: (any HTTPSResponseSink)?) async throws -> HTTPSResponse {
        var headers = [("Content-Type", streaming ? ConnectWire.streamingJSONType : ConnectWire.jsonType),
                       (ConnectWire.versionHeader, "1"), ("Accept-Encoding", "identity")]
        if let authorization = options.metadata["authorization"] { headers.append(("Authorization", authorization)) }
        let timeout = options.timeout ?? .seconds(600)
        let milliseconds = max(1, timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        headers.append((ConnectWire.timeoutHeader, String(min(milliseconds, 9_999_999_999))))
        var request = HTTPSRequest(url: "\(base)/api/v1/rpc\(method.fullName)", headers: headers, body: body, timeout: timeout + .seconds(5))
        request.sink = sink
        do {
            return try await transport.send(request)
        } catch let error as HTTPSError {
            throw RPCError(.unavailable, "cannot reach the web app: \(error.description)")
        }
    }
}

/// The stream's messages, out of its envelopes; its end-of-stream message ends it or fails it.
private final class Messages<Response: SwiftProtobuf.Message>: @unchecked Sendable {
    private let pieces: ResponsePieces
    private let reader = Locked(ConnectWire.EnvelopeReader(limit: WebGatewayChannel.maxStreamedMessage))
    private let ended = Atomic(false)

    init(pieces: ResponsePieces) { self.pieces = pieces }

    func next() async throws -> Response? {
        while !ended.load(ordering: .acquiring) {
            if let (flags, message) = try reader.withLock({ try $0.next() }) {
                if flags & ConnectWire.endStreamFlag != 0 {
                    ended.store(true, ordering: .releasing)
                    if let error = ConnectWire.error(fromEndOfStream: message) { throw error }
                    return nil
                }
                do {
                    return try Response(jsonUTF8Data: message, options: WebGatewayChannel.decoding)
                } catch {
                    throw RPCError(.internal, "the web gateway sent a message that is not a \(Response.protoMessageName)")
                }
            }
            guard let data = try await pieces.next() else {
                ended.store(true, ordering: .releasing)
                throw RPCError(.unavailable, "the web gateway's stream ended before its end-of-stream message")
            }
            reader.withLock { $0.append(data) }
        }
        return nil
    }
}
