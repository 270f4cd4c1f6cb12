import CallTraceStorage
import CallTraceTestSupport
import Foundation
import Testing

/// Issue 34's first step: a service's statements over libpq to a real PostgreSQL 15 (Debian's
/// packages, started in a temporary folder), reached only over verified TLS with the password
/// from a 0600 file.
@Suite("Storage: PostgreSQL through libpq")
struct PostgresTests {
    @Test("Values go in and come back as SQLite's do: integers to 64 bits, doubles, text with quotes and question marks, bytes with NULs, NULL; ? placeholders outside quotes; a transaction commits or rolls back whole")
    func values() async throws {
        let pki = try TemporaryPKI()
        try await withTemporaryPostgres(pki: pki) { server in
            let db = try PostgresConnection(try PostgresAddress(url: server.url, passwordFile: server.passwordFile))
            try db.execute("CREATE TABLE things (id TEXT PRIMARY KEY, n BIGINT, small INTEGER, x DOUBLE PRECISION, body BYTEA, note TEXT)")
            let bytes = Data((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }) + Data([0, 0, 255])
            #expect(try db.execute("INSERT INTO things VALUES (?, ?, ?, ?, ?, ?)", "a", Int64.min, -7, 2.5, bytes, "it's '?' -- not a comment") == 1)
            #expect(try db.execute("INSERT INTO things (id, n, note) VALUES ('b?', ?, NULL) -- a literal '?' and this comment's ? are not placeholders", Int64.max) == 1)
            let rows = try db.query("SELECT id, n, small, x, body, note FROM things WHERE id <> '?' ORDER BY id")
            #expect(rows.map { $0.text("id") } == ["a", "b?"])
            #expect(rows[0].int("n") == Int64.min && rows[1].int("n") == Int64.max)
            #expect(rows[0].int("small") == -7 && rows[0]["x"] == .real(2.5))
            #expect(rows[0].blob("body") == bytes)
            #expect(rows[0].text("note") == "it's '?' -- not a comment")
            #expect(rows[1]["body"] == .null && rows[1]["note"] == .null && rows[1]["small"] == .null)

            #expect(throws: StorageError.self) {
                try db.transaction {
                    try db.execute("UPDATE things SET n = 1")
                    throw StorageError("the body failed")
                }
            }
            #expect(try db.query("SELECT count(*)::bigint AS n FROM things WHERE n = 1").first?.int("n") == 0, "rolled back")
            let changed = try db.transaction {
                try db.transaction { try db.execute("UPDATE things SET n = n / 2 WHERE id = ?", "a") }  // joins the enclosing one
                    + db.execute("DELETE FROM things WHERE id = ?", "b?")
            }
            #expect(changed == 2)
            #expect(try db.query("SELECT n FROM things").map { $0.int("n") } == [Int64.min / 2])
            #expect(throws: StorageError.self) { try db.execute("SELECT ?", 1, 2) }

            // A ? in a string of any kind, a quoted name or a comment is not a placeholder.
            let quoted = try db.query("SELECT $$a ? 'b$$ AS d, $t$?$t$ AS t, E'it\\'s ?' AS e, 'x''?' AS s, ? AS v, \"?\".q\r\n"
                                      + "FROM (SELECT 1 AS q) AS \"?\" /* a ? /* nested ? */ don't */ -- ? it's\r\nWHERE ? = 1", "given", 1)
            #expect(quoted.first.map { [$0.text("d"), $0.text("t"), $0.text("e"), $0.text("s"), $0.text("v")] } == ["a ? 'b", "?", "it's ?", "x'?", "given"])

            // A failed statement fails PostgreSQL's whole transaction, even when the body goes on:
            // reported and rolled back, never taken for a commit.
            let aborted = #expect(throws: StorageError.self) {
                try db.transaction {
                    try db.execute("INSERT INTO things (id) VALUES ('c')")
                    _ = try? db.execute("INSERT INTO things (id) VALUES ('c')")  // a duplicate, its error caught
                }
            }
            #expect(aborted?.message.contains("none of it was kept") == true)
            #expect(try db.query("SELECT id FROM things WHERE id = 'c'").isEmpty)
            #expect(try db.execute("INSERT INTO things (id) VALUES ('c')") == 1, "the connection works on")
        }
    }

    @Test("Refused before connecting: a URL that is not postgres://, one with a password, a hostaddr or a service entry, TCP without verify-full or without a CA file, a password file others can read or behind a link")
    func refusedAddresses() throws {
        let pki = try TemporaryPKI()
        let ca = pki.caPath
        let pass = pki.directory.appendingPathComponent("pgpass").path
        #expect(FileManager.default.createFile(atPath: pass, contents: Data("hunter2-secret\n".utf8), attributes: [.posixPermissions: 0o644]))
        let link = pki.directory.appendingPathComponent("pgpass-link").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: pass)
        let cases: [(String, String?, String)] = [
            ("mysql://db.internal/calls", nil, "postgres:// URL"),
            ("postgres://calltrace:hunter2-secret@db.internal/calls?sslmode=verify-full&sslrootcert=\(ca)", nil, "holds a password"),
            ("postgres://calltrace@db.internal/calls", nil, "sslmode=verify-full"),
            ("postgres://calltrace@db.internal/calls?sslmode=require&sslrootcert=\(ca)", nil, "sslmode=verify-full"),
            ("postgres://calltrace@db.internal/calls?sslmode=verify-full", nil, "CA file"),
            ("postgres://calltrace@db.internal/calls?sslmode=verify-full&sslrootcert=/nonexistent/ca.crt", nil, "CA file"),
            ("postgres://calltrace@db.internal/calls?sslmode=verify-full&sslrootcert=\(ca)", pass, "chmod 600"),
            ("postgres://calltrace@db.internal/calls?sslmode=verify-full&sslrootcert=\(ca)", link, "cannot be read"),
            ("postgres://calltrace@db.internal/calls?sslmode=verify-full&sslrootcert=\(ca)", pass + "-missing", "cannot be read"),
            ("postgres://calltrace@db.internal/calls?sslmode=verify-full&sslrootcert=\(pki.directory.path)", nil, "CA file"),
            // A socket host with a TCP address beside it, or a service file's entry, is not a socket.
            ("postgres://calltrace@%2Frun%2Fpostgresql/calls?hostaddr=203.0.113.5", nil, "names a hostaddr"),
            ("postgres://calltrace@%2Frun%2Fpostgresql/calls?service=elsewhere", nil, "names a service"),
            ("postgres://calltrace@db.internal/calls?sslmode=verify-full&sslrootcert=\(ca)&sslpassword=hunter2", nil, "holds a sslpassword"),
            ("postgres://calltrace@%2Frun%2Fpostgresql,db.internal/calls", nil, "sslmode=verify-full"),
        ]
        for (url, passwordFile, expected) in cases {
            let error = #expect(throws: StorageError.self) { try PostgresAddress(url: url, passwordFile: passwordFile) }
            #expect(error?.message.contains(expected) == true, "\(url): \(error?.message ?? "")")
            #expect(error?.message.contains("hunter2") == false)
        }
        // A socket folder stays on the machine: no TLS to ask for.
        _ = try PostgresAddress(url: "postgres://calltrace@%2Frun%2Fpostgresql/calls")
    }

    @Test("Refused when connecting: a server whose certificate another CA signed, a wrong password; no error names the password")
    func refusedConnections() async throws {
        let pki = try TemporaryPKI()
        try await withTemporaryPostgres(pki: pki) { server in
            let foreignCA = try pki.foreignCredentials(for: TemporaryPKI.identity("service", "media")).trustRootsPath
            let otherCA = server.url.replacingOccurrences(of: "sslrootcert=\(pki.caPath)", with: "sslrootcert=\(foreignCA)")
            let untrusted = #expect(throws: StorageError.self) {
                try PostgresConnection(try PostgresAddress(url: otherCA, passwordFile: server.passwordFile))
            }
            #expect(untrusted?.message.contains("certificate verify failed") == true, "\(untrusted?.message ?? "")")

            let wrong = pki.directory.appendingPathComponent("wrong-pgpass").path
            #expect(FileManager.default.createFile(atPath: wrong, contents: Data("not-the-password\n".utf8), attributes: [.posixPermissions: 0o600]))
            let refused = #expect(throws: StorageError.self) {
                try PostgresConnection(try PostgresAddress(url: server.url, passwordFile: wrong))
            }
            #expect(refused?.message.contains("password authentication failed") == true, "\(refused?.message ?? "")")
            #expect(refused?.message.contains("not-the-password") == false && refused?.message.contains(server.password) == false)

            let db = try PostgresConnection(try PostgresAddress(url: server.url, passwordFile: server.passwordFile))
            #expect(try db.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").first?.int("ssl") == 1, "over TLS")
        }
    }

    @Test("A refused statement names its SQLSTATE and constraint, never the values in the row (a caller's number stays out of logs)")
    func refusalsWithoutValues() async throws {
        let pki = try TemporaryPKI()
        try await withTemporaryPostgres(pki: pki) { server in
            let db = try PostgresConnection(try PostgresAddress(url: server.url, passwordFile: server.passwordFile))
            try db.execute("CREATE TABLE callers (number TEXT CONSTRAINT callers_number UNIQUE, calls BIGINT CHECK (calls >= 0))")
            try db.execute("INSERT INTO callers VALUES (?, ?)", "+447700900123", 1)
            let duplicate = #expect(throws: StorageError.self) { try db.execute("INSERT INTO callers VALUES (?, ?)", "+447700900123", 2) }
            #expect(duplicate?.message == "PostgreSQL refused the statement: SQLSTATE 23505 (constraint callers_number, table callers)")
            let typed = #expect(throws: StorageError.self) { try db.query("SELECT * FROM callers WHERE calls = CAST(? AS BIGINT)", "+44 7700 900123") }
            #expect(typed?.message.contains("SQLSTATE 22P02") == true && typed?.message.contains("7700") == false, "\(typed?.message ?? "")")
            let unread = #expect(throws: StorageError.self) { try db.query("SELECT now() AS at") }
            #expect(unread?.message.contains("column at has PostgreSQL type") == true)
        }
    }
}
