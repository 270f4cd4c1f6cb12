import CSQLite
import Foundation

/// Prepared statements by SQL text, reset after each use and reused: a service runs the same
/// few hundred statements all day, and preparing one costs as much as running it. Used only on
/// the database's thread; a statement is taken out while it runs, so a nested use of the same
/// SQL prepares its own.
final class StatementCache: @unchecked Sendable {
    private var statements: [String: OpaquePointer] = [:]
    static let limit = 256

    func take(_ sql: String) -> OpaquePointer? { statements.removeValue(forKey: sql) }

    func give(back statement: OpaquePointer, for sql: String) {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        if statements.count >= Self.limit || statements[sql] != nil {
            sqlite3_finalize(statement)
        } else {
            statements[sql] = statement
        }
    }

    func finalizeAll() {
        for statement in statements.values { sqlite3_finalize(statement) }
        statements = [:]
    }
}

/// Statements on one SQLite connection, on its thread (the writer's or a reader's): what
/// `Connection` runs on a SQLite store.
struct SQLiteConnection {
    let handle: OpaquePointer
    let path: String
    var statements: StatementCache? = nil

    /// Runs a statement that returns no rows; returns the number of rows changed.
    @discardableResult
    func execute(_ sql: String, _ bindings: any SQLiteBindable...) throws -> Int {
        try execute(sql, bindings: bindings)
    }

    @discardableResult
    func execute(_ sql: String, bindings: [any SQLiteBindable]) throws -> Int {
        try withStatement(sql, bindings) { statement in
            let rc = sqlite3_step(statement)
            guard rc == SQLITE_DONE || rc == SQLITE_ROW else { throw failure("step", rc) }
            return Int(sqlite3_changes(handle))
        }
    }

    /// Runs a query and returns every row.
    func query(_ sql: String, _ bindings: any SQLiteBindable...) throws -> [Row] {
        try query(sql, bindings: bindings)
    }

    func query(_ sql: String, bindings: [any SQLiteBindable]) throws -> [Row] {
        try withStatement(sql, bindings) { statement in
            let count = Int(sqlite3_column_count(statement))
            var columns: [String: Int] = [:]
            for index in 0..<count { columns[String(cString: sqlite3_column_name(statement, Int32(index)))] = index }
            var rows: [Row] = []
            while true {
                let rc = sqlite3_step(statement)
                if rc == SQLITE_DONE { break }
                guard rc == SQLITE_ROW else { throw failure("step", rc) }
                var values: [SQLiteValue] = []
                values.reserveCapacity(count)
                for index in 0..<Int32(count) {
                    switch sqlite3_column_type(statement, index) {
                    case SQLITE_INTEGER: values.append(.integer(sqlite3_column_int64(statement, index)))
                    case SQLITE_FLOAT: values.append(.real(sqlite3_column_double(statement, index)))
                    case SQLITE_TEXT:
                        let size = Int(sqlite3_column_bytes(statement, index))
                        let text = sqlite3_column_text(statement, index).map { String(decoding: UnsafeBufferPointer(start: $0, count: size), as: UTF8.self) }
                        values.append(.text(text ?? ""))
                    case SQLITE_BLOB:
                        let size = Int(sqlite3_column_bytes(statement, index))
                        values.append(.blob(size == 0 ? Data() : Data(bytes: sqlite3_column_blob(statement, index), count: size)))
                    default: values.append(.null)
                    }
                }
                rows.append(Row(columns: columns, values: values))
            }
            return rows
        }
    }

    /// Steps through a query's rows without materialising them: `row` reads the current row's
    /// integer columns by position. For reports that go over many rows.
    func scan(_ sql: String, bindings: [any SQLiteBindable], _ row: (ScanCursor) throws -> Void) throws {
        try withStatement(sql, bindings) { statement in
            let cursor = ScanCursor(source: .sqlite(statement))
            while true {
                let rc = sqlite3_step(statement)
                if rc == SQLITE_DONE { return }
                guard rc == SQLITE_ROW else { throw failure("step", rc) }
                try row(cursor)
            }
        }
    }

    /// Runs `body` in a transaction (`BEGIN IMMEDIATE`), or as part of the enclosing one.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        if sqlite3_get_autocommit(handle) == 0 { return try body() }
        try SQLiteDatabase.exec(handle, "BEGIN IMMEDIATE", path: path)
        do {
            let result = try body()
            try SQLiteDatabase.exec(handle, "COMMIT", path: path)
            return result
        } catch {
            try? SQLiteDatabase.exec(handle, "ROLLBACK", path: path)
            throw error
        }
    }

    /// Runs statements separated by semicolons, without values.
    func script(_ sql: String) throws { try SQLiteDatabase.exec(handle, sql, path: path) }

    /// The integer in column `column` of `statement`'s current row (`ScanCursor`).
    static func integer(_ statement: OpaquePointer, _ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }

    private func withStatement<T>(_ sql: String, _ bindings: [any SQLiteBindable], _ body: (OpaquePointer) throws -> T) throws -> T {
        var statement = statements?.take(sql)
        if statement == nil {
            let rc = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
            guard rc == SQLITE_OK, statement != nil else { throw failure("prepare", rc) }
        }
        guard let statement else { throw failure("prepare", SQLITE_ERROR) }
        defer {
            if let statements { statements.give(back: statement, for: sql) } else { sqlite3_finalize(statement) }
        }
        for (offset, binding) in bindings.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch binding.sqliteValue {
            case .integer(let value): rc = sqlite3_bind_int64(statement, index, value)
            case .real(let value): rc = sqlite3_bind_double(statement, index, value)
            case .text(let value):
                // With its byte length: a string with an embedded NUL is bound whole, never cut short.
                // (An empty array may have no base address, which SQLite would bind as NULL.)
                let bytes = value.isEmpty ? [0] : Array(value.utf8)
                rc = bytes.withUnsafeBufferPointer { buffer in
                    buffer.withMemoryRebound(to: CChar.self) { sqlite3_bind_text(statement, index, $0.baseAddress, Int32(value.utf8.count), SQLITE_TRANSIENT) }
                }
            case .blob(let value):
                rc = value.withUnsafeBytes { sqlite3_bind_blob(statement, index, $0.baseAddress, Int32($0.count), SQLITE_TRANSIENT) }
            case .null: rc = sqlite3_bind_null(statement, index)
            }
            guard rc == SQLITE_OK else { throw failure("bind", rc) }
        }
        return try body(statement)
    }

    private func failure(_ stage: String, _ rc: Int32) -> StorageError {
        StorageError("database \(path): \(stage) failed: \(String(cString: sqlite3_errmsg(handle)))")
    }
}

/// `SQLITE_TRANSIENT` is a macro of a cast; this is its value.
private let SQLITE_TRANSIENT = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
