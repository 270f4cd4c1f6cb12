import COpenSSL
public import CallTraceProto
public import CallTraceTLS
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A deliberately low-level TLS client for tests that must misbehave: connect without a
/// certificate, offer another ALPN, or write arbitrary bytes after the handshake.
public final class RawTLSClient: @unchecked Sendable {
    public enum ALPN: Sendable { case ctrpc, none, other(String) }

    public struct Refused: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    private let ctx: OpaquePointer
    private var ssl: OpaquePointer?
    private var fd: Int32 = -1
    private var buffer: [UInt8] = []

    /// - Parameters:
    ///   - certificate: our certificate and key, or nil to present none.
    ///   - caPath: the CA we trust for the server.
    public init(certificate: TLSCredentials?, caPath: String, alpn: ALPN = .ctrpc) throws {
        ctx = SSL_CTX_new(TLS_client_method())!
        if let certificate {
            SSL_CTX_use_certificate_chain_file(ctx, certificate.certificateChainPath)
            SSL_CTX_use_PrivateKey_file(ctx, certificate.privateKeyPath, SSL_FILETYPE_PEM)
        }
        SSL_CTX_load_verify_file(ctx, caPath)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        let protocols: [UInt8]
        switch alpn {
        case .ctrpc: protocols = [7] + Array("ctrpc/1".utf8)
        case .none: protocols = []
        case .other(let name): protocols = [UInt8(name.utf8.count)] + Array(name.utf8)
        }
        if !protocols.isEmpty { SSL_CTX_set_alpn_protos(ctx, protocols, UInt32(protocols.count)) }
    }

    deinit {
        if let ssl { SSL_free(ssl) }
        if fd >= 0 { Glibc.close(fd) }
        SSL_CTX_free(ctx)
    }

    /// Opens a plain TCP connection (no TLS) and returns its descriptor; the caller closes it.
    /// - Parameter source: the loopback address it comes from (any of 127/8), if not the default.
    public static func plainTCP(port: Int, from source: String? = nil) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if let source {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(source)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else {
                close(fd)
                throw Refused(reason: "cannot bind to \(source)")
            }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw Refused(reason: "tcp connect failed")
        }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Connects, handshakes, and reads the server's first frame (its settings). Throws
    /// `Refused` with OpenSSL's reason if the server refuses us at any point of that.
    public func connect(port: Int) throws -> Calltrace_Rpc_V1_Frame {
        fd = try Self.plainTCP(port: port)
        ssl = SSL_new(ctx)
        SSL_set_fd(ssl, fd)
        if SSL_connect(ssl) != 1 { throw refused("handshake") }
        guard let settings = try readFrame() else { throw Refused(reason: "closed before settings") }
        return settings
    }

    /// How long a read waits for the server before `readFrame` throws. Default 5 s.
    public func setReceiveTimeout(_ timeout: Duration) {
        var value = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Writes raw bytes on the TLS connection.
    public func write(_ bytes: [UInt8]) throws {
        guard SSL_write(ssl, bytes, Int32(bytes.count)) == Int32(bytes.count) else { throw refused("write") }
    }

    /// Writes one frame with its length prefix.
    public func send(_ frame: Calltrace_Rpc_V1_Frame) throws {
        let body: [UInt8] = try frame.serializedBytes()
        let length = UInt32(body.count)
        try write([UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + body)
    }

    /// Sends our settings, as a well-behaved client does first.
    public func sendSettings() throws {
        var frame = Calltrace_Rpc_V1_Frame()
        frame.settings.maxFrameBytes = 4 << 20
        frame.settings.initialWindowBytes = 1 << 20
        try send(frame)
    }

    /// The next frame, or nil when the server closed the connection. A slow reader reads at
    /// most `sipBytes` at a time and sleeps `pause` before each read.
    public func readFrame(sipBytes: Int = 65536, pause: Duration = .zero) throws -> Calltrace_Rpc_V1_Frame? {
        while true {
            if buffer.count >= 4 {
                let length = Int(buffer[0]) << 24 | Int(buffer[1]) << 16 | Int(buffer[2]) << 8 | Int(buffer[3])
                if buffer.count >= 4 + length {
                    let frame = try Calltrace_Rpc_V1_Frame(serializedBytes: Array(buffer[4..<4 + length]))
                    buffer.removeFirst(4 + length)
                    return frame
                }
            }
            if pause > .zero { Thread.sleep(forTimeInterval: Double(pause.components.attoseconds) / 1e18 + Double(pause.components.seconds)) }
            var chunk = [UInt8](repeating: 0, count: sipBytes)
            let n = SSL_read(ssl, &chunk, Int32(chunk.count))
            if n <= 0 {
                let error = SSL_get_error(ssl, n), number = errno
                if error == SSL_ERROR_SYSCALL && number == EINTR { continue }
                // The socket's receive timeout (see `setReceiveTimeout`) is not a close.
                if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_SYSCALL && (number == EAGAIN || number == EWOULDBLOCK) {
                    throw Refused(reason: "read timed out")
                }
                if error == SSL_ERROR_ZERO_RETURN || buffer.isEmpty && ERR_peek_error() == 0 { return nil }
                throw refused("read")
            }
            buffer.append(contentsOf: chunk[0..<Int(n)])
        }
    }

    private func refused(_ stage: String) -> Refused {
        var reasons: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            reasons.append(ERR_reason_error_string(code).map { String(cString: $0) } ?? "error \(code)")
        }
        return Refused(reason: "\(stage): \(reasons.joined(separator: "; "))")
    }
}

extension Calltrace_Rpc_V1_Frame {
    /// The opening frame of a unary Echo call (request in the frame, end of stream), for raw clients.
    public static func echoCall(_ callID: UInt64, delayMs: UInt32 = 0, timeoutMs: UInt64 = 0, payload: String = "",
                                tag: String = "") throws -> Self {
        var frame = Self()
        frame.callID = callID
        frame.header.method = Calltrace_Testing_V1_EchoService.echo.fullName
        frame.header.timeoutMs = timeoutMs
        frame.message = try Calltrace_Testing_V1_EchoRequest.with {
            $0.delayMs = delayMs
            $0.payload = Data(payload.utf8)
            $0.tag = tag
        }.serializedBytes()
        frame.endStream = true
        return frame
    }
}
