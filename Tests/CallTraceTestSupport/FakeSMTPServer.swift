import COpenSSL
public import CallTraceTLS
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A local mail server speaking the SMTP that submission servers speak (RFC 5321, 4954), for
/// tests of the real SMTP adapter: TLS from the first byte (`smtps://`, with a certificate of
/// the test PKI), or plaintext that never offers STARTTLS (which the adapter must refuse, before
/// it sends any credential). It keeps every command and every message it accepted.
public final class FakeSMTPServer: @unchecked Sendable {
    public enum Mode: Sendable { case implicitTLS, plaintextWithoutSTARTTLS }

    public struct Message: Sendable {
        public let mailFrom: String
        public let recipients: [String]
        /// Headers and body as sent, CRLF line ends, dot-stuffing removed.
        public let data: String
        /// `user\0password` from AUTH PLAIN, if the client logged in.
        public let login: String?
    }

    public let port: Int
    private let listener: TCPListener
    private let context: OpaquePointer?
    private let lock = NSLock()
    private var accepted: [Message] = []
    private var seen: [String] = []
    private var busy = false

    public init(mode: Mode, credentials: TLSCredentials? = nil) throws {
        // It writes to sockets a client may already have closed (an answer the client cut off):
        // SIGPIPE is ignored, as in every service, instead of ending the test process.
        signal(SIGPIPE, SIG_IGN)
        listener = try TCPListener(host: "127.0.0.1", port: 0)
        port = listener.port
        if mode == .implicitTLS {
            guard let credentials, let context = SSL_CTX_new(TLS_server_method()),
                  SSL_CTX_use_certificate_chain_file(context, credentials.certificateChainPath) == 1,
                  SSL_CTX_use_PrivateKey_file(context, credentials.privateKeyPath, SSL_FILETYPE_PEM) == 1 else {
                throw TLSError(.configuration, "the fake mail server needs a certificate and key")
            }
            self.context = context
        } else {
            context = nil
        }
        let thread = Thread { [self] in
            while let (fd, _) = listener.accept() {
                let session = Thread { self.serve(fd) }
                session.start()
            }
        }
        thread.start()
    }

    deinit {
        listener.shutdown()
        if let context { SSL_CTX_free(context) }
    }

    public func stop() { listener.shutdown() }

    /// While true, every session is turned away at the greeting (421: a mail server that is away).
    public var refuseConnections: Bool {
        get { lock.withLock { busy } }
        set { lock.withLock { busy = newValue } }
    }

    /// The messages accepted so far.
    public var messages: [Message] { lock.withLock { accepted } }
    /// Every command line received so far (AUTH lines included, as sent).
    public var commands: [String] { lock.withLock { seen } }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var tv = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var ssl: OpaquePointer?
        if let context {
            ssl = SSL_new(context)
            SSL_set_fd(ssl, fd)
            guard SSL_accept(ssl) == 1 else { SSL_free(ssl); return }
        }
        defer { if let ssl { SSL_shutdown(ssl); SSL_free(ssl) } }
        var pending = [UInt8]()
        func send(_ line: String) {
            let bytes = Array((line + "\r\n").utf8)
            if let ssl { _ = SSL_write(ssl, bytes, Int32(bytes.count)) } else { _ = write(fd, bytes, bytes.count) }
        }
        func readLine() -> String? {
            while true {
                if let end = pending.firstIndex(of: 0x0A) {
                    let line = String(decoding: pending[..<end], as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
                    pending.removeSubrange(...end)
                    return line
                }
                var chunk = [UInt8](repeating: 0, count: 4096)
                let n = ssl.map { Int(SSL_read($0, &chunk, 4096)) } ?? read(fd, &chunk, 4096)
                guard n > 0 else { return nil }
                pending += chunk[..<n]
            }
        }
        if refuseConnections {
            send("421 4.3.2 service not available, try later")
            return
        }
        send("220 fake.smtp.test ESMTP")
        var from = "", recipients: [String] = [], login: String?
        while let line = readLine() {
            lock.withLock { seen.append(line) }
            let verb = line.split(separator: " ").first.map { $0.uppercased() } ?? ""
            switch verb {
            case "EHLO":
                send("250-fake.smtp.test")
                send("250-AUTH PLAIN")
                send("250 8BITMIME")
            case "HELO": send("250 fake.smtp.test")
            case "AUTH":
                let parts = line.split(separator: " ")
                var response = parts.count > 2 ? String(parts[2]) : nil
                if response == nil {
                    send("334 ")
                    response = readLine()
                }
                login = response.flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0.dropFirst(), as: UTF8.self) }
                send("235 2.7.0 authenticated")
            case "MAIL":
                from = Self.address(in: line)
                recipients = []
                send("250 2.1.0 ok")
            case "RCPT":
                recipients.append(Self.address(in: line))
                send("250 2.1.5 ok")
            case "DATA":
                send("354 go ahead")
                var lines: [String] = []
                while let dataLine = readLine(), dataLine != "." {
                    lines.append(dataLine.hasPrefix("..") ? String(dataLine.dropFirst()) : dataLine)
                }
                let message = Message(mailFrom: from, recipients: recipients, data: lines.joined(separator: "\r\n"), login: login)
                lock.withLock { accepted.append(message) }
                send("250 2.0.0 queued")
            case "RSET", "NOOP": send("250 ok")
            case "QUIT":
                send("221 bye")
                return
            default: send("502 5.5.1 not implemented")
            }
        }
    }

    private static func address(in line: String) -> String {
        guard let open = line.firstIndex(of: "<"), let close = line.firstIndex(of: ">"), open < close else { return "" }
        return String(line[line.index(after: open)..<close])
    }
}
