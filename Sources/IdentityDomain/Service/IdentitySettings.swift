public import CallTraceServiceHost

/// Identity's own settings (besides every service's: `ServiceConfiguration`), read from the
/// config file, `CALLTRACE_*` variables and flags like those; listed in services/identity/README.md.
public struct IdentitySettings: ServiceSettings, Equatable {
    /// The folder where invitation and reset tokens are delivered as files (a development
    /// mailbox). Identity needs this or `smtpURL`. Default none.
    public var mailOutbox: String?
    /// E-mail delivery of invitation and reset tokens, instead of `mailOutbox`:
    /// `smtps://host:465` (implicit TLS) or `smtp://host:587` (STARTTLS, required). Default none.
    public var smtpURL: String?
    /// The sender address of those e-mails. Required with `smtpURL`.
    public var smtpFrom: String?
    /// PEM CA certificates for the mail server; default the system's.
    public var smtpCA: String?
    /// A file (mode 0600) holding the mail server's user name on its first line and password on
    /// its second. Default none (no login).
    public var smtpCredentials: String?
    /// The web backend's base URL the e-mailed links point at (`<base>/accept-invitation?token=…`,
    /// `<base>/reset-password?token=…`). Required with `smtpURL`.
    public var mailLinkBase: String?
    /// The operators (names, as in `spiffe://<domain>/operator/<name>`) who may create and suspend
    /// organisations; empty lets every operator certificate do so. Default empty.
    public var adminOperators: [String] = []
    /// log2 of scrypt's N for new password hashes. Not a setting (no file key, variable or flag):
    /// every deployment hashes at 15; only in-process tests lower it (`lowerCostsForTests`) to keep
    /// the suite fast, running the same code.
    public var passwordHashLogN = 15

    public init() {}

    public static let settings: [Setting<IdentitySettings>] = [
        .text("mail_outbox", help: "Folder where invitation and reset tokens are delivered as files (development).") { $0.mailOutbox = $1 },
        .text("smtp_url", help: "E-mail tokens through smtps://host:465 or smtp://host:587 (STARTTLS).",
              check: { $0.hasPrefix("smtps://") || $0.hasPrefix("smtp://") ? nil : "start with smtps:// (implicit TLS) or smtp:// (STARTTLS)" }) { $0.smtpURL = $1 },
        .text("smtp_from", help: "Sender address of those e-mails.") { $0.smtpFrom = $1 },
        .text("smtp_ca", help: "PEM CA certificates for the mail server.") { $0.smtpCA = $1 },
        .text("smtp_credentials", help: "File (0600) with the mail login: user, then password, one per line.") { $0.smtpCredentials = $1 },
        .text("mail_link_base", help: "https:// base of the links in e-mails.", check: { $0.hasPrefix("https://") ? nil : "be an https:// URL" }) {
            $0.mailLinkBase = $1
        },
        .names("admin_operators", of: .operator, help: "Operators who may create and suspend organisations (comma-separated; default all).") {
            $0.adminOperators = $1
        },
    ]

    public mutating func lowerCostsForTests() { passwordHashLogN = 10 }
}
