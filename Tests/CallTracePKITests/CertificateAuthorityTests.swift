import COpenSSL
import CallTracePKI
import CallTraceTLS
import Foundation
import Testing

/// A temporary folder for one test's PKI files, removed when the test ends.
final class PKIFolder: @unchecked Sendable {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("calltrace-pki-tests-\(UUID().uuidString)")

    init() throws { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(at: url) }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    /// `issued` written as `<name>.crt` / `<name>.key`, as TLS credentials under `caPath`.
    func credentials(_ issued: IssuedCertificate, named name: String, caPath: String) throws -> TLSCredentials {
        let files = try issued.write(to: url, name: name)
        return TLSCredentials(certificateChainPath: files.certificate, privateKeyPath: files.key, trustRootsPath: caPath)
    }
}

/// A PEM certificate as OpenSSL reads it: its text form (`openssl x509 -text`), validity and signer.
struct ParsedCertificate {
    let text: String
    /// Organisation and common name.
    let subject: (o: String, cn: String)
    let issuer: (o: String, cn: String)
    let notBefore: Date
    let notAfter: Date
    private let pem: String

    init(pem: String) throws {
        self.pem = pem
        let certificate = try Self.read(pem)
        defer { X509_free(certificate) }
        let out = BIO_new(BIO_s_mem())!
        defer { BIO_free(out) }
        #expect(X509_print(out, certificate) == 1)
        var bytes = [UInt8](repeating: 0, count: Int(BIO_ctrl_pending(out)))
        _ = BIO_read(out, &bytes, Int32(bytes.count))
        text = String(decoding: bytes, as: UTF8.self)
        subject = Self.names(X509_get_subject_name(certificate))
        issuer = Self.names(X509_get_issuer_name(certificate))
        notBefore = Self.date(X509_get0_notBefore(certificate))
        notAfter = Self.date(X509_get0_notAfter(certificate))
    }

    private static func read(_ pem: String) throws -> OpaquePointer {
        // A memory BIO reads the caller's bytes in place: parsed while they are alive.
        let certificate = pem.withCString { text -> OpaquePointer? in
            guard let bio = BIO_new_mem_buf(text, Int32(strlen(text))) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_X509(bio, nil, nil, nil)
        }
        return try #require(certificate, "not a PEM certificate")
    }

    private static func names(_ name: OpaquePointer?) -> (o: String, cn: String) {
        func text(_ nid: Int32) -> String {
            var buffer = [CChar](repeating: 0, count: 256)
            guard let name, X509_NAME_get_text_by_NID(name, nid, &buffer, Int32(buffer.count)) >= 0 else { return "" }
            return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        }
        return (text(NID_organizationName), text(NID_commonName))
    }

    private static func date(_ time: UnsafePointer<ASN1_TIME>?) -> Date {
        var parts = tm()
        guard let time, ASN1_TIME_to_tm(time, &parts) == 1 else { return .distantPast }
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }

    /// Whether `issuer`'s key signed this certificate.
    func isSigned(by issuer: ParsedCertificate) throws -> Bool {
        let (certificate, signer) = (try Self.read(pem), try Self.read(issuer.pem))
        defer { X509_free(certificate); X509_free(signer) }
        defer { ERR_clear_error() }
        return X509_verify(certificate, X509_get0_pubkey(signer)) == 1
    }

    /// The lines of the text form after the one containing `heading`, trimmed.
    func value(after heading: String) -> String? {
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        return lines.firstIndex { $0.hasPrefix(heading) }.flatMap { $0 + 1 < lines.count ? lines[$0 + 1] : nil }
    }
}

/// `now` within a minute of `expected` (certificates carry whole seconds; the test takes some).
func near(_ date: Date, _ expected: Date) -> Bool { abs(date.timeIntervalSince(expected)) < 60 }

@Suite("PKI: the deployment's certificate authority")
struct CertificateAuthorityTests {
    @Test("A new CA is a self-signed P-256 CA of its trust domain: CA:TRUE with path length 0, signing only certificates and lists, its trust domain as its URI, valid from an hour ago for ten years")
    func newCA() throws {
        let ca = try CertificateAuthority.create(trustDomain: "firm.test")
        #expect(ca.trustDomain == "firm.test")
        let parsed = try ParsedCertificate(pem: ca.certificatePEM)
        #expect(try parsed.isSigned(by: parsed))
        #expect(parsed.subject == ("CallTrace", "CallTrace CA firm.test") && parsed.issuer == parsed.subject)
        #expect(parsed.text.contains("ASN1 OID: prime256v1") && parsed.text.contains("Signature Algorithm: ecdsa-with-SHA256"))
        #expect(parsed.value(after: "X509v3 Basic Constraints: critical") == "CA:TRUE, pathlen:0")
        #expect(parsed.value(after: "X509v3 Key Usage: critical") == "Certificate Sign, CRL Sign")
        #expect(parsed.value(after: "X509v3 Subject Alternative Name") == "URI:spiffe://firm.test")
        #expect(near(parsed.notBefore, Date() - 3600) && near(parsed.notAfter, Date() + 10 * 365 * 86400))
    }

    @Test("A leaf carries exactly its SPIFFE id (with localhost for TLS names), is for client and server authentication, is signed by the CA, and is valid for the offsets asked")
    func issue() throws {
        let ca = try CertificateAuthority.create(trustDomain: "firm.test")
        let leaf = try ParsedCertificate(pem: try ca.issue(identity: "spiffe://firm.test/service/media", notBefore: .seconds(-60),
                                                           notAfter: .seconds(7 * 86400)).certificatePEM)
        #expect(try leaf.isSigned(by: try ParsedCertificate(pem: ca.certificatePEM)))
        #expect(try !leaf.isSigned(by: try ParsedCertificate(pem: try CertificateAuthority.create(trustDomain: "firm.test").certificatePEM)))
        #expect(leaf.issuer == ("CallTrace", "CallTrace CA firm.test"))
        #expect(leaf.subject == ("CallTrace", "spiffe://firm.test/service/media"))
        #expect(leaf.value(after: "X509v3 Subject Alternative Name") == "URI:spiffe://firm.test/service/media, DNS:localhost, IP Address:127.0.0.1")
        #expect(leaf.value(after: "X509v3 Basic Constraints: critical") == "CA:FALSE")
        #expect(leaf.value(after: "X509v3 Key Usage: critical") == "Digital Signature")
        #expect(leaf.value(after: "X509v3 Extended Key Usage") == "TLS Web Server Authentication, TLS Web Client Authentication")
        #expect(near(leaf.notBefore, Date() - 60) && near(leaf.notAfter, Date() + 7 * 86400))

        let error = #expect(throws: PKIError.self) { _ = try ca.issue(identity: "spiffe://other.test/service/media") }
        #expect(error?.message == "identity spiffe://other.test/service/media is not in trust domain firm.test")
        #expect(throws: PKIError.self) { _ = try ca.issue(identity: "spiffe://firm.test.evil/service/media") }
        let anonymous = try ParsedCertificate(pem: try ca.issue(identity: nil).certificatePEM)
        #expect(!anonymous.text.contains("Subject Alternative Name") && anonymous.subject == ("CallTrace", "no identity"))
    }

    @Test("Serial numbers are random, positive and at most 128 bits, as upper-case hexadecimal; only the issuing CA reads one")
    func serialNumbers() throws {
        let folder = try PKIFolder()
        let ca = try CertificateAuthority.create(trustDomain: "firm.test")
        let serials = try (0..<20).map { n in
            let files = try ca.issue(identity: "spiffe://firm.test/gateway/g\(n)").write(to: folder.url, name: "g\(n)")
            return try ca.serialNumber(ofCertificateAt: files.certificate)
        }
        #expect(Set(serials).count == 20)
        #expect(serials.allSatisfy { !$0.isEmpty && $0.count <= 32 && $0.allSatisfy { "0123456789ABCDEF".contains($0) } })
        #expect(serials.allSatisfy { $0.count < 32 || Int($0.prefix(1), radix: 16)! < 8 }, "the top bit is clear: positive")
        let other = try CertificateAuthority.create(trustDomain: "firm.test")
        let error = #expect(throws: PKIError.self) { _ = try other.serialNumber(ofCertificateAt: folder.path("g0.crt")) }
        #expect(error?.message == "certificate \(folder.path("g0.crt")) was not issued by this CA")
    }

    @Test("write(to:) keeps the key 0600 and the certificate 0644; load gives back the same CA; a key of another CA, a missing key or a leaf is refused, named")
    func writeAndLoad() throws {
        let folder = try PKIFolder()
        let ca = try CertificateAuthority.create(trustDomain: "firm.test")
        let files = try ca.write(to: folder.url)
        #expect(files.certificate == folder.path("ca.crt") && files.key == folder.path("ca.key"))
        #expect(try folder.mode(files.certificate) == 0o644 && folder.mode(files.key) == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.url.path).sorted() == ["ca.crt", "ca.key"], "no temporary file left")

        let loaded = try CertificateAuthority.load(certificatePath: files.certificate, keyPath: files.key)
        #expect(loaded.trustDomain == "firm.test" && loaded.certificatePEM == ca.certificatePEM)
        // What the loaded CA signs, the original's certificate verifies: it holds the same key.
        let leaf = try ParsedCertificate(pem: try loaded.issue(identity: "spiffe://firm.test/operator/ops").certificatePEM)
        #expect(try leaf.isSigned(by: try ParsedCertificate(pem: ca.certificatePEM)))

        let stranger = try CertificateAuthority.create(trustDomain: "firm.test").write(to: folder.url, name: "stranger")
        let mismatch = #expect(throws: PKIError.self) { _ = try CertificateAuthority.load(certificatePath: files.certificate, keyPath: stranger.key) }
        #expect(mismatch?.message == "CA key \(stranger.key) does not match \(files.certificate)")
        let missing = #expect(throws: PKIError.self) { _ = try CertificateAuthority.load(certificatePath: files.certificate, keyPath: folder.path("none.key")) }
        #expect(missing?.message == "CA key \(folder.path("none.key")) cannot be read")
        let issued = try ca.issue(identity: "spiffe://firm.test/service/media").write(to: folder.url, name: "media")
        let notCA = #expect(throws: PKIError.self) { _ = try CertificateAuthority.load(certificatePath: issued.certificate, keyPath: issued.key) }
        #expect(notCA?.message == "CA certificate \(issued.certificate) names no trust domain")
    }
}

@Suite("PKI: certificates in real TLS")
struct IssuedCertificateTLSTests {
    /// Runs `body` on a thread of its own (TLS handshakes block).
    func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in Thread { continuation.resume(with: Result { try body() }) }.start() }
    }

    /// One mutual-TLS handshake over loopback: each side's view of the other's identity, or its error.
    func handshake(server: TLSCredentials, client: TLSCredentials) async throws -> (server: Result<String, TLSError>, client: Result<String, TLSError>) {
        let (serverContext, clientContext) = (try TLSContext(role: .server, credentials: server), try TLSContext(role: .client, credentials: client))
        let listener = try TCPListener(host: "127.0.0.1", port: 0)
        defer { listener.shutdown() }
        // The server's thread starts here, before the client connects. Started from a child task
        // (`async let`), it waited for a turn of the suite's busy task pool on a loaded machine
        // while the client's handshake ran out its time against a connection nobody accepted.
        let (acceptedStream, accepted) = AsyncStream.makeStream(of: Result<String, TLSError>.self)
        Thread {
            defer { accepted.finish() }
            guard let (fd, address) = listener.accept() else {
                accepted.yield(.failure(TLSError(.socket, "no connection")))
                return
            }
            do {
                let stream = try TLSStream.accept(fd: fd, peerAddress: address, context: serverContext, timeout: .seconds(20))
                defer { stream.shutdown() }
                accepted.yield(.success(stream.peerIdentity))
            } catch let error as TLSError {
                accepted.yield(.failure(error))
            } catch {
                accepted.yield(.failure(TLSError(.socket, "\(error)")))
            }
        }.start()
        let connected: Result<String, TLSError> = try await onThread {
            do {
                let stream = try TLSStream.connect(host: "127.0.0.1", port: listener.port, context: clientContext, timeout: .seconds(20))
                defer { stream.shutdown() }
                return .success(stream.peerIdentity)
            } catch let error as TLSError { return .failure(error) }
        }
        var answers = acceptedStream.makeAsyncIterator()
        return (await answers.next() ?? .failure(TLSError(.socket, "the server's thread ended without an answer")), connected)
    }

    @Test("Two certificates of one CA complete a mutual handshake, each side learning the other's SPIFFE id; one of another CA with the same trust domain is refused")
    func mutualTLS() async throws {
        let folder = try PKIFolder()
        let ca = try CertificateAuthority.create(trustDomain: "firm.test")
        let caPath = try ca.write(to: folder.url).certificate
        let media = try folder.credentials(try ca.issue(identity: "spiffe://firm.test/service/media"), named: "media", caPath: caPath)
        let gateway = try folder.credentials(try ca.issue(identity: "spiffe://firm.test/gateway/web"), named: "web", caPath: caPath)
        let (server, client) = try await handshake(server: media, client: gateway)
        #expect(try server.get() == "spiffe://firm.test/gateway/web" && client.get() == "spiffe://firm.test/service/media")

        // The impostor trusts both CAs (so it accepts the server, and its own certificate loads);
        // the server trusts only its deployment's.
        let impostorCA = try CertificateAuthority.create(trustDomain: "firm.test")
        let bothCAs = folder.path("both-cas.crt")
        try Data((ca.certificatePEM + impostorCA.certificatePEM).utf8).write(to: URL(fileURLWithPath: bothCAs))
        let impostor = try folder.credentials(try impostorCA.issue(identity: "spiffe://firm.test/gateway/web"), named: "impostor", caPath: bothCAs)
        let refused = try await handshake(server: media, client: impostor)
        guard case .failure(let error) = refused.server else { Issue.record("the server took another CA's certificate"); return }
        #expect(error.kind == .peerRefused, "\(error.kind): \(error.message)")
        #expect(error.message.contains("peer certificate refused"), "\(error.message)")
    }

    @Test("A certificate past its end, or before its start, is refused by OpenSSL's own check of it")
    func validity() throws {
        let folder = try PKIFolder()
        let ca = try CertificateAuthority.create(trustDomain: "firm.test")
        let caPath = try ca.write(to: folder.url).certificate
        let current = try folder.credentials(try ca.issue(identity: "spiffe://firm.test/service/media"), named: "current", caPath: caPath)
        #expect(try TLSContext(role: .server, credentials: current).identity == "spiffe://firm.test/service/media")
        for (name, notBefore, notAfter, reason) in [("expired", -7200, -60, "certificate has expired"), ("future", 3600, 7200, "certificate is not yet valid")] {
            let credentials = try folder.credentials(try ca.issue(identity: "spiffe://firm.test/service/media", notBefore: .seconds(notBefore),
                                                                   notAfter: .seconds(notAfter)), named: name, caPath: caPath)
            let error = #expect(throws: TLSError.self, "\(name)") { _ = try TLSContext(role: .server, credentials: credentials) }
            #expect(error?.kind == .configuration && error?.message.hasSuffix(reason) == true, "\(error?.message ?? "")")
        }
    }
}
