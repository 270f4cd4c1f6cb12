import CallTraceOutbound
import CallTraceTestSupport
import Foundation
import Testing

/// Runs blocking `body` (a libcurl transfer) on a thread of its own, off the cooperative pool.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in Thread { continuation.resume(with: Result { try body() }) }.start() }
}

@Suite("Outbound: e-mail over SMTP with TLS, through libcurl")
struct SMTPClientTests {
    static let mailServer = TemporaryPKI.identity("service", "mail")

    func settings(_ url: String, pki: TemporaryPKI, login: Bool = true) -> SMTPSettings {
        SMTPSettings(url: url, from: "no-reply@calltrace.test", caFile: pki.caPath, username: login ? "calltrace" : nil, password: login ? "mail-secret" : nil)
    }

    @Test("A message goes over implicit TLS with the login: envelope, RFC 5322 headers, a UTF-8 subject encoded, CRLF line ends, a leading dot kept")
    func sendsOverTLS() async throws {
        let pki = try TemporaryPKI()
        let server = try FakeSMTPServer(mode: .implicitTLS, credentials: try pki.credentials(for: Self.mailServer))
        defer { server.stop() }
        let settings = settings("smtps://127.0.0.1:\(server.port)", pki: pki)
        let message = MailMessage(to: "boss@firm.example", subject: "Réinitialisation — your reset", body: "Hello,\n.a line starting with a dot\nBye")
        try await blocking { try SMTPClient.send(message, settings: settings, now: Date(timeIntervalSince1970: 1_796_292_000)) }

        #expect(server.messages.count == 1)
        let mail = try #require(server.messages.first)
        #expect(mail.mailFrom == "no-reply@calltrace.test" && mail.recipients == ["boss@firm.example"])
        #expect(mail.login == "calltrace\u{0}mail-secret")
        let (head, body) = try #require(mail.data.range(of: "\r\n\r\n").map { (mail.data[..<$0.lowerBound], mail.data[$0.upperBound...]) })
        let headers = head.components(separatedBy: "\r\n")
        #expect(Array(headers.prefix(4)) == [
            "From: <no-reply@calltrace.test>", "To: <boss@firm.example>",
            "Subject: =?UTF-8?B?\(Data("Réinitialisation — your reset".utf8).base64EncodedString())?=", "Date: Thu, 03 Dec 2026 10:00:00 +0000",
        ])
        #expect(headers[4].hasPrefix("Message-ID: <") && headers[4].hasSuffix("@calltrace.test>"))
        #expect(Array(headers.dropFirst(5)) == ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"])
        #expect(body == "Hello,\r\n.a line starting with a dot\r\nBye")
    }

    @Test("Without a login nothing is sent for one; an ASCII subject goes as it is")
    func noLogin() async throws {
        let pki = try TemporaryPKI()
        let server = try FakeSMTPServer(mode: .implicitTLS, credentials: try pki.credentials(for: Self.mailServer))
        defer { server.stop() }
        let settings = settings("smtps://127.0.0.1:\(server.port)", pki: pki, login: false)
        try await blocking { try SMTPClient.send(MailMessage(to: "a@firm.example", subject: "Your invitation", body: "x"), settings: settings) }
        let mail = try #require(server.messages.first)
        #expect(mail.login == nil && !server.commands.contains { $0.uppercased().hasPrefix("AUTH") })
        #expect(mail.data.components(separatedBy: "\r\n").contains("Subject: Your invitation"))
    }

    @Test("A server that offers no STARTTLS on smtp:// hears EHLO and nothing else: no login, no address, no message; the error names the server only")
    func noTLSNoMail() async throws {
        let pki = try TemporaryPKI()
        let server = try FakeSMTPServer(mode: .plaintextWithoutSTARTTLS)
        defer { server.stop() }
        let settings = settings("smtp://127.0.0.1:\(server.port)", pki: pki)
        let error = await #expect(throws: MailError.self) {
            try await blocking { try SMTPClient.send(MailMessage(to: "boss@firm.example", subject: "s", body: "secret body"), settings: settings) }
        }
        let text = error?.description ?? ""
        #expect(text.hasPrefix("sending mail through smtp://127.0.0.1:\(server.port) failed: "), "\(text)")
        for leaked in ["boss@firm.example", "mail-secret", "calltrace", "secret body"] { #expect(!text.contains(leaked), "\(leaked)") }
        #expect(server.commands.map { String($0.prefix(4)).uppercased() }.filter { $0 != "QUIT" } == ["EHLO"], "\(server.commands)")
        #expect(server.messages.isEmpty)
    }

    @Test("A server whose certificate another CA signed is told nothing at all")
    func foreignServer() async throws {
        let pki = try TemporaryPKI(), other = try TemporaryPKI()
        let server = try FakeSMTPServer(mode: .implicitTLS, credentials: try other.credentials(for: Self.mailServer))
        defer { server.stop() }
        let settings = settings("smtps://127.0.0.1:\(server.port)", pki: pki)
        await #expect(throws: MailError.self) {
            try await blocking { try SMTPClient.send(MailMessage(to: "boss@firm.example", subject: "s", body: "b"), settings: settings) }
        }
        #expect(server.commands.isEmpty && server.messages.isEmpty)
    }

    @Test("Addresses and subjects that could end a header or a command are refused before any connection; so are settings that cannot work")
    func refusedBeforeConnecting() async throws {
        let pki = try TemporaryPKI()
        let server = try FakeSMTPServer(mode: .implicitTLS, credentials: try pki.credentials(for: Self.mailServer))
        defer { server.stop() }
        let settings = settings("smtps://127.0.0.1:\(server.port)", pki: pki)
        for (message, reason) in [
            (MailMessage(to: "boss@firm.example>\r\nRCPT TO:<x@evil.example", subject: "s", body: "b"), "the recipient is not a plain e-mail address"),
            (MailMessage(to: "Boss <boss@firm.example>", subject: "s", body: "b"), "the recipient is not a plain e-mail address"),
            (MailMessage(to: "no-at-sign", subject: "s", body: "b"), "the recipient is not a plain e-mail address"),
            (MailMessage(to: "boss@firm.example", subject: "line\r\nBcc: x@evil.example", body: "b"), "the subject has a line break"),
        ] {
            let error = #expect(throws: MailError.self) { try SMTPClient.send(message, settings: settings) }
            #expect(error?.description == reason)
        }
        #expect(server.commands.isEmpty, "no connection was made")
        #expect(MailAddress.isPlain("a.b+tag@firm.example") && !MailAddress.isPlain("a b@firm.example") && !MailAddress.isPlain("ä@firm.example"))

        let http = #expect(throws: MailError.self) { _ = try SMTPSettings(url: "https://mail.example", from: "a@b.test").validated() }
        #expect(http?.description == "smtp_url must start with smtps:// (implicit TLS) or smtp:// (STARTTLS), not https://mail.example")
        let from = #expect(throws: MailError.self) { _ = try SMTPSettings(url: "smtps://mail.example", from: "Robot <a@b.test>").validated() }
        #expect(from?.description == "smtp_from is not a plain e-mail address")
    }
}

@Suite("Outbound: secret files")
struct SecretFileTests {
    @Test("A secret file is read only when its owner alone can read it and it is a small regular file; no error repeats the secret")
    func permissions() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("calltrace-secrets-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        func file(_ name: String, _ contents: String, mode: Int) -> String {
            let path = folder.appendingPathComponent(name).path
            #expect(FileManager.default.createFile(atPath: path, contents: Data(contents.utf8), attributes: [.posixPermissions: mode]))
            return path
        }
        let good = file("good", "user\nhunter2-secret\n", mode: 0o600)
        #expect(try SecretFile.read(good) == "user\nhunter2-secret\n")
        #expect(try SecretFile.read(file("owner-only", "k", mode: 0o400)) == "k")
        let login = try SMTPSettings.credentials(from: good)
        #expect(login.username == "user" && login.password == "hunter2-secret")

        for (path, reason) in [
            (file("group", "hunter2-secret", mode: 0o640), "is accessible by group or others; run chmod 600"),
            (file("world", "hunter2-secret", mode: 0o604), "is accessible by group or others; run chmod 600"),
            (file("large", String(repeating: "hunter2-secret", count: 400), mode: 0o600), "is not a small regular file"),
            (folder.path, "is not a small regular file"),
            (folder.appendingPathComponent("missing").path, "cannot be read: No such file or directory"),
        ] {
            let error = #expect(throws: SecretFileError.self, "\(path)") { _ = try SecretFile.read(path) }
            #expect(error?.description.hasPrefix(path) == true && error?.description.contains(reason) == true, "\(error?.description ?? "")")
            #expect(error?.description.contains("hunter2") == false)
        }
        let link = folder.appendingPathComponent("link").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: good)
        #expect(throws: SecretFileError.self, "a link, even to a good file") { _ = try SecretFile.read(link) }

        let oneLine = file("one-line", "user-only\n", mode: 0o600)
        let error = #expect(throws: MailError.self) { _ = try SMTPSettings.credentials(from: oneLine) }
        #expect(error?.description == "smtp_credentials \(oneLine) must hold the user name on its first line and the password on its second")
        let open = file("open", "user\npass\n", mode: 0o644)
        let openError = #expect(throws: MailError.self) { _ = try SMTPSettings.credentials(from: open) }
        #expect(openError?.description == "smtp_credentials \(open) is accessible by group or others; run chmod 600 \(open)")
    }
}
