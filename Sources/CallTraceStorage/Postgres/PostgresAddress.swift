import CLibPQ
import Foundation

/// Where a service's PostgreSQL database is (`database: postgres://…`), checked before anything
/// connects: over TCP the server's certificate is verified against a CA the operator names and its
/// name against the host (`sslmode=verify-full&sslrootcert=…`), and the password is read from a
/// file only the service's user can read, never from the URL. A Unix socket (`host=/run/postgresql`)
/// stays on the machine and needs no TLS.
///
///     postgres://calltrace_media@db.internal:5432/media?sslmode=verify-full&sslrootcert=/etc/calltrace/postgres-ca.crt
public struct PostgresAddress: Sendable, CustomStringConvertible {
    /// The URL as given (it holds no password).
    public let url: String
    /// A file holding the password on its first line, mode 0600 (as the services' other secrets
    /// are kept). Without one, libpq's own sources apply (`PGPASSWORD`; none, for a socket with
    /// peer authentication).
    public let passwordFile: String?

    /// - Throws: `StorageError` naming what to change: not a `postgres://` URL, a password in it,
    ///   TLS short of `verify-full` with a CA file, a password file others can read.
    public init(url: String, passwordFile: String? = nil) throws {
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw StorageError("a PostgreSQL database is named by a postgres:// URL")
        }
        try PostgresConnection.loadLibrary()
        func value(_ keyword: String) throws -> String? {
            var buffer = [CChar](repeating: 0, count: 4096)
            switch ct_pq_conninfo_value(url, keyword, &buffer, buffer.count) {
            case 1: return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            case 0: return nil
            default: throw StorageError("the database URL is not one libpq can read (see the `database` setting's example)")
            }
        }
        guard try value("password") == nil else {
            throw StorageError("the database URL holds a password: put it in a password file, mode 0600, instead")
        }
        // Every host a TCP one unless it is a socket folder (libpq: a host starting with "/").
        let hosts = (try value("host") ?? "").split(separator: ",")
        if hosts.isEmpty || hosts.contains(where: { !$0.hasPrefix("/") }) {
            guard try value("sslmode") == "verify-full" else {
                throw StorageError("the database URL must ask for sslmode=verify-full: PostgreSQL over TCP is reached only over TLS, "
                                   + "its certificate checked and its name matched")
            }
            guard let ca = try value("sslrootcert"), ca != "system", FileManager.default.isReadableFile(atPath: ca) else {
                throw StorageError("the database URL must name a readable CA file in sslrootcert=… (the CA that signed the server's certificate)")
            }
        }
        if let passwordFile {
            var info = stat()
            guard lstat(passwordFile, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
                throw StorageError("the database password file \(passwordFile) is missing or not a regular file")
            }
            guard info.st_mode & 0o077 == 0 else {
                throw StorageError("the database password file \(passwordFile) can be read by others: chmod 600 it")
            }
        }
        self.url = url
        self.passwordFile = passwordFile
    }

    public var description: String { url }
}
