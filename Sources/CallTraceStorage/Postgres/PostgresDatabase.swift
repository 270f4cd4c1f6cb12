import CallTraceSync
import Dispatch
import Foundation

/// A service's store in PostgreSQL (`Database` on a `postgres://` URL): a few connections, each
/// on its own serial thread (libpq blocks), opened on demand and shared in turn.
///
/// What it asks of the server, so an operator can judge a PostgreSQL-compatible engine:
/// - **Advisory locks** (`pg_advisory_xact_lock`): every write transaction takes the database's
///   write lock first, so writes run one at a time across all the replicas, as SQLite's do in
///   one process; the rules' read-then-write steps (the next number, the audit chain's head, a
///   job's claim) stay as safe as on SQLite.
/// - **`REPEATABLE READ`** for reads: a read sees one snapshot, as on SQLite.
/// - Transactional DDL: a migration applies whole or not at all.
final class PostgresDatabase: Sendable {
    /// A connection unused this long is closed (reopened when wanted: a TLS handshake and a
    /// password exchange, a few milliseconds).
    static let idleTimeout: Duration = .seconds(10)
    /// The write lock's key: one database per service, so one key serves every service.
    static let writeLock: Int64 = 0x4361_6c6c_5472_6163  // "CallTrac"

    final class Member: PooledConnection, @unchecked Sendable {
        let queue: DispatchQueue
        let connection: PostgresConnection
        var isClosed = false
        var isUsable: Bool { !isClosed && connection.isConnected && connection.isIdle }

        init(_ connection: PostgresConnection, number: Int) {
            self.connection = connection
            queue = DispatchQueue(label: "calltrace.postgres-\(number)")
        }

        func closeNow() {
            isClosed = true
            connection.close()
        }
    }

    let address: PostgresAddress
    private let pool: ConnectionPool<Member>

    /// Connects once, to refuse a wrong address, password or certificate at start-up.
    init(_ address: PostgresAddress, connections: Int) throws {
        self.address = address
        pool = ConnectionPool(name: "database \(address)", limit: max(1, connections), idleTimeout: Self.idleTimeout) { number in
            let queue = DispatchQueue(label: "calltrace.postgres-connect")
            let connection = try await handOff { finish in
                queue.async { finish(Result { UncheckedConnection(try Self.connect(address)) }) }
            }
            return Member(connection.connection, number: number)
        }
        // The first connection, kept in the pool: a wrong address or password fails here.
        try sync { _ in }
    }

    private static func connect(_ address: PostgresAddress) throws -> PostgresConnection {
        let connection = try PostgresConnection(address)
        connection.writeLock = writeLock
        return connection
    }

    func close() { pool.close() }

    func write<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        try await onLiveSession { member in
            let connection = Connection(.postgres(member.connection))
            return try connection.transaction { try body(connection) }
        }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        try await onLiveSession { member in
            try member.connection.snapshot { try body(Connection(.postgres(member.connection))) }
        }
    }

    /// Runs `run` on a pooled connection, and again on another when the server had ended that
    /// connection's session before its `BEGIN` (a restart or failover ends every pooled session
    /// at once): nothing of it ran, and the pool has replaced the dead connection. At most once
    /// per connection the pool may hold, and one more. A session found ended by a transaction
    /// the body began elsewhere (the key store's) is that transaction's failure, not retried:
    /// the body may have done things by then.
    private func onLiveSession<T: Sendable>(_ run: @escaping @Sendable (Member) throws -> T) async throws -> T {
        var attempts = 0
        while true {
            do {
                return try await pool.run { member in
                    do {
                        return try run(member)
                    } catch let ended as PostgresConnection.EndedBeforeBegin where ended.session != ObjectIdentifier(member.connection) {
                        throw ended.error
                    }
                }
            } catch let ended as PostgresConnection.EndedBeforeBegin {
                attempts += 1
                guard attempts <= pool.limit else { throw ended.error }
            }
        }
    }

    /// On one of the pool's connections, blocking the caller (start-up, commands, a key store's
    /// reads). A connection idle for a second or more is checked first: a session the server
    /// ended since is replaced, not reported. One used within the second is taken as it is, so
    /// a session ended in that second (a failover) fails this one call.
    func sync<T>(_ body: (Connection) throws -> T) throws -> T {
        let address = self.address
        do {
            return try pool.runBlocking(open: { Member(try Self.connect(address), number: 0) },
                                        usable: { (try? $0.connection.execute("SELECT 1")) != nil }) { member in
                try body(Connection(.postgres(member.connection)))
            }
        } catch let ended as PostgresConnection.EndedBeforeBegin {
            // Not run again here: the body may have done things before its transaction began.
            throw ended.error
        }
    }
}

/// A connection handed from the thread that opened it to its own (it is not `Sendable`: one
/// caller at a time, which the hand-over keeps).
private struct UncheckedConnection: @unchecked Sendable {
    let connection: PostgresConnection
    init(_ connection: PostgresConnection) { self.connection = connection }
}
