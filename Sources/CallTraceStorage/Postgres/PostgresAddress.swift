import CLibPQ
import Foundation

/// Where a service's PostgreSQL database is (`database: postgres://…`), checked before anything
/// connects: over TCP the server's certificate is verified against a CA file the operator names
/// and its name against the host (`sslmode=verify-full&sslrootcert=…`), and the password is read
/// from a file only the service's user can read, never from the URL. A Unix socket
/// (`host=/run/postgresql`) stays on the machine and needs no TLS.
///
///     postgres://calltrace_media@db.internal:5432/media?sslmode=verify-full&sslrootcert=/etc/calltrace/postgres-ca.crt
///
/// The connection asks for `verify-full` whatever the URL, the environment (`PGSSLMODE`) or a
/// service file say (`PostgresConnection`), and checks the socket it got: these checks are for
/// a clear refusal at start-up.
public struct PostgresAddress: Sendable, CustomStringConvertible {
    /// The URL as given (it holds no password).
    public let url: String
    /// A file holding the password on its first line, mode 0600 (as the services' other secrets
    /// are kept). Without one, libpq's own sources apply (`PGPASSWORD`; none, for a socket with
    /// peer authentication).
    public let passwordFile: String?

    /// Settings a URL may not hold: a password or a key's passphrase (secrets belong in files),
    /// and what would take the connection somewhere other than its `host` (`hostaddr`, a
    /// `service` file's entry).
    static let refusedSettings = ["password", "sslpassword", "hostaddr", "service"]

    /// - Throws: `StorageError` naming what to change: not a `postgres://` URL, a refused
    ///   setting in it, TLS short of `verify-full` with a CA file, a password file others can read.
    public init(url: String, passwordFile: String? = nil) throws {
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw StorageError("a PostgreSQL database is named by a postgres:// URL")
        }
        try PostgresConnection.loadLibrary()
        if let refused = try Self.refusedSettings.first(where: { try Self.value($0, in: url) != nil }) {
            throw StorageError(refused.hasSuffix("password")
                               ? "the database URL holds a \(refused): put the password in a password file, mode 0600, instead"
                               : "the database URL names a \(refused): name the server by host only")
        }
        // Every host a TCP one unless it is a socket folder (libpq: a host starting with "/").
        let hosts = (try Self.value("host", in: url) ?? "").split(separator: ",", omittingEmptySubsequences: false)
        if hosts.isEmpty || hosts.contains(where: { !$0.hasPrefix("/") }) {
            guard try Self.value("sslmode", in: url) == "verify-full" else {
                throw StorageError("the database URL must ask for sslmode=verify-full: PostgreSQL over TCP is reached only over TLS, "
                                   + "its certificate checked and its name matched")
            }
            var info = stat()
            guard let ca = try Self.value("sslrootcert", in: url), ca != "system", stat(ca, &info) == 0, info.st_mode & S_IFMT == S_IFREG,
                  FileManager.default.isReadableFile(atPath: ca) else {
                throw StorageError("the database URL must name a readable CA file in sslrootcert=… (the CA that signed the server's certificate)")
            }
        }
        if let passwordFile { _ = try PostgresConnection.password(in: passwordFile) }
        self.url = url
        self.passwordFile = passwordFile
    }

    public var description: String { url }

    /// The server `url` names (its hosts and ports, as libpq reads them); nil for a URL libpq
    /// cannot read.
    public static func server(of url: String) -> String? {
        do {
            try PostgresConnection.loadLibrary()
            return "\(try value("host", in: url) ?? "")|\(try value("port", in: url) ?? "5432")"
        } catch {
            return nil
        }
    }

    /// The value `keyword` takes in `url`, as libpq reads it.
    static func value(_ keyword: String, in url: String) throws -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        switch ct_pq_conninfo_value(url, keyword, &buffer, buffer.count) {
        case 1: return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        case 0: return nil
        case -2: throw StorageError("the database URL's \(keyword) is longer than 4 KiB")
        default: throw StorageError("the database URL is not one libpq can read (see the `database` setting's example)")
        }
    }
}
