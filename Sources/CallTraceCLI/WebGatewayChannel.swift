import CallTraceOutbound
import CallTraceProto
import CallTraceRPC
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
        let pieces = Pieces()
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

/// The answer's bytes, from the transfer's thread to one reader: the transfer waits while more
/// than `capacity` bytes are unread, so a slow reader (a disk) holds back the download; a
/// reader that stops (cancelled, or done early) cancels, which ends the transfer at its next bytes.
private final class Pieces: HTTPSResponseSink, @unchecked Sendable {
    private struct State {
        var chunks: [Data] = []
        var queued = 0
        var ended = false
        var failure: (any Error)?
        var cancelled = false
        var waiter: CheckedContinuation<Data?, any Error>?
        var producerWaiting = false
        var errorBody = Data()
    }
    private let state = Mutex(State())
    private let room = DispatchSemaphore(value: 0)
    let capacity = 1 << 20

    /// A failed answer's body (its error), kept whole rather than streamed.
    var errorBody: Data { state.withLock { $0.errorBody } }

    /// On the transfer's thread.
    func received(_ data: Data, status: Int) throws {
        if status != 200 {
            state.withLock { if $0.errorBody.count < 64 << 10 { $0.errorBody.append(data) } }
            return
        }
        while true {
            enum Next { case handed(CheckedContinuation<Data?, any Error>), queued, full, cancelled }
            let next = state.withLock { state -> Next in
                if state.cancelled { return .cancelled }
                if let waiter = state.waiter {
                    state.waiter = nil
                    return .handed(waiter)
                }
                if state.queued >= capacity {
                    state.producerWaiting = true
                    return .full
                }
                state.chunks.append(data)
                state.queued += data.count
                return .queued
            }
            switch next {
            case .handed(let waiter): waiter.resume(returning: data); return
            case .queued: return
            case .cancelled: throw CancellationError()
            case .full: room.wait()  // until the reader takes a piece, or cancels
            }
        }
    }

    func finish(_ failure: (any Error)?) {
        let waiter = state.withLock { state -> CheckedContinuation<Data?, any Error>? in
            state.ended = true
            state.failure = failure
            defer { state.waiter = nil }
            return state.waiter
        }
        if let failure { waiter?.resume(throwing: failure) } else { waiter?.resume(returning: nil) }
    }

    /// The reader stops: the transfer ends at its next bytes, a waiting reader gets CancellationError.
    func cancel() {
        let (waiter, wake) = state.withLock { state -> (CheckedContinuation<Data?, any Error>?, Bool) in
            state.cancelled = true
            defer { state.waiter = nil; state.producerWaiting = false }
            return (state.waiter, state.producerWaiting)
        }
        if wake { room.signal() }
        waiter?.resume(throwing: CancellationError())
    }

    /// The next bytes; nil at the end. One reader at a time.
    func next() async throws -> Data? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                enum Now { case chunk(Data, wake: Bool), end, failed(any Error), wait }
                let now = state.withLock { state -> Now in
                    if !state.chunks.isEmpty {
                        let chunk = state.chunks.removeFirst()
                        state.queued -= chunk.count
                        let wake = state.producerWaiting
                        state.producerWaiting = false
                        return .chunk(chunk, wake: wake)
                    }
                    if state.cancelled { return .failed(CancellationError()) }
                    if state.ended { return state.failure.map(Now.failed) ?? .end }
                    if state.waiter != nil { return .failed(RPCError(.internal, "a response stream is read by one reader at a time")) }
                    state.waiter = continuation
                    return .wait
                }
                switch now {
                case .chunk(let data, let wake):
                    if wake { room.signal() }
                    continuation.resume(returning: data)
                case .end: continuation.resume(returning: nil)
                case .failed(let error): continuation.resume(throwing: error)
                case .wait: break
                }
            }
        } onCancel: {
            cancel()
        }
    }
}

/// The stream's messages, out of its envelopes; its end-of-stream message ends it or fails it.
private final class Messages<Response: SwiftProtobuf.Message>: @unchecked Sendable {
    private let pieces: Pieces
    private let reader = Mutex(ConnectWire.EnvelopeReader(limit: WebGatewayChannel.maxStreamedMessage))
    private let ended = Atomic(false)

    init(pieces: Pieces) { self.pieces = pieces }

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
