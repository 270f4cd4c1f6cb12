import CallTracePKI
import CallTraceSync
public import CallTraceTLS
public import Foundation

/// A throw-away deployment PKI in a temporary folder: a CA, certificates for any identity,
/// and the bad certificates that handshake tests need. Removed when released.
public final class TemporaryPKI: @unchecked Sendable {
    public static let trustDomain = "calltrace.test"
    public let directory: URL
    public let ca: CertificateAuthority
    public let caPath: String

    public init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("calltrace-pki-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        LiveFolders.add(directory.path)
        ca = try CertificateAuthority.create(trustDomain: Self.trustDomain)
        caPath = try ca.write(to: directory).certificate
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
        LiveFolders.remove(directory.path)
    }

    /// One certificate per identity at the default validity, as a deployment has: clients and
    /// servers made from the same files share one TLS context (`TLSContext.shared`) instead of
    /// each parsing a new certificate and key.
    private let issued = Locked<[String: TLSCredentials]>([:])

    /// `spiffe://calltrace.test/<kind>/<name>`
    public static func identity(_ kind: String, _ name: String) -> String { "spiffe://\(trustDomain)/\(kind)/\(name)" }

    /// The telephony gateway: the one that reports calls, uploads recordings and gives first
    /// transcripts as itself (the services' default `telephony_gateways`).
    public static let telephony = identity("gateway", "telephony")

    /// Credentials for `identity`, signed by this CA: at the default validity, the same for
    /// every call naming the same identity; `newCredentials` issues another certificate.
    public func credentials(for identity: String) throws -> TLSCredentials {
        if let known = issued.withLock({ $0[identity] }) { return known }
        let made = try newCredentials(for: identity)
        return issued.withLock { issued in
            if let known = issued[identity] { return known }
            issued[identity] = made
            return made
        }
    }

    /// A new certificate and key for `identity`, signed by this CA.
    public func newCredentials(for identity: String, notBefore: Duration = .seconds(-3600),
                               notAfter: Duration = .seconds(86400), extraURIs: [String] = []) throws -> TLSCredentials {
        let issued = try ca.issue(identity: identity, notBefore: notBefore, notAfter: notAfter, extraURIs: extraURIs)
        let files = try issued.write(to: directory, name: UUID().uuidString)
        return TLSCredentials(certificateChainPath: files.certificate, privateKeyPath: files.key, trustRootsPath: caPath)
    }

    /// Credentials for `identity` written as `<name>.crt` and `<name>.key` in this folder (as
    /// `calltrace pki init` names them, for the CLI's `--pki` and `--as`).
    public func credentials(for identity: String, named name: String) throws -> TLSCredentials {
        let files = try ca.issue(identity: identity).write(to: directory, name: name)
        return TLSCredentials(certificateChainPath: files.certificate, privateKeyPath: files.key, trustRootsPath: caPath)
    }

    /// Credentials signed by an unrelated CA of the same trust domain name, trusting only that CA.
    public func foreignCredentials(for identity: String) throws -> TLSCredentials {
        let other = try CertificateAuthority.create(trustDomain: Self.trustDomain)
        let otherCA = try other.write(to: directory, name: "foreign-ca-\(UUID().uuidString)").certificate
        let files = try other.issue(identity: identity).write(to: directory, name: UUID().uuidString)
        return TLSCredentials(certificateChainPath: files.certificate, privateKeyPath: files.key, trustRootsPath: otherCA)
    }

    /// A revocation list of this CA naming `revoked`, issued at `issuedAt` for `validDays`,
    /// written to `path` (default: a new file).
    @discardableResult
    public func revocationList(revoking revoked: [TLSCredentials], validDays: Int = 30, issuedAt: Date = Date(),
                               at path: String? = nil) throws -> String {
        let path = path ?? directory.appendingPathComponent("crl-\(UUID().uuidString).pem").path
        let entries = try revoked.map { RevokedCertificate(serial: try ca.serialNumber(ofCertificateAt: $0.certificateChainPath), revokedAt: issuedAt) }
        try ca.writeRevocationList(entries, validDays: validDays, to: path, issuedAt: issuedAt)
        return path
    }

    /// A certificate without a SPIFFE id, signed by this CA.
    public func credentialsWithoutIdentity() throws -> TLSCredentials {
        let files = try ca.issue(identity: nil).write(to: directory, name: UUID().uuidString)
        return TLSCredentials(certificateChainPath: files.certificate, privateKeyPath: files.key, trustRootsPath: caPath)
    }
}

/// The folders of PKIs still alive. Many tests stop their services in a detached task (a `defer`
/// cannot await), so the last of them may still hold a PKI when the test process exits: its
/// folder is removed then.
private enum LiveFolders {
    private static let folders = Locked<Set<String>>([])
    private static let removedAtExit: Void = {
        atexit {
            for folder in LiveFolders.folders.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: folder) }
        }
    }()

    static func add(_ folder: String) {
        _ = removedAtExit
        folders.withLock { _ = $0.insert(folder) }
    }

    static func remove(_ folder: String) { folders.withLock { _ = $0.remove(folder) } }
}
