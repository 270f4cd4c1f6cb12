import Foundation

/// A throw-away PostgreSQL 15 server from Debian's packages (postgresql-15) in a temporary
/// folder: initdb, TLS with a certificate of `pki`'s CA (`localhost`, 127.0.0.1), a password
/// (SCRAM) for the user `calltrace`, listening on 127.0.0.1 only. PostgreSQL refuses to run as
/// root, so under root (CI) it runs as the `postgres` user the package creates.
///
/// `stop()` ends it and removes the folder; `withTemporaryPostgres` makes sure of it.
public final class TemporaryPostgres: Sendable {
    public static let bin = "/usr/lib/postgresql/15/bin"
    public let folder: String
    public let port: Int
    /// `postgres://calltrace@localhost:<port>/postgres?sslmode=verify-full&sslrootcert=<the CA>`
    public let url: String
    /// The user's password in a file (mode 0600), as `PostgresAddress` reads it.
    public let passwordFile: String
    public let password: String
    private let runAs: [String]

    /// Starts a server: about two seconds.
    public init(pki: TemporaryPKI) async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.bin + "/initdb") else {
            throw PostgresHarnessError("PostgreSQL 15 is not installed (apt-get install postgresql-15; make deps does)")
        }
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("calltrace-pg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder + "/data", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: folder)
        password = UUID().uuidString
        let credentials = try pki.credentials(for: TemporaryPKI.identity("service", "postgres"))
        for (name, source) in [("server.crt", credentials.certificateChainPath), ("server.key", credentials.privateKeyPath)] {
            try FileManager.default.copyItem(atPath: source, toPath: "\(folder)/\(name)")
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: "\(folder)/\(name)")
        }
        try Data("\(password)\n".utf8).write(to: URL(fileURLWithPath: folder + "/initdb-password"))
        if getuid() == 0 {
            guard let user = getpwnam("postgres") else { throw PostgresHarnessError("no postgres user to run PostgreSQL as (postgresql-15 creates it)") }
            for path in [folder, folder + "/data", folder + "/server.crt", folder + "/server.key", folder + "/initdb-password"] {
                guard chown(path, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else { throw PostgresHarnessError("cannot hand \(path) to postgres") }
            }
            runAs = ["/usr/sbin/runuser", "-u", "postgres", "--"]
        } else {
            runAs = []
        }
        try await Self.run(runAs, Self.bin + "/initdb", ["-D", folder + "/data", "--no-sync", "--no-instructions", "-A", "scram-sha-256",
                                                          "-U", "calltrace", "--pwfile=\(folder)/initdb-password"])
        try? FileManager.default.removeItem(atPath: folder + "/initdb-password")
        var started: Int?
        for _ in 0..<5 where started == nil {
            let port = try freePort()
            let options = "-c listen_addresses=127.0.0.1 -c port=\(port) -c unix_socket_directories=\(folder) -c ssl=on "
                + "-c ssl_cert_file=\(folder)/server.crt -c ssl_key_file=\(folder)/server.key -c fsync=off -c full_page_writes=off"
            // -w: pg_ctl returns once the server accepts connections (or has failed).
            if (try? await Self.run(runAs, Self.bin + "/pg_ctl", ["start", "-w", "-t", "120", "-D", folder + "/data", "-l", folder + "/server.log", "-o", options])) != nil {
                started = port
            }
        }
        guard let started else {
            let log = (try? String(contentsOfFile: folder + "/server.log", encoding: .utf8)) ?? ""
            throw PostgresHarnessError("PostgreSQL did not start: \(log.suffix(2000))")
        }
        port = started
        url = "postgres://calltrace@localhost:\(port)/postgres?sslmode=verify-full&sslrootcert=\(pki.caPath)"
        passwordFile = pki.directory.appendingPathComponent("pgpass-\(UUID().uuidString)").path
        guard FileManager.default.createFile(atPath: passwordFile, contents: Data("\(password)\n".utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw PostgresHarnessError("cannot write \(passwordFile)")
        }
    }

    /// Stops the server at once (nothing in it is kept) and removes its folder.
    public func stop() async {
        _ = try? await Self.run(runAs, Self.bin + "/pg_ctl", ["stop", "-m", "immediate", "-w", "-D", folder + "/data"])
        try? FileManager.default.removeItem(atPath: folder)
    }

    private static func run(_ runAs: [String], _ program: String, _ arguments: [String]) async throws {
        let command = runAs + [program] + arguments
        let result = try await CallTraceTestSupport.run(command[0], Array(command.dropFirst()))
        guard result.status == 0 else {
            throw PostgresHarnessError("\((program as NSString).lastPathComponent) failed (\(result.status)): \(result.stderr.suffix(2000))")
        }
    }
}

/// Runs `body` with a new server, stopped afterwards whatever `body` does.
public func withTemporaryPostgres<T>(pki: TemporaryPKI, _ body: (TemporaryPostgres) async throws -> T) async throws -> T {
    let server = try await TemporaryPostgres(pki: pki)
    do {
        let result = try await body(server)
        await server.stop()
        return result
    } catch {
        await server.stop()
        throw error
    }
}

public struct PostgresHarnessError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
