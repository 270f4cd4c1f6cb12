import Foundation

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

/// How identity hands a token to its user.
///
/// `deliver` runs inside the database transaction that creates the token, so a token is either
/// stored (as its hash) and handed over, or neither: it must be quick and local.
protocol TokenDelivery: Sendable {
    func deliver(_ message: TokenMessage) throws
}

/// Development and test delivery (`mail_outbox`): each message is one JSON file, mode 0600,
/// created exclusively in a folder that stands in for the users' mailboxes (`make run` points it
/// at `var/dev/mail`). The folder must exist; identity refuses to start otherwise.
struct FileOutboxDelivery: TokenDelivery {
    let folder: String

    func deliver(_ message: TokenMessage) throws {
        let name = "\(message.expiresAtUnixMs)-\(message.kind.rawValue)-\(message.userID)-\(UUID().uuidString.prefix(8)).json"
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
