import CCallTraceShims
import COpenSSL
import Foundation

/// A PKI failure, naming what could not be done.
public struct PKIError: Error, CustomStringConvertible, Sendable {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A key pair and certificate, PEM-encoded.
public struct IssuedCertificate: Sendable {
    public let certificatePEM: String
    public let privateKeyPEM: String

    /// Writes `<name>.crt` (0644) and `<name>.key` (0600) into `directory`.
    @discardableResult
    public func write(to directory: URL, name: String) throws -> (certificate: String, key: String) {
        let certificate = directory.appendingPathComponent("\(name).crt").path
        let key = directory.appendingPathComponent("\(name).key").path
        try PEMFile.write(certificatePEM, to: certificate, mode: 0o644)
        try PEMFile.write(privateKeyPEM, to: key, mode: 0o600)
        return (certificate, key)
    }
}

/// A deployment's certificate authority: it signs the certificates of services, gateways and
/// operators, each carrying a SPIFFE id (`spiffe://<trust-domain>/<kind>/<name>`) as URI SAN.
/// P-256 keys, SHA-256 signatures.
public final class CertificateAuthority: @unchecked Sendable {
    public let trustDomain: String
    let key: OpaquePointer
    let certificate: OpaquePointer

    private init(trustDomain: String, key: OpaquePointer, certificate: OpaquePointer) {
        self.trustDomain = trustDomain
        self.key = key
        self.certificate = certificate
    }

    deinit {
        X509_free(certificate)
        EVP_PKEY_free(key)
    }

    /// A new self-signed CA for `trustDomain`.
    ///
    /// - Parameters:
    ///   - notBefore: offset of the start of validity from now. Default: one hour ago (clock skew).
    ///   - notAfter: offset of the end of validity from now. Default: ten years.
    public static func create(trustDomain: String, commonName: String? = nil,
                              notBefore: Duration = .seconds(-3600),
                              notAfter: Duration = .seconds(10 * 365 * 86400)) throws -> CertificateAuthority {
        guard let key = ctshim_ec_p256_keygen() else { throw PKIError("cannot generate a CA key") }
        let certificate: OpaquePointer
        do {
            certificate = try buildCertificate(
                subjectKey: key, commonName: commonName ?? "CallTrace CA \(trustDomain)", issuer: nil, issuerKey: key,
                notBefore: notBefore, notAfter: notAfter,
                extensions: [(NID_basic_constraints, "critical,CA:TRUE,pathlen:0"),
                             (NID_key_usage, "critical,keyCertSign,cRLSign"),
                             (NID_subject_key_identifier, "hash"),
                             (NID_subject_alt_name, "URI:spiffe://\(trustDomain)")])
        } catch {
            EVP_PKEY_free(key)
            throw error
        }
        return CertificateAuthority(trustDomain: trustDomain, key: key, certificate: certificate)
    }

    /// Loads a CA written by `write(to:)`.
    public static func load(certificatePath: String, keyPath: String) throws -> CertificateAuthority {
        let certificate = try PEMFile.readCertificate(certificatePath)
        guard let key = try? PEMFile.readPrivateKey(keyPath) else {
            X509_free(certificate)
            throw PKIError("CA key \(keyPath) cannot be read")
        }
        guard X509_check_private_key(certificate, key) == 1 else {
            X509_free(certificate)
            EVP_PKEY_free(key)
            throw PKIError("CA key \(keyPath) does not match \(certificatePath)")
        }
        guard let uri = spiffeTrustDomain(of: certificate) else {
            X509_free(certificate)
            EVP_PKEY_free(key)
            throw PKIError("CA certificate \(certificatePath) names no trust domain")
        }
        return CertificateAuthority(trustDomain: uri, key: key, certificate: certificate)
    }

    /// The CA certificate, PEM.
    public var certificatePEM: String { PEMFile.encode(certificate: certificate) }

    /// The CA certificate and key; the key file is written 0600.
    @discardableResult
    public func write(to directory: URL, name: String = "ca") throws -> (certificate: String, key: String) {
        try IssuedCertificate(certificatePEM: certificatePEM, privateKeyPEM: PEMFile.encode(privateKey: key))
            .write(to: directory, name: name)
    }

    /// Issues a certificate for `identity`, usable for both TLS client and server authentication.
    ///
    /// - Parameters:
    ///   - identity: the SPIFFE id, e.g. `spiffe://example.test/service/media`. Nil issues a
    ///     certificate with no SPIFFE id (for tests of its refusal).
    ///   - notBefore / notAfter: validity offsets from now. Defaults: one hour ago / one year.
    ///   - extraURIs: more URI SANs after the identity (only for tests: peers refuse a
    ///     certificate with more than one).
    public func issue(identity: String?, commonName: String? = nil,
                      notBefore: Duration = .seconds(-3600),
                      notAfter: Duration = .seconds(365 * 86400), extraURIs: [String] = []) throws -> IssuedCertificate {
        guard let leafKey = ctshim_ec_p256_keygen() else { throw PKIError("cannot generate a key") }
        defer { EVP_PKEY_free(leafKey) }
        var extensions: [(Int32, String)] = [
            (NID_basic_constraints, "critical,CA:FALSE"),
            (NID_key_usage, "critical,digitalSignature"),
            (NID_ext_key_usage, "serverAuth,clientAuth"),
            (NID_subject_key_identifier, "hash"),
            (NID_authority_key_identifier, "keyid:always"),
        ]
        if let identity {
            guard identity.hasPrefix("spiffe://\(trustDomain)/") else {
                throw PKIError("identity \(identity) is not in trust domain \(trustDomain)")
            }
            let uris = ([identity] + extraURIs).map { "URI:\($0)" }.joined(separator: ",")
            extensions.append((NID_subject_alt_name, "\(uris),DNS:localhost,IP:127.0.0.1"))
        }
        let leaf = try Self.buildCertificate(subjectKey: leafKey, commonName: commonName ?? identity ?? "no identity",
                                             issuer: certificate, issuerKey: key,
                                             notBefore: notBefore, notAfter: notAfter, extensions: extensions)
        defer { X509_free(leaf) }
        return IssuedCertificate(certificatePEM: PEMFile.encode(certificate: leaf),
                                 privateKeyPEM: PEMFile.encode(privateKey: leafKey))
    }

    private static func buildCertificate(subjectKey: OpaquePointer, commonName: String, issuer: OpaquePointer?,
                                         issuerKey: OpaquePointer, notBefore: Duration, notAfter: Duration,
                                         extensions: [(Int32, String)]) throws -> OpaquePointer {
        guard let x509 = X509_new() else { throw PKIError("cannot allocate a certificate") }
        var done = false
        defer { if !done { X509_free(x509) } }
        X509_set_version(x509, 2)
        var serial = [UInt8](repeating: 0, count: 16)
        guard RAND_bytes(&serial, 16) == 1 else { throw PKIError("no randomness for a serial number") }
        serial[0] &= 0x7F  // positive
        guard let bn = BN_bin2bn(serial, 16, nil) else { throw PKIError("cannot build a serial number") }
        defer { BN_free(bn) }
        BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x509))
        X509_gmtime_adj(X509_getm_notBefore(x509), Int(notBefore.components.seconds))
        X509_gmtime_adj(X509_getm_notAfter(x509), Int(notAfter.components.seconds))
        X509_set_pubkey(x509, subjectKey)
        let subject = X509_get_subject_name(x509)
        X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8, "CallTrace", -1, -1, 0)
        X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, String(commonName.prefix(64)), -1, -1, 0)
        X509_set_issuer_name(x509, issuer.map { X509_get_subject_name($0) } ?? subject)
        var context = X509V3_CTX()
        X509V3_set_ctx(&context, issuer ?? x509, x509, nil, nil, 0)
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &context, nid, value) else {
                throw PKIError("cannot build certificate extension \(value)")
            }
            X509_add_ext(x509, ext, -1)
            X509_EXTENSION_free(ext)
        }
        guard X509_sign(x509, issuerKey, EVP_sha256()) > 0 else { throw PKIError("cannot sign the certificate") }
        done = true
        return x509
    }

    /// The CA names its trust domain as the URI SAN `spiffe://<trust-domain>`.
    private static func spiffeTrustDomain(of certificate: OpaquePointer) -> String? {
        var buffer = [CChar](repeating: 0, count: 512)
        let length = ctshim_x509_spiffe_id(certificate, &buffer, buffer.count)
        guard length > 9 else { return nil }
        let uri = String(decoding: buffer[0..<Int(length)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let domain = uri.dropFirst("spiffe://".count)
        return domain.contains("/") ? nil : String(domain)
    }
}

/// PEM encoding and files.
enum PEMFile {
    static func encode(certificate: OpaquePointer) -> String {
        withMemoryBIO { PEM_write_bio_X509($0, certificate) }
    }

    static func encode(privateKey: OpaquePointer) -> String {
        withMemoryBIO { PEM_write_bio_PrivateKey($0, privateKey, nil, nil, 0, nil, nil) }
    }

    private static func withMemoryBIO(_ write: (OpaquePointer) -> Int32) -> String {
        let bio = BIO_new(BIO_s_mem())!
        defer { BIO_free(bio) }
        _ = write(bio)
        let length = Int(BIO_ctrl_pending(bio))
        var bytes = [UInt8](repeating: 0, count: length)
        _ = BIO_read(bio, &bytes, Int32(length))
        return String(decoding: bytes, as: UTF8.self)
    }

    static func readCertificate(_ path: String) throws -> OpaquePointer {
        guard let bio = BIO_new_file(path, "r") else { throw PKIError("certificate \(path) cannot be opened") }
        defer { BIO_free(bio) }
        guard let certificate = PEM_read_bio_X509(bio, nil, nil, nil) else { throw PKIError("certificate \(path) is not PEM") }
        return certificate
    }

    static func readPrivateKey(_ path: String) throws -> OpaquePointer {
        guard let bio = BIO_new_file(path, "r") else { throw PKIError("key \(path) cannot be opened") }
        defer { BIO_free(bio) }
        guard let key = PEM_read_bio_PrivateKey(bio, nil, nil, nil) else { throw PKIError("key \(path) is not PEM") }
        return key
    }

    /// Writes `contents` atomically with `mode`, never readable by others in between, and never
    /// through a symbolic link planted at the temporary name (created exclusively).
    static func write(_ contents: String, to path: String, mode: mode_t) throws {
        let temporary = path + ".tmp-\(getpid())"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw PKIError("cannot write \(path): \(String(cString: strerror(errno)))") }
        let bytes = Array(contents.utf8)
        let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        fchmod(fd, mode)
        close(fd)
        guard written == bytes.count, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw PKIError("cannot write \(path)")
        }
    }
}
