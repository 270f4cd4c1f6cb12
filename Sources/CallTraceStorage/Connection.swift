import Foundation

/// Which SQL a service's store speaks: for the few statements that must be written twice, in a
/// repository (never in a rule).
public enum SQLDialect: Sendable {
    case sqlite, postgres
}

/// Statements in one transaction of a service's store, SQLite or PostgreSQL alike: `?`
/// placeholders, `SQLiteValue`s in, `Row`s out. Obtain one through `Database.read`, `write` or
/// `sync`; it is valid only inside that body.
public struct Connection {
    enum Engine {
        case sqlite(SQLiteConnection)
        case postgres(PostgresConnection)
    }

    let engine: Engine

    init(_ engine: Engine) { self.engine = engine }

    public var dialect: SQLDialect {
        switch engine {
        case .sqlite: .sqlite
        case .postgres: .postgres
        }
    }

    /// Runs a statement that returns no rows; returns the number of rows changed.
    @discardableResult
    public func execute(_ sql: String, _ bindings: any SQLiteBindable...) throws -> Int {
        try execute(sql, bindings: bindings)
    }

    @discardableResult
    public func execute(_ sql: String, bindings: [any SQLiteBindable]) throws -> Int {
        switch engine {
        case .sqlite(let connection): try connection.execute(sql, bindings: bindings)
        case .postgres(let connection): try connection.execute(sql, bindings: bindings)
        }
    }

    /// Runs a query and returns every row.
    public func query(_ sql: String, _ bindings: any SQLiteBindable...) throws -> [Row] {
        try query(sql, bindings: bindings)
    }

    public func query(_ sql: String, bindings: [any SQLiteBindable]) throws -> [Row] {
        switch engine {
        case .sqlite(let connection): try connection.query(sql, bindings: bindings)
        case .postgres(let connection): try connection.query(sql, bindings: bindings)
        }
    }

    /// Steps through a query's rows: `row` reads the current row's integer columns by position.
    /// For reports that go over many rows (SQLite never materialises them).
    public func scan(_ sql: String, bindings: [any SQLiteBindable], _ row: (ScanCursor) throws -> Void) throws {
        switch engine {
        case .sqlite(let connection): try connection.scan(sql, bindings: bindings, row)
        case .postgres(let connection): try connection.scan(sql, bindings: bindings, row)
        }
    }

    /// Runs `body` in a write transaction (committed if it returns, rolled back if it throws), or
    /// as part of the enclosing one. Write transactions run one at a time: SQLite's `BEGIN
    /// IMMEDIATE`; on PostgreSQL, the database's write lock (`PostgresDatabase`).
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        switch engine {
        case .sqlite(let connection): try connection.transaction(body)
        case .postgres(let connection): try connection.transaction(body)
        }
    }

    /// The names of the store's tables (not its own bookkeeping: SQLite's `sqlite_…` tables).
    public func tableNames() throws -> Set<String> {
        let sql = switch engine {
        case .sqlite: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        case .postgres: "SELECT CAST(tablename AS text) AS name FROM pg_tables WHERE schemaname = current_schema()"
        }
        return Set(try query(sql).compactMap { $0.text("name") })
    }

    /// Whether a table of this name is anywhere in the database: on PostgreSQL in any schema,
    /// not only the one `tableNames` reads (a URL's `search_path` can hide one).
    public func hasTable(anywhere name: String) throws -> Bool {
        let sql = switch engine {
        case .sqlite: "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        case .postgres: "SELECT 1 FROM pg_catalog.pg_class WHERE relname = ? AND relkind IN ('r', 'p')"
        }
        return try !query(sql, name).isEmpty
    }

    /// The store's tables this connection's user owns (on PostgreSQL, where only a table's owner
    /// may vacuum it); every table, on SQLite.
    public func ownedTableNames() throws -> Set<String> {
        switch engine {
        case .sqlite:
            return try tableNames()
        case .postgres:
            let sql = "SELECT CAST(tablename AS text) AS name FROM pg_tables WHERE schemaname = current_schema() AND tableowner = current_user"
            return Set(try query(sql).compactMap { $0.text("name") })
        }
    }
}

// MARK: Schema versions (Database.migrate)

extension Connection {
    /// On PostgreSQL, the service's own schema version is the `schema_tracks` row of this name
    /// (SQLite keeps it in `PRAGMA user_version`).
    static let mainTrack = "main"

    /// The service's own schema version: 0 for a new database.
    func mainVersion() throws -> Int {
        switch engine {
        case .sqlite:
            return try query("PRAGMA user_version").first?.int("user_version").map(Int.init) ?? 0
        case .postgres:
            guard try tableNames().contains("schema_tracks") else { return 0 }
            return try query("SELECT version FROM schema_tracks WHERE name = ?", Self.mainTrack).first?.int("version").map(Int.init) ?? 0
        }
    }

    func setMainVersion(_ version: Int) throws {
        switch engine {
        case .sqlite(let connection):
            try connection.script("PRAGMA user_version = \(version)")
        case .postgres:
            try runScript("CREATE TABLE IF NOT EXISTS schema_tracks (name text PRIMARY KEY, version bigint NOT NULL)")
            try Database.setVersion(self, track: Self.mainTrack, version)
        }
    }

    /// Runs schema statements written in SQLite's words, as `Migration` reads them on this
    /// store: for a table the host creates outside the numbered migrations.
    public func runSchema(_ sql: String) throws {
        try runScript(Migration(version: 0, sql).sql(for: dialect))
    }

    /// Runs statements separated by semicolons, without values (a migration).
    func runScript(_ sql: String) throws {
        switch engine {
        case .sqlite(let connection): try connection.script(sql)
        case .postgres(let connection): try connection.script(sql)
        }
    }
}

/// The current row of `Connection.scan`.
public struct ScanCursor {
    enum Source {
        case sqlite(OpaquePointer)
        case row([SQLiteValue])
    }

    let source: Source

    /// The integer in column `column` (0-based) of the current row; 0 for NULL.
    public func int(_ column: Int32) -> Int64 {
        switch source {
        case .sqlite(let statement): return SQLiteConnection.integer(statement, column)
        case .row(let values):
            guard case .integer(let value) = values[Int(column)] else { return 0 }
            return value
        }
    }
}
