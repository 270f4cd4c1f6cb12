import CCurl
import CallTraceSync
import Foundation

/// A request body produced while it is sent (audio streamed from media to a provider, never
/// whole in memory). The transfer's own thread calls `read`, which blocks until bytes are there
/// and returns 0 at the end; a throw aborts the transfer. `transferEnded` is called once the
/// transfer reads no more, whether it finished or failed, so the producer can stop.
public protocol HTTPSBodySource: AnyObject, Sendable {
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    func transferEnded()
}

/// What a request sends: bytes at hand, or `length` bytes from a source.
public enum HTTPSBody: Sendable {
    case bytes(Data)
    case stream(length: Int, any HTTPSBodySource)

    var length: Int {
        switch self {
        case .bytes(let data): data.count
        case .stream(let length, _): length
        }
    }
}

/// Where an answer's body goes as it arrives, instead of being gathered (a download, a stream of
/// messages). Called on the transfer's own thread, in order; it may block to hold the transfer
/// back until the reader catches up, and a throw aborts the transfer with that error.
public protocol HTTPSResponseSink: AnyObject, Sendable {
    func received(_ data: Data, status: Int) throws
}

/// One HTTPS request to a sub-processor's API.
public struct HTTPSRequest: Sendable {
    public var url: String
    public var method = "POST"
    /// Name and value; never logged (they carry API keys).
    public var headers: [(String, String)]
    public var body: HTTPSBody
    /// The whole exchange, connection included.
    public var timeout: Duration
    /// Takes the answer's body as it arrives (the answer's `body` is then empty); nil gathers it.
    public var sink: (any HTTPSResponseSink)?
    /// Signs the request with AWS Signature Version 4 (an object store); nil sends it unsigned.
    public var awsSigV4: AWSSigV4?

    public init(url: String, headers: [(String, String)], body: Data, timeout: Duration = .seconds(120)) {
        self.init(url: url, headers: headers, body: .bytes(body), timeout: timeout)
    }

    public init(url: String, headers: [(String, String)], body: HTTPSBody, timeout: Duration = .seconds(120)) {
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

/// What libcurl signs a request with (`CURLOPT_AWS_SIGV4`): it computes the signature over the
/// method, the URL's path and query as sent, every header given and the `x-amz-date` header if
/// one is (else the current time), and adds `Authorization`. The secret goes to libcurl alone.
public struct AWSSigV4: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var region: String
    /// `s3`, `iam`, …
    public var service: String
    public var accessKeyID: String
    var secretKey: String

    public init(region: String, service: String, accessKeyID: String, secretKey: String) {
        self.region = region
        self.service = service
        self.accessKeyID = accessKeyID
        self.secretKey = secretKey
    }

    /// Without the secret, whatever prints or dumps it (a request in a failed test's message).
    public var description: String { "SigV4 \(accessKeyID) \(region)/\(service)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["region": region, "service": service, "accessKeyID": accessKeyID]) }
}

public struct HTTPSResponse: Sendable {
    public let status: Int
    /// Header names lower-cased.
    public let headers: [String: String]
    public let body: Data

    public init(status: Int, headers: [String: String], body: Data) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// A transfer that did not get an answer (no connection, TLS refused, timed out, answer too
/// large). Its text names the host and curl's reason; never a header or a body.
public struct HTTPSError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// How adapters reach HTTPS APIs; tests may give adapters another (the real one is `CurlHTTPS`).
public protocol HTTPSTransport: Sendable {
    func send(_ request: HTTPSRequest) async throws -> HTTPSResponse
}

/// HTTPS through Debian's libcurl on the system OpenSSL: https only, TLS 1.2 or later, the
/// server's certificate and name verified against `caFile` (nil: the system's CAs), answers of
/// at most `maxResponseBytes`. Transfers run on their own threads, never on an I/O thread.
public struct CurlHTTPS: HTTPSTransport {
    public let caFile: String?
    public let maxResponseBytes: Int
    /// Whether plain `http://` is used for a loopback host (`localhost`, 127.0.0.1, ::1), where
    /// nothing leaves the machine: the CLI reaching a web gateway that `make run` started.
    public let allowsLoopbackHTTP: Bool

    public init(caFile: String? = nil, maxResponseBytes: Int = 32 << 20, allowsLoopbackHTTP: Bool = false) {
        self.caFile = caFile
        self.maxResponseBytes = maxResponseBytes
        self.allowsLoopbackHTTP = allowsLoopbackHTTP
    }

    /// True for an `http://` URL to this machine's loopback.
    public static func isLoopbackHTTP(_ url: String) -> Bool {
        guard url.hasPrefix("http://"), let host = URL(string: url)?.host?.lowercased() else { return false }
        return host == "localhost" || host == "127.0.0.1" || host == "::1" || host == "[::1]"
    }

    public func send(_ request: HTTPSRequest) async throws -> HTTPSResponse {
        try await handOff { finish in
            let thread = Thread {
                finish(Result { try perform(request) })
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Blocking.
    public func perform(_ request: HTTPSRequest) throws -> HTTPSResponse {
        // However it ends, a streamed body's producer learns that nothing more is read.
        defer { if case .stream(_, let source) = request.body { source.transferEnded() } }
        if let failure = Libcurl.loadFailure { throw HTTPSError(failure) }
        let host = URL(string: request.url).flatMap(\.host) ?? "the server"
        let plain = allowsLoopbackHTTP && Self.isLoopbackHTTP(request.url)
        guard request.url.hasPrefix("https://") || plain else { throw HTTPSError("\(host): only https:// URLs are used") }
        guard let handle = ct_curl_easy_init() else { throw HTTPSError("cannot create an HTTPS transfer") }
        defer { ct_curl_easy_cleanup(handle) }
        var list: UnsafeMutablePointer<curl_slist>?
        // No "Expect: 100-continue" round trip before large bodies; except when signing, where
        // libcurl 7.88 would sign the emptied header it then does not send (the store refuses
        // the signature), so a large signed body waits for the store's 100 (S3 answers it).
        let expect = request.awsSigV4 == nil ? ["Expect:"] : []
        for line in request.headers.map({ "\($0.0): \($0.1)" }) + expect { list = ct_curl_slist_append(list, line) }
        defer { ct_curl_slist_free_all(list) }
        let exchange = Exchange(body: request.body, limit: maxResponseBytes, sink: request.sink, handle: handle)
        var errorText = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let outcome: CURLcode = errorText.withUnsafeMutableBufferPointer { errorBuffer in
            withExtendedLifetime(exchange) {
                let context = Unmanaged.passUnretained(exchange).toOpaque()
                var steps: [CURLcode] = [
                    ct_curl_set_string(handle, CURLOPT_URL, request.url),
                    ct_curl_set_string(handle, CURLOPT_PROTOCOLS_STR, plain ? "http" : "https"),
                    ct_curl_set_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, "https"),
                    ct_curl_set_string(handle, CURLOPT_CUSTOMREQUEST, request.method),
                    ct_curl_set_long(handle, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2),
                    ct_curl_set_long(handle, CURLOPT_SSL_VERIFYPEER, 1),
                    ct_curl_set_long(handle, CURLOPT_SSL_VERIFYHOST, 2),
                    ct_curl_set_long(handle, CURLOPT_NOSIGNAL, 1),
                    ct_curl_set_long(handle, CURLOPT_TIMEOUT_MS, Int(request.timeout.components.seconds * 1000)),
                    ct_curl_set_list(handle, CURLOPT_HTTPHEADER, list),
                    ct_curl_set_callback(handle, CURLOPT_WRITEFUNCTION, writeBody),
                    ct_curl_set_pointer(handle, CURLOPT_WRITEDATA, context),
                    ct_curl_set_callback(handle, CURLOPT_HEADERFUNCTION, writeHeader),
                    ct_curl_set_pointer(handle, CURLOPT_HEADERDATA, context),
                    ct_curl_set_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer.baseAddress),
                ]
                // A GET or DELETE without a body is sent as one: no Content-Length or form
                // Content-Type that libcurl adds to a body (a signed request's store counts them).
                if request.body.length > 0 || !["GET", "DELETE"].contains(request.method) {
                    steps += [ct_curl_set_long(handle, CURLOPT_POST, 1),
                              ct_curl_set_long(handle, CURLOPT_POSTFIELDSIZE_LARGE, request.body.length),
                              ct_curl_set_callback(handle, CURLOPT_READFUNCTION, readBody),
                              ct_curl_set_pointer(handle, CURLOPT_READDATA, context)]
                }
                if let caFile { steps.append(ct_curl_set_string(handle, CURLOPT_CAINFO, caFile)) }
                if let signing = request.awsSigV4 {
                    steps += [ct_curl_set_string(handle, CURLOPT_AWS_SIGV4, "aws:amz:\(signing.region):\(signing.service)"),
                              ct_curl_set_string(handle, CURLOPT_USERNAME, signing.accessKeyID),
                              ct_curl_set_string(handle, CURLOPT_PASSWORD, signing.secretKey)]
                }
                // Plain http stays on this machine: never through a proxy the environment names.
                if plain { steps.append(ct_curl_set_string(handle, CURLOPT_NOPROXY, "*")) }
                if let failed = steps.first(where: { $0 != CURLE_OK }) { return failed }
                return ct_curl_easy_perform(handle)
            }
        }
        guard outcome == CURLE_OK else {
            if let failure = exchange.sourceFailure ?? exchange.sinkFailure { throw failure }
            if exchange.tooLarge { throw HTTPSError("\(host) answered with more than \(maxResponseBytes >> 20) MiB") }
            throw HTTPSError("\(host): \(String(cString: ct_curl_easy_strerror(outcome)))")
        }
        var status = 0
        _ = ct_curl_get_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return HTTPSResponse(status: status, headers: exchange.headers, body: exchange.received)
    }
}

/// The body being sent and the answer being received.
private final class Exchange {
    let body: HTTPSBody
    var offset = 0
    /// Why the body's source stopped the transfer, reported instead of curl's "aborted".
    var sourceFailure: (any Error)?
    let limit: Int
    var received = Data()
    var headers: [String: String] = [:]
    var tooLarge = false
    let sink: (any HTTPSResponseSink)?
    /// Why the sink stopped the transfer.
    var sinkFailure: (any Error)?
    let handle: UnsafeMutableRawPointer

    init(body: HTTPSBody, limit: Int, sink: (any HTTPSResponseSink)?, handle: UnsafeMutableRawPointer) {
        self.body = body
        self.limit = limit
        self.sink = sink
        self.handle = handle
    }
}

private func readBody(_ buffer: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let buffer, let context else { return 0 }
    let exchange = Unmanaged<Exchange>.fromOpaque(context).takeUnretainedValue()
    switch exchange.body {
    case .bytes(let body):
        let n = min(size * count, body.count - exchange.offset)
        guard n > 0 else { return 0 }
        body.withUnsafeBytes { source in
            UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress! + exchange.offset, byteCount: n)
        }
        exchange.offset += n
        return n
    case .stream(_, let source):
        do {
            return try source.read(into: UnsafeMutableRawBufferPointer(start: buffer, count: size * count))
        } catch {
            exchange.sourceFailure = error
            return Int(CURL_READFUNC_ABORT)
        }
    }
}

private func writeBody(_ buffer: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let buffer, let context else { return 0 }
    let exchange = Unmanaged<Exchange>.fromOpaque(context).takeUnretainedValue()
    let n = size * count
    if let sink = exchange.sink {
        var status = 0
        _ = ct_curl_get_long(exchange.handle, CURLINFO_RESPONSE_CODE, &status)
        do {
            try sink.received(Data(bytes: buffer, count: n), status: status)
            return n
        } catch {
            exchange.sinkFailure = error
            return 0  // curl stops the transfer
        }
    }
    guard exchange.received.count + n <= exchange.limit else {
        exchange.tooLarge = true
        return 0  // curl stops the transfer
    }
    exchange.received.append(UnsafeRawPointer(buffer).assumingMemoryBound(to: UInt8.self), count: n)
    return n
}

private func writeHeader(_ buffer: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let buffer, let context else { return 0 }
    let exchange = Unmanaged<Exchange>.fromOpaque(context).takeUnretainedValue()
    let line = String(decoding: UnsafeRawBufferPointer(start: buffer, count: size * count), as: UTF8.self)
    if line.hasPrefix("HTTP/") { exchange.headers = [:] }  // a new response (after a 100 or a redirect)
    if let colon = line.firstIndex(of: ":") {
        exchange.headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
    }
    return size * count
}
