import CallTraceKeys
import CallTraceOutbound
import CallTraceServiceHost
import CallTraceStorage
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A single-use token for a user: an invitation or a password reset. Only identity's own
/// delivery ever sees it; it is never returned to an operator or a gateway.
struct TokenMessage: Sendable, Codable, Equatable {
    enum Kind: String, Sendable, Codable { case invitation, passwordReset = "password_reset" }
    let kind: Kind
    let orgID: String
    let userID: String
    let email: String
    let token: String
    let expiresAtUnixMs: Int64
}

/// An alert put into words for one person (`Alert.words`): only identity writes its text.
struct AlertMessage: Sendable, Codable, Equatable {
    /// Always "alert" (beside a token message's "invitation" or "password_reset" in the outbox).
    var kind = "alert"
    /// The alert's kind, `missed_call`, `new_enquiry`, `subject_requests_due` or `weekly_summary`.
    let alert: String
    let orgID: String
    let userID: String
    let email: String
    let subject: String
    let body: String
    let createdAtUnixMs: Int64
}

/// How identity hands mail to its users: single-use tokens, and the alerts they chose.
///
/// `deliver` runs inside the database transaction that creates the token or records the alert
/// (`db`), so either is stored and handed over, or neither: it must be quick and local.
protocol TokenDelivery: Sendable {
    func deliver(_ message: TokenMessage, in db: Connection) throws
    func deliver(_ alert: AlertMessage, in db: Connection) throws
}

/// Development and test delivery (`mail_outbox`): each message is one JSON file, mode 0600,
/// created exclusively in a folder that stands in for the users' mailboxes (`make run` points it
/// at `var/dev/mail`). The folder must exist; identity refuses to start otherwise.
struct FileOutboxDelivery: TokenDelivery {
    let folder: String
    private static let sequence = Atomic<Int>(0)

    func deliver(_ message: TokenMessage, in db: Connection) throws {
        try file(message, kind: message.kind.rawValue, user: message.userID)
    }

    func deliver(_ alert: AlertMessage, in db: Connection) throws {
        try file(alert, kind: "alert", user: alert.userID)
    }

    private func file(_ message: some Encodable, kind: String, user: String) throws {
        // Names sort in the order of delivery: the wall-clock microsecond, then a counter.
        let order = String(format: "%017lld-%06d", Int64(Date().timeIntervalSince1970 * 1_000_000), Self.sequence.add(1, ordering: .relaxed).newValue % 1_000_000)
        let name = "\(order)-\(kind)-\(user)-\(UUID().uuidString.prefix(8)).json"
        let path = (folder as NSString).appendingPathComponent(name)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = try encoder.encode(message)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DeliveryError("cannot create \(name) in the mail outbox \(folder): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let written = body.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == body.count, fsync(fd) == 0 else { throw DeliveryError("cannot write \(name) in the mail outbox \(folder)") }
    }

    /// Checks the folder at start-up.
    static func checked(folder: String) throws -> FileOutboxDelivery {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue,
              access(folder, W_OK) == 0 else {
            throw DeliveryError("mail_outbox \(folder) is not a writable folder; create it (mode 0700) or point mail_outbox elsewhere")
        }
        return FileOutboxDelivery(folder: folder)
    }
}

struct DeliveryError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Production delivery: e-mail over SMTP with TLS (`smtp_url`), through libcurl.
///
/// In the token's transaction a durable job is enqueued whose payload — the message, token
/// included — is sealed under the organisation's key and bound to the job, so the token is never
/// in the database in clear. The job worker sends it off the I/O threads, retrying with backoff
/// while the mail server is away; a token that expired meanwhile is not sent. The job row, and
/// with it the sealed token, is deleted once sent.
struct MailDelivery: TokenDelivery, DurableJobHandler {
    let settings: SMTPSettings
    /// Where the links in the e-mails point: the web backend's pages for accepting an
    /// invitation and resetting a password (`mail_link_base`).
    let linkBase: String
    let jobs: JobQueue
    let keys: KeyRing
    let clock: any WallClock
    /// Where the SMTP exchange runs: never on a job worker's cooperative thread.
    var blocking = BlockingPool.shared

    /// A message to send, sealed under its organisation's key (the same JSON as before payloads were typed).
    struct SealedMail: DurableJob {
        static let kind = "identity.mail"
        let org: String
        let sealed: Data
    }

    /// An alert, sealed like a token's message and sent the same way; one that could not be sent
    /// within a day is dropped (a missed call's alert is of no use a week later).
    struct SealedAlert: DurableJob {
        static let kind = "identity.alert_mail"
        let org: String
        let sealed: Data
    }

    static let alertStaleMS: Int64 = 86_400_000

    func deliver(_ alert: AlertMessage, in db: Connection) throws {
        let key = "alert-mail:\(alert.userID):\(UUID().uuidString.lowercased())"
        let sealed = try keys.seal(try JSONEncoder().encode(alert), org: alert.orgID, table: "jobs", column: "payload", row: key)
        try jobs.enqueue(SealedAlert(org: alert.orgID, sealed: sealed), idempotencyKey: key, in: db)
    }

    /// The alert mails' worker (`register` it beside this one).
    struct AlertSender: DurableJobHandler {
        let delivery: MailDelivery

        func run(_ envelope: SealedAlert, job: Job) async throws -> JobOutcome {
            let alert: AlertMessage
            do {
                let opened = try delivery.keys.open(envelope.sealed, org: envelope.org, table: "jobs", column: "payload", row: job.idempotencyKey)
                alert = try JSONDecoder().decode(AlertMessage.self, from: opened)
            } catch {
                throw PermanentJobFailure("the alert cannot be opened (its organisation's keys are gone, or it was altered)")
            }
            guard delivery.clock.nowUnixMs - alert.createdAtUnixMs < MailDelivery.alertStaleMS else { return .done }
            let mail = MailMessage(to: alert.email, subject: alert.subject, body: alert.body)
            let settings = delivery.settings
            try await delivery.blocking.run { try SMTPClient.send(mail, settings: settings) }
            return .done
        }
    }

    func deliver(_ message: TokenMessage, in db: Connection) throws {
        let key = "mail:\(message.kind.rawValue):\(message.userID):\(UUID().uuidString.lowercased())"
        let sealed = try keys.seal(try JSONEncoder().encode(message), org: message.orgID, table: "jobs", column: "payload", row: key)
        try jobs.enqueue(SealedMail(org: message.orgID, sealed: sealed), idempotencyKey: key, in: db)
    }

    func run(_ envelope: SealedMail, job: Job) async throws -> JobOutcome {
        let message: TokenMessage
        do {
            let opened = try keys.open(envelope.sealed, org: envelope.org, table: "jobs", column: "payload", row: job.idempotencyKey)
            message = try JSONDecoder().decode(TokenMessage.self, from: opened)
        } catch {
            throw PermanentJobFailure("the message cannot be opened (its organisation's keys are gone, or it was altered)")
        }
        guard message.expiresAtUnixMs > clock.nowUnixMs else { return .done }  // too late to be of use
        let mail = compose(message)
        let settings = self.settings
        try await blocking.run { try SMTPClient.send(mail, settings: settings) }
        return .done
    }

    func compose(_ message: TokenMessage) -> MailMessage {
        let expiry = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(message.expiresAtUnixMs) / 1000))
        let base = linkBase.hasSuffix("/") ? String(linkBase.dropLast()) : linkBase
        switch message.kind {
        case .invitation:
            return MailMessage(to: message.email, subject: "Your CallTrace invitation", body: """
                You have been invited to your firm's CallTrace account.

                Choose your password here (the link works once, until \(expiry) UTC):

                \(base)/accept-invitation?token=\(message.token)

                If you were not expecting this, ignore this e-mail.
                """)
        case .passwordReset:
            return MailMessage(to: message.email, subject: "Reset your CallTrace password", body: """
                Someone asked to reset the password of your CallTrace account.

                Choose a new password here (the link works once, until \(expiry) UTC):

                \(base)/reset-password?token=\(message.token)

                If it was not you, ignore this e-mail: your password stays as it is.
                """)
        }
    }
}
