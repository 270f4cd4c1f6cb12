import COpenSSL
import Foundation

/// One certificate the deployment's CA has revoked.
public struct RevokedCertificate: Sendable, Equatable, Codable {
    /// The certificate's serial number, upper-case hexadecimal.
    public let serial: String
    /// When it was revoked, to the second.
    public let revokedAt: Date

    public init(serial: String, revokedAt: Date) {
        self.serial = serial
        self.revokedAt = Date(timeIntervalSince1970: revokedAt.timeIntervalSince1970.rounded(.down))
    }
}

/// The certificate revocation list (CRL, X.509 v2) a CA signs: services configured with it
/// (`crl`) refuse every certificate it names. It is re-signed with a fresh expiry each time it
/// changes; a service refuses to start, and refuses every peer, once it has expired — so an
/// operator re-signs it (`calltrace pki crl`) well before.
extension CertificateAuthority {
    /// The serial number of the certificate at `path`, after checking that this CA issued it.
    public func serialNumber(ofCertificateAt path: String) throws -> String {
        let certificate = try PEMFile.readCertificate(path)
        defer { X509_free(certificate) }
        guard X509_verify(certificate, X509_get0_pubkey(self.certificate)) == 1 else {
            ERR_clear_error()
            throw PKIError("certificate \(path) was not issued by this CA")
        }
        return try Self.hex(X509_get_serialNumber(certificate))
    }

    /// The certificates revoked by the list at `path`, which this CA must have signed; empty when
    /// there is no file yet.
    public func revokedCertificates(inListAt path: String) throws -> (revoked: [RevokedCertificate], nextUpdate: Date?) {
        guard FileManager.default.fileExists(atPath: path) else { return ([], nil) }
        guard let bio = BIO_new_file(path, "r") else { throw PKIError("revocation list \(path) cannot be opened") }
        defer { BIO_free(bio) }
        guard let crl = PEM_read_bio_X509_CRL(bio, nil, nil, nil) else {
            ERR_clear_error()
            throw PKIError("revocation list \(path) is not a PEM X.509 CRL")
        }
        defer { X509_CRL_free(crl) }
        guard X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(certificate)) == 0,
              X509_CRL_verify(crl, X509_get0_pubkey(certificate)) == 1 else {
            ERR_clear_error()
            throw PKIError("revocation list \(path) was not signed by this CA")
        }
        var revoked: [RevokedCertificate] = []
        if let stack = X509_CRL_get_REVOKED(crl) {
            for index in 0..<OPENSSL_sk_num(stack) {
                let entry = OpaquePointer(OPENSSL_sk_value(stack, index))
                revoked.append(RevokedCertificate(serial: try Self.hex(X509_REVOKED_get0_serialNumber(entry)),
                                                  revokedAt: Self.date(X509_REVOKED_get0_revocationDate(entry)) ?? Date(timeIntervalSince1970: 0)))
            }
        }
        return (revoked, X509_CRL_get0_nextUpdate(crl).flatMap(Self.date))
    }

    /// Signs a list revoking `revoked`, valid for `validDays` from `issuedAt`, and writes it to
    /// `path` (mode 0644, through a temporary file: a service never reads half a list).
    public func writeRevocationList(_ revoked: [RevokedCertificate], validDays: Int, to path: String,
                                    issuedAt: Date = Date()) throws {
        guard (1...365).contains(validDays) else { throw PKIError("a revocation list is valid from 1 to 365 days") }
        guard let crl = X509_CRL_new() else { throw PKIError("cannot allocate a revocation list") }
        defer { X509_CRL_free(crl) }
        let now = time_t(issuedAt.timeIntervalSince1970)
        guard X509_CRL_set_version(crl, 1) == 1,  // v2
              X509_CRL_set_issuer_name(crl, X509_get_subject_name(certificate)) == 1,
              try Self.withTime(now, { X509_CRL_set1_lastUpdate(crl, $0) }) == 1,
              try Self.withTime(now + time_t(validDays) * 86_400, { X509_CRL_set1_nextUpdate(crl, $0) }) == 1 else {
            throw PKIError("cannot build the revocation list")
        }
        for entry in revoked {
            guard let item = X509_REVOKED_new() else { throw PKIError("cannot allocate a revocation entry") }
            var bignum: OpaquePointer? = nil
            guard BN_hex2bn(&bignum, entry.serial) > 0, let bignum, let serial = BN_to_ASN1_INTEGER(bignum, nil) else {
                BN_free(bignum)
                X509_REVOKED_free(item)
                throw PKIError("\(entry.serial) is not a serial number")
            }
            BN_free(bignum)
            let dated = try Self.withTime(time_t(entry.revokedAt.timeIntervalSince1970), { X509_REVOKED_set_revocationDate(item, $0) })
            let set = X509_REVOKED_set_serialNumber(item, serial) == 1 && dated == 1
            ASN1_INTEGER_free(serial)
            guard set, X509_CRL_add0_revoked(crl, item) == 1 else {
                X509_REVOKED_free(item)
                throw PKIError("cannot add \(entry.serial) to the revocation list")
            }
        }
        X509_CRL_sort(crl)
        guard X509_CRL_sign(crl, key, EVP_sha256()) > 0 else { throw PKIError("cannot sign the revocation list") }
        let bio = BIO_new(BIO_s_mem())!
        defer { BIO_free(bio) }
        guard PEM_write_bio_X509_CRL(bio, crl) == 1 else { throw PKIError("cannot encode the revocation list") }
        var bytes = [UInt8](repeating: 0, count: Int(BIO_ctrl_pending(bio)))
        _ = BIO_read(bio, &bytes, Int32(bytes.count))
        try PEMFile.write(String(decoding: bytes, as: UTF8.self), to: path, mode: 0o644)
    }

    private static func hex(_ integer: UnsafePointer<ASN1_INTEGER>?) throws -> String {
        guard let integer, let bignum = ASN1_INTEGER_to_BN(integer, nil) else { throw PKIError("a serial number cannot be read") }
        defer { BN_free(bignum) }
        guard let text = BN_bn2hex(bignum) else { throw PKIError("a serial number cannot be read") }
        defer { CRYPTO_free(text, nil, 0) }
        return String(cString: text)
    }

    private static func withTime(_ seconds: time_t, _ body: (UnsafeMutablePointer<ASN1_TIME>) -> Int32) throws -> Int32 {
        guard let time = ASN1_TIME_set(nil, seconds) else { throw PKIError("cannot encode a time") }
        defer { ASN1_TIME_free(time) }
        return body(time)
    }

    private static func date(_ time: UnsafePointer<ASN1_TIME>?) -> Date? {
        guard let time else { return nil }
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }
}
