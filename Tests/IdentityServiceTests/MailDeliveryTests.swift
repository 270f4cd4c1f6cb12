import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import Foundation
import IdentityDomain
import Testing

/// Tokens reach users by e-mail over SMTP with TLS, through the real libcurl adapter, against a
/// local mail server speaking SMTP.
@Suite("Identity: invitation and reset e-mails over SMTP with TLS")
struct MailDeliveryTests {
    typealias Identity = Calltrace_Identity_V1_IdentityService

    /// A mail login file, mode 0600, in `pki`'s folder.
    func loginFile(in pki: TemporaryPKI) throws -> String {
        let path = pki.directory.appendingPathComponent("smtp-login").path
        try #require(FileManager.default.createFile(atPath: path, contents: Data("calltrace\nmail-secret\n".utf8), attributes: [.posixPermissions: 0o600]))
        return path
    }

    func start(smtpURL: String, mailPKI: TemporaryPKI) async throws -> InProcessService {
        let login = try loginFile(in: mailPKI)
        return try await InProcessService.start(IdentityService.self) {
            $0[IdentitySettings.self].mailOutbox = nil
            $0[IdentitySettings.self].smtpURL = smtpURL
            $0[IdentitySettings.self].smtpFrom = "no-reply@calltrace.test"
            $0[IdentitySettings.self].smtpCA = mailPKI.caPath
            $0[IdentitySettings.self].smtpCredentials = login
            $0[IdentitySettings.self].mailLinkBase = "https://app.firm.test"
        }
    }

    @Test("An invitation is e-mailed over TLS with the mail login; its link's token redeems; the token is never stored or logged in clear")
    func invitationByMail() async throws {
        let mailPKI = try TemporaryPKI()
        let server = try FakeSMTPServer(mode: .implicitTLS, credentials: try mailPKI.credentials(for: TemporaryPKI.identity("service", "mail")))
        let identity = try await start(smtpURL: "smtps://127.0.0.1:\(server.port)", mailPKI: mailPKI)
        let operatorClient = try identity.client(identity: TemporaryPKI.identity("operator", "ops"))
        let created = try await operatorClient.unary(Identity.createOrganization, .with {
            $0.name = "Mail Firm LLP"; $0.firstAdminEmail = "Boss@Firm.example"; $0.firstAdminDisplayName = "Boss"
        })
        #expect(await eventually { server.messages.count == 1 })
        let mail = try #require(server.messages.first)
        #expect(mail.mailFrom == "no-reply@calltrace.test")
        #expect(mail.recipients == ["boss@firm.example"])
        #expect(mail.login == "calltrace\u{0}mail-secret")
        #expect(mail.data.contains("Subject: Your CallTrace invitation"))
        #expect(mail.data.contains("To: <boss@firm.example>"))
        let link = try #require(mail.data.components(separatedBy: "\r\n").first { $0.hasPrefix("https://app.firm.test/accept-invitation?token=") })
        let token = String(link.dropFirst("https://app.firm.test/accept-invitation?token=".count))
        #expect(token.count >= 40)

        let web = try identity.client()
        let redeemed = try await web.unary(Identity.redeemInvitation, .with {
            $0.invitationToken = token; $0.password = "correct horse battery staple"
        }, options: .endUser)
        #expect(redeemed.orgID == created.orgID)
        // Sent, so the job is gone; the token was only ever sealed in the database, and never logged.
        #expect(try await identity.instance.jobs.list().filter { $0.kind == "identity.mail" }.isEmpty)
        await identity.stop()
        for file in [identity.setup.database, identity.setup.database + "-wal"] where FileManager.default.fileExists(atPath: file) {
            #expect(try !Data(contentsOf: URL(fileURLWithPath: file)).contains(Data(token.utf8)), "\(file) holds the token")
        }
        #expect(!identity.log.text.contains(token))
        #expect(!identity.log.text.contains("mail-secret"))
    }

    @Test("An alert is e-mailed over TLS like a token: sealed while it waits, its link on the web app, no caller's number; a day late it is dropped")
    func alertByMail() async throws {
        let mailPKI = try TemporaryPKI()
        let server = try FakeSMTPServer(mode: .implicitTLS, credentials: try mailPKI.credentials(for: TemporaryPKI.identity("service", "mail")))
        let identity = try await start(smtpURL: "smtps://127.0.0.1:\(server.port)", mailPKI: mailPKI)
        let created = try await identity.client(identity: TemporaryPKI.identity("operator", "ops")).unary(Identity.createOrganization, .with {
            $0.name = "Mail Firm LLP"; $0.firstAdminEmail = "boss@firm.example"
        })
        #expect(await eventually { server.messages.count == 1 })
        let invitationMail = try #require(server.messages.first)
        let link = try #require(invitationMail.data.components(separatedBy: "\r\n").first { $0.contains("accept-invitation?token=") })
        let web = try identity.client()
        _ = try await web.unary(Identity.redeemInvitation, .with {
            $0.invitationToken = String(link.split(separator: "=").last!); $0.password = "correct horse battery staple"
        }, options: .endUser)
        let admin = try await web.unary(Identity.login, .with {
            $0.orgID = created.orgID; $0.email = "boss@firm.example"; $0.password = "correct horse battery staple"
        }, options: .endUser).token
        _ = try await web.unary(Calltrace_Identity_V1_AlertService.setAlertPreferences, .with { $0.orgID = created.orgID; $0.enabled = [.newEnquiry] },
                                options: try bearer(admin))

        let service = try identity.client(identity: TemporaryPKI.identity("service", "transcript"))
        let summary = "Injured at work on Monday; wants to claim."
        func tell(_ key: String) async throws -> UInt32 {
            try await service.unary(Calltrace_Identity_V1_AlertService.notify, .with {
                $0.orgID = created.orgID; $0.kind = .newEnquiry; $0.idempotencyKey = key
                $0.fields = ["call_id": "call_42", "source": "Google Ads", "started_at_unix_ms": "1764943200000", "summary": summary]
            }).recipients
        }
        #expect(try await tell("transcript:new_enquiry:call_42") == 1)
        #expect(await eventually { server.messages.count == 2 })
        let mail = try #require(server.messages.last)
        #expect(mail.recipients == ["boss@firm.example"])
        #expect(mail.data.contains("Subject: New enquiry: Google Ads, Fri 5 Dec 14:00"))
        #expect(mail.data.contains("https://app.firm.test/calls/call_42") && mail.data.contains(summary))
        #expect(await eventually { (try? await identity.instance.jobs.list().filter { $0.kind == "identity.alert_mail" }.isEmpty) ?? false },
                "sent, so gone")

        // With the mail server away for more than a day, the alert is dropped, not sent late.
        server.refuseConnections = true
        #expect(try await tell("transcript:new_enquiry:call_43") == 1)
        #expect(await eventually { (try? await identity.instance.jobs.list().first { $0.kind == "identity.alert_mail" }?.attempts ?? 0) ?? 0 >= 1 })
        identity.clock.advance(by: .seconds(86_400 + 60))
        server.refuseConnections = false
        #expect(await eventually { (try? await identity.instance.jobs.list().filter { $0.kind == "identity.alert_mail" }.isEmpty) ?? false })
        #expect(server.messages.count == 2, "a day late, dropped")
        await identity.stop()
        for file in [identity.setup.database, identity.setup.database + "-wal"] where FileManager.default.fileExists(atPath: file) {
            #expect(try !Data(contentsOf: URL(fileURLWithPath: file)).contains(Data(summary.utf8)), "\(file) holds the summary in clear")
        }
    }

    @Test("A mail server that does not offer TLS gets neither the login nor the message; the e-mail waits and is retried")
    func noTLSNoMail() async throws {
        let mailPKI = try TemporaryPKI()
        let server = try FakeSMTPServer(mode: .plaintextWithoutSTARTTLS)
        let identity = try await start(smtpURL: "smtp://127.0.0.1:\(server.port)", mailPKI: mailPKI)
        let operatorClient = try identity.client(identity: TemporaryPKI.identity("operator", "ops"))
        _ = try await operatorClient.unary(Identity.createOrganization, .with { $0.name = "Plain Firm"; $0.firstAdminEmail = "boss@firm.example" })
        #expect(await eventually {
            (try? await identity.instance.jobs.list().first { $0.kind == "identity.mail" }?.attempts ?? 0) ?? 0 >= 1
        })
        let job = try #require(try await identity.instance.jobs.list().first { $0.kind == "identity.mail" })
        #expect(job.state == "ready", "waiting for its retry")
        #expect(job.lastError?.contains("SSL") == true || job.lastError?.contains("TLS") == true, "\(job.lastError ?? "")")
        #expect(!(job.lastError ?? "").contains("boss@firm.example"))
        #expect(server.commands.contains { $0.uppercased().hasPrefix("EHLO") })
        #expect(!server.commands.contains { ["AUTH", "MAIL", "RCPT", "DATA"].contains(String($0.prefix(4)).uppercased()) })
        #expect(server.messages.isEmpty)
        await identity.stop()
    }

    @Test("A mail server whose certificate another CA signed is refused")
    func foreignMailServer() async throws {
        let mailPKI = try TemporaryPKI(), otherPKI = try TemporaryPKI()
        let server = try FakeSMTPServer(mode: .implicitTLS, credentials: try otherPKI.credentials(for: TemporaryPKI.identity("service", "mail")))
        let identity = try await start(smtpURL: "smtps://127.0.0.1:\(server.port)", mailPKI: mailPKI)
        let operatorClient = try identity.client(identity: TemporaryPKI.identity("operator", "ops"))
        _ = try await operatorClient.unary(Identity.createOrganization, .with { $0.name = "Firm"; $0.firstAdminEmail = "boss@firm.example" })
        #expect(await eventually {
            (try? await identity.instance.jobs.list().first { $0.kind == "identity.mail" }?.attempts ?? 0) ?? 0 >= 1
        })
        #expect(server.messages.isEmpty)
        #expect(server.commands.isEmpty, "nothing is said to a server that failed verification")
        await identity.stop()
    }

    @Test("Identity refuses to start with no delivery, with both, or with SMTP missing its sender or link base")
    func deliveryConfiguration() async throws {
        let cases: [(String, (inout ServiceConfiguration) -> Void)] = [
            ("configure one", { $0[IdentitySettings.self].mailOutbox = nil }),
            ("both configured", { $0[IdentitySettings.self].smtpURL = "smtps://127.0.0.1:1"; $0[IdentitySettings.self].smtpFrom = "a@b.test"
                                  $0[IdentitySettings.self].mailLinkBase = "https://x.test" }),
            ("needs smtp_from", { $0[IdentitySettings.self].mailOutbox = nil; $0[IdentitySettings.self].smtpURL = "smtps://127.0.0.1:1"
                                  $0[IdentitySettings.self].mailLinkBase = "https://x.test" }),
            ("needs mail_link_base", { $0[IdentitySettings.self].mailOutbox = nil; $0[IdentitySettings.self].smtpURL = "smtps://127.0.0.1:1"
                                       $0[IdentitySettings.self].smtpFrom = "a@b.test" }),
        ]
        for (expected, adjust) in cases {
            await #expect(throws: ConfigurationError.self, "\(expected)") {
                do {
                    _ = try await InProcessService.start(IdentityService.self, adjust: adjust)
                } catch let error as ConfigurationError {
                    #expect(error.message.contains(expected), "\(error.message)")
                    throw error
                }
            }
        }
    }
}
