import COpenSSL
public import CallTraceTLS
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A local HTTPS server for tests of the sub-processor adapters (Deepgram, Anthropic): TLS with
/// a certificate of the test PKI, HTTP/1.1, one request per connection. `respond` answers each
/// request as the provider's documented API would; every request is kept for assertions.
public final class FakeHTTPSServer: @unchecked Sendable {
    public struct Request: Sendable {
        public let method: String
        /// Path and query, as sent.
        public let target: String
        /// Names lower-cased.
        public let headers: [String: String]
        public let body: Data

        /// The query's parameters (percent-decoded).
        public var query: [String: String] {
            guard let query = target.split(separator: "?", maxSplits: 1).dropFirst().first else { return [:] }
            var pairs: [String: String] = [:]
            for pair in query.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
                pairs[parts[0]] = parts.count > 1 ? parts[1] : ""
            }
            return pairs
        }

        public var path: String { String(target.split(separator: "?").first ?? "") }
    }

    public struct Response: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: Data

        public init(status: Int = 200, headers: [String: String] = ["content-type": "application/json"], body: Data) {
            self.status = status
            self.headers = headers
            self.body = body
        }

        public static func json(_ text: String, status: Int = 200, headers: [String: String] = [:]) -> Response {
            Response(status: status, headers: headers.merging(["content-type": "application/json"]) { a, _ in a }, body: Data(text.utf8))
        }
    }

    public let port: Int
    public var url: String { "https://localhost:\(port)" }
    private let listener: TCPListener
    private let context: OpaquePointer
    private let lock = NSLock()
    private var received: [Request] = []
    private var responder: @Sendable (Request) -> Response
    /// Answered as soon as a request's headers are in, its body never read (then the connection closes).
    private var earlyAnswer: Response?

    /// `credentials`: a certificate for `localhost` (see `TemporaryPKI.serverCertificate`).
    public init(credentials: TLSCredentials, respond: @escaping @Sendable (Request) -> Response) throws {
        // It writes to sockets a client may already have closed (an answer the client cut off):
        // SIGPIPE is ignored, as in every service, instead of ending the test process.
        signal(SIGPIPE, SIG_IGN)
        listener = try TCPListener(host: "127.0.0.1", port: 0)
        port = listener.port
        guard let context = SSL_CTX_new(TLS_server_method()),
              SSL_CTX_use_certificate_chain_file(context, credentials.certificateChainPath) == 1,
              SSL_CTX_use_PrivateKey_file(context, credentials.privateKeyPath, SSL_FILETYPE_PEM) == 1 else {
            throw TLSError(.configuration, "the fake HTTPS server needs a certificate and key")
        }
        self.context = context
        responder = respond
        let thread = Thread { [self] in
            while let (fd, _) = listener.accept() {
                Thread { self.serve(fd) }.start()
            }
        }
        thread.start()
    }

    deinit {
        listener.shutdown()
        SSL_CTX_free(context)
    }

    public func stop() { listener.shutdown() }

    /// The requests received so far.
    public var requests: [Request] { lock.withLock { received } }

    /// From now on answers `response` before reading any body, as a server refusing an upload does.
    public func answerBeforeReadingBodies(_ response: Response?) {
        lock.withLock { earlyAnswer = response }
    }

    /// Answers from now on with `respond`.
    public func respond(with respond: @escaping @Sendable (Request) -> Response) {
        lock.withLock { responder = respond }
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var tv = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard let ssl = SSL_new(context) else { return }
        defer { SSL_free(ssl) }
        SSL_set_fd(ssl, fd)
        guard SSL_accept(ssl) == 1 else { return }
        var buffer = [UInt8]()
        func fill() -> Bool {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = Int(SSL_read(ssl, &chunk, Int32(chunk.count)))
            guard n > 0 else { return false }
            buffer += chunk[..<n]
            return true
        }
        let separator: [UInt8] = [13, 10, 13, 10]
        var headerEnd: Int?
        while headerEnd == nil {
            if let found = (0..<max(0, buffer.count - 3)).first(where: { Array(buffer[$0..<$0 + 4]) == separator }) {
                headerEnd = found
            } else if !fill() { return }
        }
        let head = String(decoding: buffer[..<headerEnd!], as: UTF8.self).components(separatedBy: "\r\n")
        let requestLine = head[0].split(separator: " ")
        guard requestLine.count >= 2 else { return }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        let bodyStart = headerEnd! + 4
        let early = lock.withLock { earlyAnswer }
        if early == nil {
            while buffer.count < bodyStart + length { if !fill() { return } }
        }
        let request = Request(method: String(requestLine[0]), target: String(requestLine[1]), headers: headers,
                              body: early == nil ? Data(buffer[bodyStart..<bodyStart + length]) : Data())
        let respond = lock.withLock {
            received.append(request)
            return responder
        }
        let response = early ?? respond(request)
        var text = "HTTP/1.1 \(response.status) \(response.status < 400 ? "OK" : "Error")\r\n"
        for (name, value) in response.headers { text += "\(name): \(value)\r\n" }
        text += "content-length: \(response.body.count)\r\nconnection: close\r\n\r\n"
        let bytes = Array(text.utf8) + Array(response.body)
        _ = bytes.withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32(bytes.count)) }
        SSL_shutdown(ssl)
    }
}
