import CallTracePKI
import CallTraceTLS
import Foundation
import Testing

@Suite("PKI: the certificate revocation list")
struct RevocationListTests {
    /// A CA written to `folder`, with certificates for `names` (gateway identities).
    func deployment(_ folder: PKIFolder, _ names: [String]) throws -> (ca: CertificateAuthority, caPath: String, certificates: [TLSCredentials]) {
        let ca = try CertificateAuthority.create(trustDomain: "firm.test")
        let caPath = try ca.write(to: folder.url).certificate
        let certificates = try names.map { try folder.credentials(try ca.issue(identity: "spiffe://firm.test/gateway/\($0)"), named: $0, caPath: caPath) }
        return (ca, caPath, certificates)
    }

    @Test("A signed list reads back as written: each serial with its time to the second, the next update validDays on; no file yet is an empty list")
    func roundTrip() throws {
        let folder = try PKIFolder()
        let (ca, _, certificates) = try deployment(folder, ["web", "crm", "telephony"])
        let path = folder.path("crl.pem")
        #expect(try ca.revokedCertificates(inListAt: path).revoked.isEmpty && ca.revokedCertificates(inListAt: path).nextUpdate == nil)

        let issuedAt = Date(timeIntervalSince1970: 1_796_119_200.75)
        let revoked = try certificates.prefix(2).enumerated().map { n, credentials in
            RevokedCertificate(serial: try ca.serialNumber(ofCertificateAt: credentials.certificateChainPath), revokedAt: issuedAt - Double(n) * 3600)
        }
        #expect(revoked[0].revokedAt == Date(timeIntervalSince1970: 1_796_119_200), "kept to the second")
        try ca.writeRevocationList(revoked, validDays: 30, to: path, issuedAt: issuedAt)
        #expect(try folder.mode(path) == 0o644)
        let read = try ca.revokedCertificates(inListAt: path)
        #expect(Set(read.revoked.map(\.serial)) == Set(revoked.map(\.serial)) && read.revoked.count == 2)
        for entry in revoked { #expect(read.revoked.contains(entry), "\(entry.serial)") }
        #expect(read.nextUpdate == Date(timeIntervalSince1970: 1_796_119_200 + 30 * 86400))

        // Re-signed with one more: the file is replaced whole.
        let third = RevokedCertificate(serial: try ca.serialNumber(ofCertificateAt: certificates[2].certificateChainPath), revokedAt: issuedAt)
        try ca.writeRevocationList(revoked + [third], validDays: 7, to: path, issuedAt: issuedAt)
        #expect(try ca.revokedCertificates(inListAt: path).revoked.count == 3)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.url.path).filter { $0.contains(".tmp-") }.isEmpty)
    }

    @Test("A list another CA signed, a file that is not a list, a validity out of 1–365 days or a serial that is not hexadecimal is refused, named")
    func refusals() throws {
        let folder = try PKIFolder()
        let (ca, caPath, _) = try deployment(folder, [])
        let other = try CertificateAuthority.create(trustDomain: "firm.test")
        let foreign = folder.path("foreign.pem")
        try other.writeRevocationList([], validDays: 30, to: foreign)
        let error = #expect(throws: PKIError.self) { _ = try ca.revokedCertificates(inListAt: foreign) }
        #expect(error?.message == "revocation list \(foreign) was not signed by this CA")
        let notAList = #expect(throws: PKIError.self) { _ = try ca.revokedCertificates(inListAt: caPath) }
        #expect(notAList?.message == "revocation list \(caPath) is not a PEM X.509 CRL")
        for days in [0, 366] {
            let refused = #expect(throws: PKIError.self) { try ca.writeRevocationList([], validDays: days, to: folder.path("crl-\(days).pem")) }
            #expect(refused?.message == "a revocation list is valid from 1 to 365 days")
            #expect(!FileManager.default.fileExists(atPath: folder.path("crl-\(days).pem")))
        }
        let badSerial = #expect(throws: PKIError.self) {
            try ca.writeRevocationList([RevokedCertificate(serial: "not-hex", revokedAt: Date())], validDays: 30, to: folder.path("bad.pem"))
        }
        #expect(badSerial?.message == "not-hex is not a serial number")
    }

    @Test("With the list, TLS refuses the certificate it names and takes the others; a list past its next update is refused outright")
    func enforcedByTLS() throws {
        let folder = try PKIFolder()
        let (ca, _, certificates) = try deployment(folder, ["web", "crm"])
        let (web, crm) = (certificates[0], certificates[1])
        let list = folder.path("crl.pem")
        try ca.writeRevocationList([RevokedCertificate(serial: try ca.serialNumber(ofCertificateAt: web.certificateChainPath), revokedAt: Date())],
                                   validDays: 30, to: list)
        var revokedWeb = web, currentCRM = crm
        revokedWeb.revocationListPath = list
        currentCRM.revocationListPath = list
        let error = #expect(throws: TLSError.self) { _ = try TLSContext(role: .client, credentials: revokedWeb) }
        #expect(error?.message.hasSuffix("certificate revoked") == true, "\(error?.message ?? "")")
        #expect(try TLSContext(role: .client, credentials: currentCRM).identity == "spiffe://firm.test/gateway/crm")

        let stale = folder.path("stale.pem")
        try ca.writeRevocationList([], validDays: 30, to: stale, issuedAt: Date() - 31 * 86400)
        currentCRM.revocationListPath = stale
        let expired = #expect(throws: TLSError.self) { _ = try TLSContext(role: .client, credentials: currentCRM) }
        #expect(expired?.message.hasSuffix("CRL has expired") == true, "\(expired?.message ?? "")")
    }
}
