import COpenSSL
import CallTraceTLS
import Foundation
import Twilio

#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/1.1 request as the fake reads it.
struct HTTPRequest: Sendable {
    let method: String
    /// The path without the query.
    let path: String
    /// The query's pairs, decoded.
    let query: FormParameters
    /// Names lower-cased.
    let headers: [String: String]
    let body: Data
}

struct HTTPResponse: Sendable {
    /// A body sent in part: its first `afterBytes`, then the rest once `wait` returns.
    struct Pause: Sendable {
        let afterBytes: Int
        let wait: @Sendable () -> Void
    }

    var status: Int
    var contentType: String?
    var body: Data
    var pause: Pause?

    static func json<T: Encodable>(_ value: T, status: Int = 200) -> HTTPResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return HTTPResponse(status: status, contentType: "application/json", body: (try? encoder.encode(value)) ?? Data("{}".utf8))
    }
}

/// A small HTTPS server on loopback: TLS through the system OpenSSL with a certificate of our
/// PKI (no client certificate asked), one request per connection, each on its own thread.
/// Enough for a fake of a provider's API, not for production traffic.
final class HTTPSListener: @unchecked Sendable {
    let port: Int
    private let listener: TCPListener
    private let context: OpaquePointer
    private let handle: @Sendable (HTTPRequest) -> HTTPResponse

    init(host: String, port: Int, credentials: TLSCredentials, handle: @escaping @Sendable (HTTPRequest) -> HTTPResponse) throws {
        // A client may close before the answer is written: that must not end the process.
        signal(SIGPIPE, SIG_IGN)
        guard let context = SSL_CTX_new(TLS_server_method()) else { throw TLSError(.configuration, "cannot create a TLS context") }
        guard SSL_CTX_use_certificate_chain_file(context, credentials.certificateChainPath) == 1,
              SSL_CTX_use_PrivateKey_file(context, credentials.privateKeyPath, SSL_FILETYPE_PEM) == 1,
              SSL_CTX_check_private_key(context) == 1 else {
            SSL_CTX_free(context)
            throw TLSError(.configuration, "the fake Twilio needs a certificate and its key (\(credentials.certificateChainPath))")
        }
        do {
            listener = try TCPListener(host: host, port: port)
        } catch {
            SSL_CTX_free(context)
            throw error
        }
        self.context = context
        self.port = listener.port
        self.handle = handle
        let thread = Thread { [self] in
            while let (fd, _) = listener.accept() { Thread { self.serve(fd) }.start() }
        }
        thread.start()
    }

    deinit {
        listener.shutdown()
        SSL_CTX_free(context)
    }

    func stop() { listener.shutdown() }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard let ssl = SSL_new(context) else { return }
        defer { SSL_free(ssl) }
        SSL_set_fd(ssl, fd)
        guard SSL_accept(ssl) == 1, let request = read(ssl) else { return }
        let response = handle(request)
        let reason = response.status < 400 ? "OK" : "Error"
        var head = "HTTP/1.1 \(response.status) \(reason)\r\ncontent-length: \(response.body.count)\r\nconnection: close\r\n"
        if let type = response.contentType { head += "content-type: \(type)\r\n" }
        write(ssl, Data((head + "\r\n").utf8))
        if let pause = response.pause {
            write(ssl, Data(response.body.prefix(pause.afterBytes)))
            pause.wait()
            write(ssl, Data(response.body.dropFirst(pause.afterBytes)))
        } else {
            write(ssl, response.body)
        }
        SSL_shutdown(ssl)
    }

    /// The request, or nil when the connection ends first or the request is malformed.
    private func read(_ ssl: OpaquePointer) -> HTTPRequest? {
        var buffer = Data()
        var chunk = [UInt8](repeating: 0, count: 65536)
        func fill() -> Bool {
            let n = Int(SSL_read(ssl, &chunk, Int32(chunk.count)))
            guard n > 0 else { return false }
            buffer.append(contentsOf: chunk[..<n])
            return true
        }
        let separator = Data("\r\n\r\n".utf8)
        var headerEnd = buffer.range(of: separator)
        while headerEnd == nil {
            guard buffer.count < 64 << 10, fill() else { return nil }
            headerEnd = buffer.range(of: separator)
        }
        let lines = String(decoding: buffer[..<headerEnd!.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let requestLine = lines[0].split(separator: " ")
        guard requestLine.count >= 2 else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        let bodyStart = headerEnd!.upperBound
        while buffer.count - bodyStart < length { guard fill() else { return nil } }
        let target = requestLine[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let query = target.count > 1 ? (try? FormParameters(parsing: Data(target[1].utf8))) ?? FormParameters() : FormParameters()
        return HTTPRequest(method: String(requestLine[0]), path: String(target[0]), query: query, headers: headers,
                           body: Data(buffer[bodyStart..<bodyStart + length]))
    }

    private func write(_ ssl: OpaquePointer, _ data: Data) {
        var offset = 0
        while offset < data.count {
            let n = data[offset...].prefix(1 << 20).withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
            guard n > 0 else { return }
            offset += Int(n)
        }
    }
}
