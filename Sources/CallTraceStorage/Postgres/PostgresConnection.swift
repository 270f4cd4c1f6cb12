import CLibPQ
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One connection to PostgreSQL through libpq, with the statements of `Connection` (SQLite's):
/// `execute`, `query` and `transaction`, `?` placeholders and the same values and rows, so a
/// repository's statements can run on either. One caller at a time: it is not `Sendable`.
///
/// - Values are sent typed (`bigint`, `double precision`, `text`, `bytea`) and read in libpq's
///   binary format, so a sealed column's bytes come back exactly as stored.
/// - Errors name the statement's SQLSTATE and the constraint, table or column concerned, never
///   PostgreSQL's message: that can quote a value (a phone number, a name) from the row.
public final class PostgresConnection {
    private var handle: OpaquePointer?
    public let address: PostgresAddress
    /// An advisory lock each `transaction` takes after `BEGIN` and holds to its end
    /// (`PostgresDatabase`'s write lock), or none.
    var writeLock: Int64?

    /// Connects; over TCP only with TLS, the server's certificate and name checked, whatever the
    /// environment or a service file say (`sslmode=verify-full` is given last, and wins), and the
    /// socket it got is checked again.
    ///
    /// - Throws: `StorageError` with libpq's reason (it names the host, never the password).
    public init(_ address: PostgresAddress, applicationName: String = "calltrace", connectTimeoutSeconds: Int = 10) throws {
        self.address = address
        try Self.loadLibrary()
        // Never ~/.pgpass: a path that cannot exist, which libpq passes over without a warning.
        // (libpq asks for no TLS over a Unix socket, whatever sslmode says.)
        // A server that vanishes without a reset (a failed-over primary) is found within about a
        // minute, not TCP's quarter of an hour; before the URL, which may set its own.
        var settings = [("keepalives", "1"), ("keepalives_idle", "30"), ("keepalives_interval", "10"), ("keepalives_count", "3"),
                        ("tcp_user_timeout", "60000"),
                        ("dbname", address.url), ("application_name", applicationName),
                        ("connect_timeout", String(connectTimeoutSeconds)), ("client_encoding", "UTF8"),
                        ("passfile", "/dev/null/no-password-file"), ("sslmode", "verify-full"), ("gssencmode", "disable")]
        // Read at each connection, so a password changed in the file is used from the next one.
        if let file = address.passwordFile { settings.append(("password", try Self.password(in: file))) }
        let connection = Self.withCStrings(settings.map(\.0)) { keywords in
            Self.withCStrings(settings.map(\.1)) { values in ct_pq_connect(keywords, values) }
        }
        guard let connection, ct_pq_connected(connection) != 0 else {
            let reason = Self.trimmed(ct_pq_connection_error(connection))
            if let connection { ct_pq_finish(connection) }
            throw StorageError("cannot connect to PostgreSQL: \(reason)")
        }
        handle = connection
        ct_pq_quiet(connection)
        if ct_pq_over_unix_socket(connection) == 0 && ct_pq_ssl_in_use(connection) == 0 {
            close()
            throw StorageError("PostgreSQL answered over TCP without TLS")
        }
    }

    deinit { close() }

    /// Closes the connection. Later statements fail.
    public func close() {
        if let handle { ct_pq_finish(handle) }
        handle = nil
    }

    /// The password file's first line, read afresh each time: a regular file, not a link, that
    /// only its owner can read, under 4 KiB.
    static func password(in file: String) throws -> String {
        let fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw StorageError("the database password file \(file) cannot be read: \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_size < 4096 else {
            throw StorageError("the database password file \(file) is not a small regular file")
        }
        guard info.st_mode & 0o077 == 0 else { throw StorageError("the database password file \(file) can be read by others: chmod 600 it") }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        guard read(fd, &bytes, bytes.count) == bytes.count,
              let line = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).first,
              !line.isEmpty, !line.contains("\0") else {
            throw StorageError("the database password file \(file) cannot be read, or its first line is empty")
        }
        return String(line.hasSuffix("\r") ? line.dropLast() : line)
    }

    static func loadLibrary() throws {
        var error = [CChar](repeating: 0, count: 256)
        guard ct_pq_load(&error, error.count) == 0 else {
            throw StorageError(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
    }

    // MARK: Statements

    /// Runs a statement that returns no rows; returns the number of rows changed.
    @discardableResult
    public func execute(_ sql: String, _ bindings: any SQLiteBindable...) throws -> Int {
        try execute(sql, bindings: bindings)
    }

    @discardableResult
    public func execute(_ sql: String, bindings: [any SQLiteBindable]) throws -> Int {
        try run(sql, bindings) { result in Int(String(cString: ct_pq_changed_rows(result))) ?? 0 }
    }

    /// Runs a query and returns every row.
    public func query(_ sql: String, _ bindings: any SQLiteBindable...) throws -> [Row] {
        try query(sql, bindings: bindings)
    }

    public func query(_ sql: String, bindings: [any SQLiteBindable]) throws -> [Row] {
        try run(sql, bindings) { result in
            let count = Int(ct_pq_columns(result))
            var columns: [String: Int] = [:]
            for column in 0..<count { columns[String(cString: ct_pq_column_name(result, Int32(column)))] = column }
            let types = (0..<Int32(count)).map { ct_pq_column_type(result, $0) }
            return try (0..<ct_pq_rows(result)).map { row in
                let values = try (0..<Int32(count)).map { column -> SQLiteValue in
                    guard ct_pq_is_null(result, row, column) == 0 else { return .null }
                    let bytes = UnsafeRawBufferPointer(start: ct_pq_value(result, row, column), count: Int(ct_pq_length(result, row, column)))
                    return try Self.value(bytes, type: types[Int(column)], column: String(cString: ct_pq_column_name(result, column)))
                }
                return Row(columns: columns, values: values)
            }
        }
    }

    /// Whether the connection still reaches the server: not once the server said it is ending
    /// the session (libpq notices only at the next statement).
    public var isConnected: Bool { !isEnded && handle.map { ct_pq_connected($0) != 0 } ?? false }

    /// Whether no transaction is open on the connection (one left open must not serve again).
    public var isIdle: Bool { handle.map { ct_pq_transaction_status($0) == 0 } ?? false }

    /// Set when the server ended the session (`refusal`).
    private var isEnded = false

    /// Runs statements separated by semicolons, without values (a migration's DDL); inside the
    /// enclosing transaction, if any.
    public func script(_ sql: String) throws {
        guard let handle else { throw StorageError("the PostgreSQL connection is closed") }
        let result = ct_pq_exec_script(handle, sql)
        defer { ct_pq_clear(result) }
        guard let result, ct_pq_status(result) != Int32(CT_PQ_FAILED) else { throw refusal(result, connection: handle) }
    }

    /// Runs a query and hands `row` each row's integer columns by position (`Connection.scan`).
    public func scan(_ sql: String, bindings: [any SQLiteBindable], _ row: (ScanCursor) throws -> Void) throws {
        for values in try query(sql, bindings: bindings) { try row(ScanCursor(source: .row(values.values))) }
    }

    /// This connection's session found ended at a transaction's `BEGIN`: nothing of that
    /// transaction ran, so it may be run whole on another connection (`PostgresDatabase` does,
    /// after a restart or a failover), if it is the transaction the caller began on `session`.
    struct EndedBeforeBegin: Error {
        let error: any Error
        let session: ObjectIdentifier
    }

    private func begin(_ sql: String) throws {
        do { try execute(sql) } catch where !isConnected { throw EndedBeforeBegin(error: error, session: ObjectIdentifier(self)) }
    }

    /// Runs `body` in a read-only transaction that sees one snapshot (`REPEATABLE READ`).
    func snapshot<T>(_ body: () throws -> T) throws -> T {
        try begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        defer { _ = try? execute("COMMIT") }
        return try body()
    }

    /// Runs `body` in a transaction, committed if it returns and rolled back if it throws; or
    /// as part of the enclosing one. With a `writeLock`, it is taken first. Unlike SQLite,
    /// PostgreSQL fails the whole transaction at a failed statement, even one whose error the
    /// body caught: that transaction is rolled back and reported, never "committed" (PostgreSQL
    /// answers such a COMMIT with ROLLBACK).
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        guard let handle else { throw StorageError("the PostgreSQL connection is closed") }
        switch ct_pq_transaction_status(handle) {
        case 0: break  // idle: begin one
        case 2: return try body()  // inside one: join it
        default: throw StorageError("the PostgreSQL connection is in a failed or unknown transaction")
        }
        try begin("BEGIN")
        do {
            if let writeLock { try execute("SELECT pg_advisory_xact_lock(?)", writeLock) }
            let result = try body()
            if ct_pq_transaction_status(handle) == 3 {
                throw StorageError("a statement of the transaction failed, so none of it was kept")
            }
            let tag = try run("COMMIT", []) { String(cString: ct_pq_command_tag($0)) }
            guard tag == "COMMIT" else { throw StorageError("PostgreSQL did not commit the transaction (\(tag))") }
            return result
        } catch {
            if let handle = self.handle, ct_pq_transaction_status(handle) != 0 { _ = try? execute("ROLLBACK") }
            throw error
        }
    }

    // MARK: Values

    /// PostgreSQL's type ids (`pg_type.oid`) for what `SQLiteValue` holds.
    enum TypeID {
        static let bool: UInt32 = 16, bytea: UInt32 = 17, int8: UInt32 = 20, int2: UInt32 = 21, int4: UInt32 = 23
        static let text: UInt32 = 25, float4: UInt32 = 700, float8: UInt32 = 701, varchar: UInt32 = 1043
    }

    /// A value as libpq's binary format has it (network byte order).
    static func value(_ bytes: UnsafeRawBufferPointer, type: UInt32, column: String) throws -> SQLiteValue {
        func integer(_ size: Int) throws -> Int64 {
            guard bytes.count == size else { throw StorageError("column \(column): \(bytes.count) bytes for a \(size)-byte integer") }
            let unsigned = bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let shift = UInt64(64 - 8 * size)
            return Int64(bitPattern: unsigned << shift) >> Int64(shift)  // sign-extended
        }
        switch type {
        case TypeID.int8: return .integer(try integer(8))
        case TypeID.int4: return .integer(try integer(4))
        case TypeID.int2: return .integer(try integer(2))
        case TypeID.bool: return .integer(try integer(1) == 0 ? 0 : 1)
        case TypeID.float8: return .real(Double(bitPattern: UInt64(bitPattern: try integer(8))))
        case TypeID.float4: return .real(Double(Float(bitPattern: UInt32(truncatingIfNeeded: try integer(4)))))
        case TypeID.text, TypeID.varchar: return .text(String(decoding: bytes, as: UTF8.self))
        case TypeID.bytea: return .blob(Data(bytes))
        default:
            throw StorageError("column \(column) has PostgreSQL type \(type), which CallTrace does not read: cast it to bigint, double precision, text or bytea")
        }
    }

    private func run<T>(_ sql: String, _ bindings: [any SQLiteBindable], _ read: (OpaquePointer) throws -> T) throws -> T {
        guard let handle else { throw StorageError("the PostgreSQL connection is closed") }
        let (statement, placeholders) = Self.numbered(sql)
        guard placeholders == bindings.count else {
            throw StorageError("a statement with \(placeholders) placeholders was given \(bindings.count) values")
        }
        // Text for numbers and text, binary for bytes; each with its type, so `$1` needs no cast.
        var types: [UInt32] = [], formats: [Int32] = [], payloads: [Data?] = []
        for binding in bindings {
            switch binding.sqliteValue {
            case .integer(let value): types.append(TypeID.int8); formats.append(0); payloads.append(Data(String(value).utf8))
            case .real(let value): types.append(TypeID.float8); formats.append(0); payloads.append(Data("\(value)".utf8))
            case .text(let value):
                guard !value.utf8.contains(0) else { throw StorageError("PostgreSQL text cannot hold a NUL character") }
                types.append(TypeID.text); formats.append(0); payloads.append(Data(value.utf8))
            case .blob(let value):
                guard value.count < Int(Int32.max) else { throw StorageError("PostgreSQL takes a value of at most 2 GiB") }
                types.append(TypeID.bytea); formats.append(1); payloads.append(value)
            case .null: types.append(0); formats.append(0); payloads.append(nil)
            }
        }
        let lengths = payloads.map { Int32($0?.count ?? 0) }
        let result = Self.withBuffers(payloads) { values in
            ct_pq_exec(handle, statement, Int32(bindings.count), types, values, lengths, formats, 1)
        }
        defer { ct_pq_clear(result) }
        guard let result, ct_pq_status(result) != Int32(CT_PQ_FAILED) else {
            throw refusal(result, connection: handle)
        }
        return try read(result)
    }

    /// `failure`, noting a session the server ended (SQLSTATE class 08, a connection exception,
    /// or 57P, an administrator's or a crash's shutdown): the connection is of no further use.
    private func refusal(_ result: OpaquePointer?, connection: OpaquePointer) -> StorageError {
        let state = ct_pq_error_field(result, Int32(Character("C").asciiValue!)).map { String(cString: $0) } ?? ""
        if state.hasPrefix("08") || state.hasPrefix("57P") || ct_pq_connected(connection) == 0 { isEnded = true }
        return Self.failure(result, connection: connection)
    }

    /// A refusal, without PostgreSQL's message or detail (either can quote a row's values).
    static func failure(_ result: OpaquePointer?, connection: OpaquePointer) -> StorageError {
        func field(_ code: Character) -> String? {
            ct_pq_error_field(result, Int32(code.asciiValue!)).map { String(cString: $0) }
        }
        // (Not libpq's connection message: it gathers the server's errors with their detail.)
        guard let state = field("C") else {
            return StorageError("PostgreSQL did not answer the statement" + (ct_pq_connected(connection) == 0 ? ": the connection is lost" : ""))
        }
        let about = [("constraint", field("n")), ("table", field("t")), ("column", field("c"))]
            .compactMap { name, value in value.map { "\(name) \($0)" } }
        return StorageError("PostgreSQL refused the statement: SQLSTATE \(state)" + (about.isEmpty ? "" : " (\(about.joined(separator: ", ")))"))
    }

    // MARK: Plumbing

    /// `sql` with each `?` placeholder numbered `$1`, `$2`, …, and how many there were. A `?`
    /// in a string ('…', E'…' with its backslashes, $tag$…$tag$), a quoted name or a comment
    /// (-- to the line's end, /* … */ nested) is left as it is; anywhere else it is a placeholder.
    static func numbered(_ sql: String) -> (String, Int) {
        let scalars = Array(sql.unicodeScalars)
        var output = String.UnicodeScalarView(), count = 0, i = 0
        func at(_ j: Int) -> Unicode.Scalar? { j < scalars.count ? scalars[j] : nil }
        /// Copies scalars up to and including the first match of `end` found from `i`.
        func copy(until end: (Int) -> Int?) {
            while i < scalars.count {
                if let after = end(i) {
                    output.append(contentsOf: scalars[i..<after]); i = after; return
                }
                output.append(scalars[i]); i += 1
            }
        }
        while i < scalars.count {
            let c = scalars[i]
            let previous = i > 0 ? scalars[i - 1] : " "
            let startsWord = !(previous.properties.isAlphabetic || previous.properties.numericType != nil || previous == "_")
            if c == "'" {
                // E'…' (an escape string): a backslash escapes the character after it.
                let escapes = (previous == "E" || previous == "e") && (i < 2 || !scalars[i - 2].properties.isAlphabetic)
                output.append(c); i += 1
                while i < scalars.count {
                    let inside = scalars[i]
                    output.append(inside); i += 1
                    if escapes && inside == "\\", i < scalars.count {
                        output.append(scalars[i]); i += 1
                    } else if inside == "'" {
                        break  // ('' inside: the next string begins at once, which reads the same)
                    }
                }
            } else if c == "\"" {
                output.append(c); i += 1
                copy { j in scalars[j] == "\"" ? j + 1 : nil }
            } else if c == "-" && at(i + 1) == "-" {
                copy { j in scalars[j] == "\n" ? j + 1 : nil }
            } else if c == "/" && at(i + 1) == "*" {
                var depth = 0
                copy { j in
                    if scalars[j] == "/" && at(j + 1) == "*" { depth += 1 }
                    if scalars[j] == "*" && at(j + 1) == "/" && j > 0 && scalars[j - 1] != "/" {
                        depth -= 1
                        if depth == 0 { return j + 2 }
                    }
                    return nil
                }
            } else if c == "$" && startsWord, let close = scalars[(i + 1)...].firstIndex(of: "$"),
                      scalars[(i + 1)..<close].allSatisfy({ $0.properties.isAlphabetic || $0 == "_" }) {
                // $tag$ … $tag$ (dollar quoting; "$1" is not one).
                let tag = Array(scalars[i...close])
                output.append(contentsOf: tag); i = close + 1
                copy { j in Array(scalars[j..<min(scalars.count, j + tag.count)]) == tag ? j + tag.count : nil }
            } else if c == "?" {
                count += 1
                output.append(contentsOf: "$\(count)".unicodeScalars); i += 1
            } else {
                output.append(c); i += 1
            }
        }
        return (String(output), count)
    }

    static func trimmed(_ message: UnsafePointer<CChar>?) -> String {
        message.map { String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? "unknown"
    }

    static func withCStrings<T>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> T) -> T {
        let copies = strings.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        return body(copies.map { UnsafePointer($0) } + [nil])
    }

    /// Each payload copied with a NUL after it: libpq reads a text-format value up to its NUL
    /// (and a binary one by its length).
    static func withBuffers<T>(_ payloads: [Data?], _ body: ([UnsafePointer<CChar>?]) -> T) -> T {
        let copies: [UnsafeMutablePointer<CChar>?] = payloads.map { payload in
            guard let payload else { return nil }
            let copy = UnsafeMutablePointer<CChar>.allocate(capacity: payload.count + 1)
            payload.withUnsafeBytes { bytes in
                if let base = bytes.baseAddress { UnsafeMutableRawPointer(copy).copyMemory(from: base, byteCount: bytes.count) }
            }
            copy[payload.count] = 0
            return copy
        }
        defer { copies.forEach { $0?.deallocate() } }
        return body(copies.map { $0.map { UnsafePointer($0) } })
    }
}
