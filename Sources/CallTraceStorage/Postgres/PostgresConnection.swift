import CLibPQ
import Foundation

/// One connection to PostgreSQL through libpq, with the statements of `Connection` (SQLite's):
/// `execute`, `query` and `transaction`, `?` placeholders and the same values and rows, so a
/// repository's statements can run on either. Used by one caller at a time.
///
/// - Values are sent typed (`bigint`, `double precision`, `text`, `bytea`) and read in libpq's
///   binary format, so a sealed column's bytes come back exactly as stored.
/// - Errors name the statement's SQLSTATE and the constraint, table or column concerned, never
///   PostgreSQL's message: that can quote a value (a phone number, a name) from the row.
public final class PostgresConnection: @unchecked Sendable {
    private var handle: OpaquePointer?
    public let address: PostgresAddress

    /// Connects; over TCP only with TLS, the server's certificate and name checked (`PostgresAddress`).
    ///
    /// - Throws: `StorageError` with libpq's reason (it names the host, never the password).
    public init(_ address: PostgresAddress, applicationName: String = "calltrace", connectTimeoutSeconds: Int = 10) throws {
        self.address = address
        try Self.loadLibrary()
        // Never ~/.pgpass: a path that cannot exist, which libpq passes over without a warning.
        var settings = [("dbname", address.url), ("application_name", applicationName),
                        ("connect_timeout", String(connectTimeoutSeconds)), ("client_encoding", "UTF8"),
                        ("passfile", "/dev/null/no-password-file")]
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
        let hosts = (try? Self.hosts(of: address.url)) ?? []
        if hosts.contains(where: { !$0.hasPrefix("/") }) && ct_pq_ssl_in_use(connection) == 0 {
            close()
            throw StorageError("PostgreSQL answered without TLS")
        }
    }

    deinit { close() }

    /// Closes the connection. Later statements fail.
    public func close() {
        if let handle { ct_pq_finish(handle) }
        handle = nil
    }

    /// The password file's first line.
    static func password(in file: String) throws -> String {
        guard let contents = FileManager.default.contents(atPath: file),
              let line = String(data: contents, encoding: .utf8)?.split(separator: "\n", omittingEmptySubsequences: false).first,
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

    /// Runs `body` in a transaction, committed if it returns and rolled back if it throws; or
    /// as part of the enclosing one.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        if inTransaction { return try body() }
        try execute("BEGIN")
        inTransaction = true
        defer { inTransaction = false }
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            _ = try? execute("ROLLBACK")
            throw error
        }
    }

    private var inTransaction = false

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
            case .blob(let value): types.append(TypeID.bytea); formats.append(1); payloads.append(value)
            case .null: types.append(0); formats.append(0); payloads.append(nil)
            }
        }
        let lengths = payloads.map { Int32($0?.count ?? 0) }
        let result = Self.withBuffers(payloads) { values in
            ct_pq_exec(handle, statement, Int32(bindings.count), types, values, lengths, formats, 1)
        }
        defer { ct_pq_clear(result) }
        guard let result, ct_pq_status(result) != Int32(CT_PQ_FAILED) else {
            throw Self.failure(result, connection: handle)
        }
        return try read(result)
    }

    /// A refusal, without PostgreSQL's message or detail (either can quote a row's values).
    static func failure(_ result: OpaquePointer?, connection: OpaquePointer) -> StorageError {
        func field(_ code: Character) -> String? {
            ct_pq_error_field(result, Int32(code.asciiValue!)).map { String(cString: $0) }
        }
        guard let state = field("C") else {
            return StorageError("PostgreSQL did not answer: \(trimmed(ct_pq_connection_error(connection)))")
        }
        let about = [("constraint", field("n")), ("table", field("t")), ("column", field("c"))]
            .compactMap { name, value in value.map { "\(name) \($0)" } }
        return StorageError("PostgreSQL refused the statement: SQLSTATE \(state)" + (about.isEmpty ? "" : " (\(about.joined(separator: ", ")))"))
    }

    // MARK: Plumbing

    /// `sql` with each `?` placeholder (outside quotes and `--` comments) numbered `$1`, `$2`, …, and how many there were.
    static func numbered(_ sql: String) -> (String, Int) {
        var output = "", count = 0
        var quote: Character?  // inside '…' or "…"
        var comment = false, previous: Character?
        for character in sql {
            if comment {
                if character == "\n" { comment = false }
            } else if let open = quote {
                if character == open { quote = nil }
            } else if character == "'" || character == "\"" {
                quote = character
            } else if character == "-" && previous == "-" {
                comment = true
            } else if character == "?" {
                count += 1
                output += "$\(count)"
                previous = character
                continue
            }
            output.append(character)
            previous = character
        }
        return (output, count)
    }

    static func hosts(of url: String) throws -> [Substring] {
        var buffer = [CChar](repeating: 0, count: 4096)
        guard ct_pq_conninfo_value(url, "host", &buffer, buffer.count) == 1 else { return [] }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: ",")
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
