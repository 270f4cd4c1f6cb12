import COpenSSL

/// A TLS or socket failure, with the OpenSSL error queue of the failing thread folded in.
///
/// - Important: messages name files, addresses and OpenSSL reasons only, never key material.
public struct TLSError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// Certificates, keys or CA could not be loaded or do not fit together.
        case configuration
        /// TCP could not connect or accept.
        case socket
        /// The TLS handshake failed or timed out.
        case handshake
        /// The peer's certificate was refused: not signed by our CA, revoked, expired, without
        /// exactly one SPIFFE id, or naming another identity than expected. Trying again will
        /// not change it.
        case peerRefused
        /// The connection broke after the handshake.
        case io
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// Builds an error from `context` and whatever OpenSSL queued on this thread, draining the queue.
    static func openSSL(_ kind: Kind, _ context: String) -> TLSError {
        let reasons = drainOpenSSLErrors()
        return TLSError(kind, reasons.isEmpty ? context : "\(context): \(reasons.joined(separator: "; "))")
    }

    public var description: String { message }
}

/// Empties this thread's OpenSSL error queue, returning its reasons.
func drainOpenSSLErrors() -> [String] {
    var reasons: [String] = []
    while true {
        let code = ERR_get_error()
        if code == 0 { break }
        if let reason = ERR_reason_error_string(code) {
            reasons.append(String(cString: reason))
        } else {
            reasons.append("error \(code)")
        }
    }
    return reasons
}
