import COpenSSL
import CCallTraceShims
import CallTraceSync
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One established, mutually authenticated TLS connection over a non-blocking TCP socket.
///
/// The `SSL` object is guarded by a lock, so one thread may read while others write; OpenSSL
/// forbids concurrent use of one `SSL`, not use from several threads in turn. The socket is
/// non-blocking: `read` and `write` never wait, and callers wait for readiness with `poll`
/// on `fileDescriptor`.
public final class TLSStream: @unchecked Sendable {
    public let fileDescriptor: Int32
    private let ssl: OpaquePointer
    private let sslLock = Locked<Void>(())

    /// The peer's SPIFFE id, taken from its verified certificate.
    public let peerIdentity: String
    /// The negotiated protocol version, e.g. `TLSv1.3`.
    public let protocolVersion: String
    /// The peer's address as `host:port`.
    public let peerAddress: String

    public enum ReadResult: Sendable, Equatable {
        /// This many bytes were read.
        case bytes(Int)
        /// Nothing to read now; poll for `POLLIN`.
        case wouldBlock
        /// The peer closed the connection cleanly.
        case closed
    }

    public enum WriteResult: Sendable, Equatable {
        /// This many bytes (possibly fewer than offered) were written.
        case wrote(Int)
        /// Nothing could be written now; poll for `POLLOUT` (or `POLLIN`) and retry with the same bytes.
        case wouldBlock
    }

    private init(fd: Int32, ssl: OpaquePointer, peerIdentity: String, peerAddress: String) {
        self.fileDescriptor = fd
        self.ssl = ssl
        self.peerIdentity = peerIdentity
        self.peerAddress = peerAddress
        self.protocolVersion = String(cString: SSL_get_version(ssl))
    }

    deinit {
        SSL_free(ssl)
        Glibc.close(fileDescriptor)
    }

    // MARK: Establishing

    /// Connects to `host:port` and completes the handshake within `timeout`.
    ///
    /// Blocks the calling thread: call it from a dedicated thread, never the cooperative pool.
    /// - Throws: `TLSError(.socket)` if TCP fails, `TLSError(.handshake)` if TLS fails,
    ///   the server's certificate is refused, or ALPN `ctrpc/1` was not negotiated.
    public static func connect(host: String, port: Int, context: TLSContext, timeout: Duration) throws -> TLSStream {
        let deadline = ContinuousClock.now + timeout
        let fd = try Socket.connect(host: host, port: port, deadline: deadline)
        return try handshake(fd: fd, context: context, peerAddress: "\(host):\(port)", deadline: deadline)
    }

    /// Completes the server side of the handshake on an accepted socket within `timeout`.
    /// Takes ownership of `fd` (closes it on failure).
    ///
    /// Blocks the calling thread: call it from a dedicated thread.
    public static func accept(fd: Int32, peerAddress: String, context: TLSContext, timeout: Duration) throws -> TLSStream {
        try Socket.prepare(fd)
        return try handshake(fd: fd, context: context, peerAddress: peerAddress, deadline: ContinuousClock.now + timeout)
    }

    private static func handshake(fd: Int32, context: TLSContext, peerAddress: String,
                                  deadline: ContinuousClock.Instant) throws -> TLSStream {
        guard let ssl = SSL_new(context.raw) else {
            Glibc.close(fd)
            throw TLSError.openSSL(.handshake, "cannot create a TLS session")
        }
        var owned = false
        defer {
            if !owned {
                SSL_free(ssl)
                Glibc.close(fd)
            }
        }
        SSL_set_fd(ssl, fd)
        while true {
            let rc = context.role == .server ? SSL_accept(ssl) : SSL_connect(ssl)
            if rc == 1 { break }
            let error = SSL_get_error(ssl, rc)
            let events: Int16
            switch error {
            case SSL_ERROR_WANT_READ: events = Int16(POLLIN)
            case SSL_ERROR_WANT_WRITE: events = Int16(POLLOUT)
            default:
                let verify = SSL_get_verify_result(ssl)
                if verify != X509_V_OK {
                    _ = drainOpenSSLErrors()
                    throw TLSError(.peerRefused, "TLS handshake with \(peerAddress) failed: peer certificate refused: \(String(cString: X509_verify_cert_error_string(verify)))")
                }
                throw TLSError.openSSL(.handshake, "TLS handshake with \(peerAddress) failed")
            }
            guard Socket.wait(fd, events: events, until: deadline) else {
                throw TLSError(.handshake, "TLS handshake with \(peerAddress) timed out")
            }
        }
        guard SSL_get_verify_result(ssl) == X509_V_OK, let peer = SSL_get1_peer_certificate(ssl) else {
            throw TLSError(.handshake, "TLS handshake with \(peerAddress) failed: no verified peer certificate")
        }
        defer { X509_free(peer) }
        guard ctshim_ssl_alpn_is_ctrpc(ssl) == 1 else {
            throw TLSError(.handshake, "TLS handshake with \(peerAddress) failed: ALPN ctrpc/1 not negotiated")
        }
        guard let identity = spiffeID(of: peer) else {
            throw TLSError(.peerRefused, "TLS handshake with \(peerAddress) failed: peer certificate does not carry exactly one URI SAN, a spiffe:// id")
        }
        owned = true
        return TLSStream(fd: fd, ssl: ssl, peerIdentity: identity, peerAddress: peerAddress)
    }

    // MARK: Transfer

    /// Reads what is available without waiting.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> ReadResult {
        try sslLock.withLock { _ in
            let rc = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
            if rc > 0 { return .bytes(Int(rc)) }
            switch SSL_get_error(ssl, rc) {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .wouldBlock
            case SSL_ERROR_ZERO_RETURN: return .closed
            case SSL_ERROR_SYSCALL where rc == 0 && ERR_peek_error() == 0:
                return .closed
            default:
                throw TLSError.openSSL(.io, "TLS read from \(peerAddress) failed")
            }
        }
    }

    /// True when OpenSSL holds bytes (decrypted, or read ahead) that `read` can use without
    /// the socket becoming readable again.
    public var hasBufferedInput: Bool {
        sslLock.withLock { _ in SSL_has_pending(ssl) == 1 }
    }

    /// Writes as much of `bytes` as the socket takes now, without waiting.
    ///
    /// - Important: after `.wouldBlock`, or `.wrote(n)` with `n` short, the next write must
    ///   start with the bytes not yet written (OpenSSL's retry rule).
    public func write(_ bytes: UnsafeRawBufferPointer) throws -> WriteResult {
        try sslLock.withLock { _ in
            let rc = SSL_write(ssl, bytes.baseAddress, Int32(clamping: bytes.count))
            if rc > 0 { return .wrote(Int(rc)) }
            switch SSL_get_error(ssl, rc) {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .wouldBlock
            default:
                throw TLSError.openSSL(.io, "TLS write to \(peerAddress) failed")
            }
        }
    }

    /// Sends close_notify (best effort) and shuts the socket down in both directions, which
    /// wakes any thread polling it. The descriptor itself is closed when the stream is freed.
    public func shutdown() {
        sslLock.withLock { _ in
            _ = SSL_shutdown(ssl)
            _ = drainOpenSSLErrors()
        }
        _ = Glibc.shutdown(fileDescriptor, Int32(SHUT_RDWR))
    }
}
