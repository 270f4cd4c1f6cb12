/// A service's SQLite repository: its statements on a transaction type made over a connection,
/// and `read` and `write` that run a body in one transaction of its `Database` — the same for
/// every service, so a repository names only its statements.
///
/// A service's repository protocol asks for `read` and `write` over its own transaction
/// protocol (`any RecordingTransaction`); conforming, the SQLite repository gets both:
///
///     extension SQLiteRecordingRepository: SQLiteRepository {
///         static func statements(on connection: Connection) -> any RecordingTransaction { Transaction(connection: connection) }
///     }
public protocol SQLiteRepository: Sendable {
    /// What a body is given: the service's transaction protocol, as an existential.
    associatedtype Statements
    var database: Database { get }
    /// The statements of one transaction over `connection`.
    static func statements(on connection: Connection) -> Statements
}

extension SQLiteRepository {
    /// Runs `body` on a read connection, in one snapshot (`Database.read`).
    public func read<T: Sendable>(_ body: @escaping @Sendable (Statements) throws -> T) async throws -> T {
        try await database.read { try body(Self.statements(on: $0)) }
    }

    /// Runs `body` in one write transaction, committed if it returns (`Database.write`).
    public func write<T: Sendable>(_ body: @escaping @Sendable (Statements) throws -> T) async throws -> T {
        try await database.write { try body(Self.statements(on: $0)) }
    }
}
