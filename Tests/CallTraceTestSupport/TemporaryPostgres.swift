import CallTraceStorage
import Foundation

/// A throw-away PostgreSQL 15 server from Debian's packages (postgresql-15) in a temporary
/// folder: initdb, TLS with a certificate of `pki`'s CA (`localhost`, 127.0.0.1), a password
/// (SCRAM) for the user `calltrace`, listening on 127.0.0.1 only. PostgreSQL refuses to run as
/// root, so under root (CI) it runs as the `postgres` user the package creates.
///
/// `stop()` ends it and removes the folder; `withTemporaryPostgres` makes sure of it.
public final class TemporaryPostgres: TestPostgresServer {
    public static let bin = "/usr/lib/postgresql/15/bin"
    public let folder: String
    public let port: Int
    /// `postgres://calltrace@localhost:<port>/postgres?sslmode=verify-full&sslrootcert=<the CA>`
    public let url: String
    /// The user's password in a file (mode 0600), as `PostgresAddress` reads it.
    public let passwordFile: String
    public let password: String
    private let runAs: [String]

    /// Starts a server: about two seconds. On any failure what was started is stopped and removed.
    public init(pki: TemporaryPKI) async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.bin + "/initdb") else {
            throw PostgresHarnessError("PostgreSQL 15 is not installed (apt-get install postgresql-15; make deps does)")
        }
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("calltrace-pg-\(UUID().uuidString)").path
        password = UUID().uuidString
        if getuid() == 0 {
            guard getpwnam("postgres") != nil else { throw PostgresHarnessError("no postgres user to run PostgreSQL as (postgresql-15 creates it)") }
            runAs = ["/usr/sbin/runuser", "-u", "postgres", "--"]
        } else {
            runAs = []
        }
        do {
            port = try await Self.start(folder: folder, password: password, pki: pki, runAs: runAs)
        } catch {
            await Self.stop(folder: folder, runAs: runAs)
            throw error
        }
        url = "postgres://calltrace@localhost:\(port)/postgres?sslmode=verify-full&sslrootcert=\(pki.caPath)"
        passwordFile = pki.directory.appendingPathComponent("pgpass-\(UUID().uuidString)").path
        guard FileManager.default.createFile(atPath: passwordFile, contents: Data("\(password)\n".utf8), attributes: [.posixPermissions: 0o600]) else {
            await Self.stop(folder: folder, runAs: runAs)
            throw PostgresHarnessError("cannot write \(passwordFile)")
        }
    }

    /// initdb, the server's settings in its postgresql.conf (no shell quoting: pg_ctl's -o goes
    /// through one), then pg_ctl start on a free port; returns the port.
    private static func start(folder: String, password: String, pki: TemporaryPKI, runAs: [String]) async throws -> Int {
        try FileManager.default.createDirectory(atPath: folder + "/data", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: folder)
        let credentials = try pki.credentials(for: TemporaryPKI.identity("service", "postgres"))
        for (name, source) in [("server.crt", credentials.certificateChainPath), ("server.key", credentials.privateKeyPath)] {
            try FileManager.default.copyItem(atPath: source, toPath: "\(folder)/\(name)")
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: "\(folder)/\(name)")
        }
        try Data("\(password)\n".utf8).write(to: URL(fileURLWithPath: folder + "/initdb-password"))
        if !runAs.isEmpty, let user = getpwnam("postgres") {
            for path in [folder, folder + "/data", folder + "/server.crt", folder + "/server.key", folder + "/initdb-password"] {
                guard chown(path, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else { throw PostgresHarnessError("cannot hand \(path) to postgres") }
            }
        }
        try await run(runAs, folder: folder, "initdb", ["-D", folder + "/data", "--no-sync", "--no-instructions", "--locale=C", "-E", "UTF8",
                                                        "-A", "scram-sha-256", "-U", "calltrace", "--pwfile=\(folder)/initdb-password"])
        try? FileManager.default.removeItem(atPath: folder + "/initdb-password")
        func quoted(_ value: String) -> String { "'" + value.replacingOccurrences(of: "'", with: "''") + "'" }
        let settings = ["listen_addresses = 'localhost'", "unix_socket_directories = \(quoted(folder))", "ssl = on",
                        "ssl_cert_file = \(quoted(folder + "/server.crt"))", "ssl_key_file = \(quoted(folder + "/server.key"))",
                        "fsync = off", "full_page_writes = off"]
        let configuration = FileHandle(forWritingAtPath: folder + "/data/postgresql.conf")
        configuration?.seekToEndOfFile()
        configuration?.write(Data(("\n" + settings.joined(separator: "\n") + "\n").utf8))
        try configuration?.close()
        var reason = ""
        for _ in 0..<5 {
            let port = try freePort()
            // -w: pg_ctl returns once the server accepts connections (or has failed).
            do {
                try await run(runAs, folder: folder, "pg_ctl", ["start", "-w", "-t", "300", "-D", folder + "/data", "-l", folder + "/server.log",
                                                                "-o", "-p \(port)"])
                return port
            } catch {
                reason = "\(error)"
                // A server still coming up when pg_ctl gave up holds the folder: stop it before the next try.
                _ = try? await run(runAs, folder: folder, "pg_ctl", ["stop", "-m", "immediate", "-w", "-D", folder + "/data"])
            }
        }
        let log = (try? String(contentsOfFile: folder + "/server.log", encoding: .utf8)) ?? ""
        throw PostgresHarnessError("PostgreSQL did not start: \(reason)\n\(log.suffix(2000))")
    }

    /// Stops the server at once (nothing in it is kept) and removes its folder.
    public func stop() async {
        await Self.stop(folder: folder, runAs: runAs)
    }

    private static func stop(folder: String, runAs: [String]) async {
        if FileManager.default.fileExists(atPath: folder + "/data/postmaster.pid") {
            _ = try? await run(runAs, folder: folder, "pg_ctl", ["stop", "-m", "immediate", "-w", "-D", folder + "/data"])
        }
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// One of PostgreSQL's programs, as `runAs`, in `folder` (PostgreSQL's programs go back to
    /// the working directory, which the postgres user may not be allowed into).
    private static func run(_ runAs: [String], folder: String, _ program: String, _ arguments: [String]) async throws {
        let command = runAs + ["/usr/bin/env", "-C", folder, bin + "/" + program] + arguments
        let result = try await CallTraceTestSupport.run(command[0], Array(command.dropFirst()))
        guard result.status == 0 else {
            throw PostgresHarnessError("\(program) failed (\(result.status)): \(result.stderr.suffix(2000))")
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

/// A PostgreSQL server tests make databases on: a `TemporaryPostgres`, or the one `make
/// test-postgres` starts for the whole suite (`CALLTRACE_TEST_POSTGRES_URL`).
public protocol TestPostgresServer: Sendable {
    /// The server's `postgres` database, as `PostgresAddress` takes it.
    var url: String { get }
    /// The password, in a file of mode 0600.
    var passwordFile: String { get }
}

extension TestPostgresServer {
    /// A new, empty database on this server, named `name` (letters, digits and _): its URL,
    /// reached as `url` is, with the same password file.
    public func newDatabase(named name: String) throws -> String {
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw PostgresHarnessError("a database name of letters, digits and _, not \(name)")
        }
        let server = try PostgresConnection(try PostgresAddress(url: url, passwordFile: passwordFile))
        defer { server.close() }
        try server.execute("CREATE DATABASE \(name)")
        guard url.contains("/postgres?") else { throw PostgresHarnessError("the server's URL does not name its postgres database") }
        return url.replacingOccurrences(of: "/postgres?", with: "/\(name)?")
    }
}

/// A server started outside the test process (`make test-postgres`, `scripts/with-postgres.sh`).
struct ExternalPostgres: TestPostgresServer {
    let url: String
    let passwordFile: String
}

/// Where the services a test starts keep their databases: a SQLite file each (the default), or
/// a new database each on a PostgreSQL server — inside `$postgres.withValue(server)`, or for the
/// whole suite under `make test-postgres`.
public enum TestDatabases {
    @TaskLocal public static var postgres: (any TestPostgresServer)? = fromEnvironment

    /// Whether a service started on `postgres` keeps its key store there too, as replicas
    /// share one (`InProcessService.replica()`); otherwise it is a SQLite file, as for one
    /// process. Every key-store read on PostgreSQL is a round trip that holds a thread of Swift's
    /// cooperative pool, which the whole suite shares in this process: only the tests of
    /// replicas ask for it.
    @TaskLocal public static var sharedKeyStore = false

    /// The server `make test-postgres` started, if it did.
    static let fromEnvironment: (any TestPostgresServer)? = {
        let environment = ProcessInfo.processInfo.environment
        guard let url = environment["CALLTRACE_TEST_POSTGRES_URL"], let file = environment["CALLTRACE_TEST_POSTGRES_PASSWORD_FILE"] else { return nil }
        return ExternalPostgres(url: url, passwordFile: file)
    }()
}
