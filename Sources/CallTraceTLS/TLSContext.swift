import COpenSSL
import CCallTraceShims
import CallTraceSync
import Foundation

/// Where a party's TLS material lives: its certificate chain, its private key, and the
/// deployment's CA that every peer must chain to.
public struct TLSCredentials: Sendable, Hashable {
    /// PEM certificate chain, leaf first.
    public var certificateChainPath: String
    /// PEM private key matching the leaf certificate.
    public var privateKeyPath: String
    /// PEM certificate(s) of the deployment's CA; the only trust anchors.
    public var trustRootsPath: String
    /// PEM certificate revocation list signed by that CA (`calltrace pki revoke`). When set, every
    /// peer's certificate is checked against it, and a missing, foreign or expired list is a
    /// configuration error: revocation fails closed.
    public var revocationListPath: String?

    public init(certificateChainPath: String, privateKeyPath: String, trustRootsPath: String, revocationListPath: String? = nil) {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
        self.trustRootsPath = trustRootsPath
        self.revocationListPath = revocationListPath
    }
}

/// An immutable, configured `SSL_CTX` for ctrpc/1: TLS 1.2 minimum (1.3 preferred), AEAD suites
/// only, ALPN `ctrpc/1` required, and a peer certificate required and verified against the
/// deployment CA only. `role` says which side its connections take; the `SSL_CTX` itself is set
/// up for both (a service serves and calls its peers with the same certificate and key).
public final class TLSContext: @unchecked Sendable {
    public enum Role: Sendable { case server, client }

    let raw: OpaquePointer
    public let role: Role
    /// The SPIFFE id in our own certificate, e.g. `spiffe://example.test/service/media`.
    public let identity: String

    /// Loads and checks `credentials`.
    ///
    /// - Throws: `TLSError(.configuration)` naming the file or the mismatch, e.g. a key that does
    ///   not belong to the certificate, or a certificate that the CA did not sign.
    public init(role: Role, credentials: TLSCredentials) throws {
        _ = ignoreSIGPIPE
        for (what, path) in [("certificate", credentials.certificateChainPath),
                             ("private key", credentials.privateKeyPath),
                             ("CA certificate", credentials.trustRootsPath)]
            + (credentials.revocationListPath.map { [("revocation list", $0)] } ?? []) {
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw TLSError(.configuration, "\(what) file \(path) is missing or unreadable")
            }
        }
        guard let ctx = SSL_CTX_new(TLS_method()) else {
            throw TLSError.openSSL(.configuration, "cannot create a TLS context")
        }
        do {
            try Self.configure(ctx, credentials: credentials)
            self.identity = try Self.verifyOwnCertificate(ctx, credentials: credentials)
        } catch {
            SSL_CTX_free(ctx)
            throw error
        }
        self.raw = ctx
        self.role = role
    }

    /// The same `SSL_CTX` as `other`, for connections in `role`.
    private init(sharing other: TLSContext, role: Role) {
        SSL_CTX_up_ref(other.raw)
        self.raw = other.raw
        self.identity = other.identity
        self.role = role
    }

    deinit { SSL_CTX_free(raw) }

    private static func configure(_ ctx: OpaquePointer, credentials: TLSCredentials) throws {
        guard ctshim_ctx_harden(ctx) == 1 else {
            throw TLSError.openSSL(.configuration, "cannot restrict protocol versions and cipher suites")
        }
        guard SSL_CTX_use_certificate_chain_file(ctx, credentials.certificateChainPath) == 1 else {
            throw TLSError.openSSL(.configuration, "certificate \(credentials.certificateChainPath) cannot be loaded")
        }
        // Our own PKI's keys are EC: read them with a decoder told so. Any other key takes
        // OpenSSL's general path, which also names what is wrong with a bad file.
        let loaded: Int32
        if let key = ctshim_read_ec_private_key(credentials.privateKeyPath) {
            loaded = SSL_CTX_use_PrivateKey(ctx, key)
            EVP_PKEY_free(key)
        } else {
            loaded = SSL_CTX_use_PrivateKey_file(ctx, credentials.privateKeyPath, SSL_FILETYPE_PEM)
        }
        guard loaded == 1 else {
            let reasons = drainOpenSSLErrors()
            if reasons.contains(where: { $0.contains("mismatch") }) {
                throw TLSError(.configuration,
                               "private key \(credentials.privateKeyPath) does not match certificate \(credentials.certificateChainPath)")
            }
            throw TLSError(.configuration, "private key \(credentials.privateKeyPath) cannot be loaded: \(reasons.joined(separator: "; "))")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            _ = drainOpenSSLErrors()
            throw TLSError(.configuration,
                           "private key \(credentials.privateKeyPath) does not match certificate \(credentials.certificateChainPath)")
        }
        guard SSL_CTX_load_verify_file(ctx, credentials.trustRootsPath) == 1 else {
            throw TLSError.openSSL(.configuration, "CA certificate \(credentials.trustRootsPath) cannot be loaded")
        }
        if let path = credentials.revocationListPath { try loadRevocationList(path, into: ctx) }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
        // Accepting, a ClientHello without ALPN ctrpc/1 is refused; connecting, it is offered.
        ctshim_ctx_require_alpn_server(ctx)
        guard ctshim_ctx_offer_alpn_client(ctx) == 1 else {
            throw TLSError.openSSL(.configuration, "cannot set ALPN")
        }
    }

    /// Adds the CRL to the context's store and checks every leaf against it. Its signature,
    /// issuer and dates are checked with our own certificate just after, by `X509_verify_cert`.
    private static func loadRevocationList(_ path: String, into ctx: OpaquePointer) throws {
        guard let bio = BIO_new_file(path, "r") else { throw TLSError.openSSL(.configuration, "revocation list \(path) cannot be opened") }
        defer { BIO_free(bio) }
        guard let crl = PEM_read_bio_X509_CRL(bio, nil, nil, nil) else {
            throw TLSError.openSSL(.configuration, "revocation list \(path) is not a PEM X.509 CRL")
        }
        defer { X509_CRL_free(crl) }
        guard let store = SSL_CTX_get_cert_store(ctx), X509_STORE_add_crl(store, crl) == 1 else {
            throw TLSError.openSSL(.configuration, "revocation list \(path) cannot be loaded")
        }
        X509_STORE_set_flags(store, UInt(X509_V_FLAG_CRL_CHECK))
    }

    /// Our certificate must chain to the configured CA and carry a SPIFFE id.
    private static func verifyOwnCertificate(_ ctx: OpaquePointer, credentials: TLSCredentials) throws -> String {
        guard let leaf = SSL_CTX_get0_certificate(ctx) else {
            throw TLSError(.configuration, "certificate \(credentials.certificateChainPath) has no leaf certificate")
        }
        guard let store = SSL_CTX_get_cert_store(ctx), let storeContext = X509_STORE_CTX_new() else {
            throw TLSError.openSSL(.configuration, "cannot create a verification context")
        }
        defer { X509_STORE_CTX_free(storeContext) }
        var chain: OpaquePointer? = nil
        chain = ctshim_ctx_get0_chain_certs(ctx)
        guard X509_STORE_CTX_init(storeContext, store, leaf, chain) == 1 else {
            throw TLSError.openSSL(.configuration, "cannot create a verification context")
        }
        if X509_verify_cert(storeContext) != 1 {
            let reason = String(cString: X509_verify_cert_error_string(Int(X509_STORE_CTX_get_error(storeContext))))
            _ = drainOpenSSLErrors()
            let list = credentials.revocationListPath.map { " and revocation list \($0)" } ?? ""
            throw TLSError(.configuration,
                           "certificate \(credentials.certificateChainPath) is not valid under CA \(credentials.trustRootsPath)\(list): \(reason)")
        }
        guard let identity = spiffeID(of: leaf) else {
            throw TLSError(.configuration, "certificate \(credentials.certificateChainPath) must carry exactly one URI SAN, a spiffe:// id")
        }
        return identity
    }
}

extension TLSContext {
    /// A context for `role` made from files holding exactly these bytes, shared with earlier
    /// callers in either role (a service's server and its clients to peers, a test's many
    /// clients) instead of made again: with OpenSSL 3 a context costs about a millisecond of
    /// cipher and key-decoder lookups, and an idle context is the same whoever uses it. Our
    /// certificate is verified again on every use, so a shared context refuses what a new one
    /// would (an expired certificate, a revoked one). Changed files make a new context; the last
    /// 32 are kept (a process holds a few; a test process, many deployments at once).
    public static func shared(role: Role, credentials: TLSCredentials) throws -> TLSContext {
        let paths = [credentials.certificateChainPath, credentials.privateKeyPath, credentials.trustRootsPath]
            + (credentials.revocationListPath.map { [$0] } ?? [])
        // An unreadable file: the full constructor says which.
        guard let contents = try? paths.map({ try Data(contentsOf: URL(fileURLWithPath: $0)) }) else {
            return try TLSContext(role: role, credentials: credentials)
        }
        let key = digest(contents)
        if let context = sharedContexts.withLock({ $0.take(key) }) {
            _ = try verifyOwnCertificate(context.raw, credentials: credentials)
            return context.role == role ? context : TLSContext(sharing: context, role: role)
        }
        let context = try TLSContext(role: role, credentials: credentials)
        sharedContexts.withLock { $0.keep(context, for: key) }
        return context
    }

    /// A SHA-256 of the files, the cache's key: the private key's bytes are not kept as one.
    private static func digest(_ contents: [Data]) -> [UInt8] {
        var framed = Data()
        for content in contents {
            withUnsafeBytes(of: UInt64(content.count).bigEndian) { framed.append(contentsOf: $0) }
            framed.append(content)
        }
        defer { framed.resetBytes(in: 0..<framed.count) }
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        framed.withUnsafeBytes { bytes in
            _ = SHA256(bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count, &digest)
        }
        return digest
    }

    /// The most recently used contexts, newest last.
    struct SharedContexts {
        var entries: [(key: [UInt8], context: TLSContext)] = []

        mutating func take(_ key: [UInt8]) -> TLSContext? {
            guard let index = entries.firstIndex(where: { $0.key == key }) else { return nil }
            let entry = entries.remove(at: index)
            entries.append(entry)
            return entry.context
        }

        mutating func keep(_ context: TLSContext, for key: [UInt8]) {
            entries.removeAll { $0.key == key }
            entries.append((key, context))
            if entries.count > 32 { entries.removeFirst(entries.count - 32) }
        }
    }
}

private let sharedContexts = Locked(TLSContext.SharedContexts())

/// OpenSSL writes to sockets with write(2): a peer that closed would raise SIGPIPE and kill the
/// process. Ignored once, process-wide, before the first TLS context exists.
private let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

/// The one `spiffe://` URI SAN of `certificate`; nil when it has none or more than one URI SAN.
func spiffeID(of certificate: OpaquePointer) -> String? {
    var buffer = [CChar](repeating: 0, count: 2049)
    let length = ctshim_x509_spiffe_id(certificate, &buffer, buffer.count)
    guard length > 0 else { return nil }
    return String(decoding: buffer[0..<Int(length)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
