import Foundation

/// A value bound into, or read out of, SQLite.
public enum SQLiteValue: Sendable, Hashable {
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob(Data)
    case null
}

/// Types that bind as one SQLite value.
public protocol SQLiteBindable: Sendable {
    var sqliteValue: SQLiteValue { get }
}

extension Int: SQLiteBindable { public var sqliteValue: SQLiteValue { .integer(Int64(self)) } }
extension Int64: SQLiteBindable { public var sqliteValue: SQLiteValue { .integer(self) } }
extension Bool: SQLiteBindable { public var sqliteValue: SQLiteValue { .integer(self ? 1 : 0) } }
extension Double: SQLiteBindable { public var sqliteValue: SQLiteValue { .real(self) } }
extension String: SQLiteBindable { public var sqliteValue: SQLiteValue { .text(self) } }
extension Data: SQLiteBindable { public var sqliteValue: SQLiteValue { .blob(self) } }
extension SQLiteValue: SQLiteBindable { public var sqliteValue: SQLiteValue { self } }
extension Optional: SQLiteBindable where Wrapped: SQLiteBindable {
    public var sqliteValue: SQLiteValue { self?.sqliteValue ?? .null }
}

/// One result row, by column name.
public struct Row: Sendable {
    let columns: [String: Int]
    let values: [SQLiteValue]

    /// Every column's value, in the query's order.
    public var allValues: [SQLiteValue] { values }

    /// The columns' names, in the query's order.
    public var columnNames: [String] { columns.sorted { $0.value < $1.value }.map(\.key) }

    public subscript(_ column: String) -> SQLiteValue {
        guard let index = columns[column] else { return .null }
        return values[index]
    }

    public func int(_ column: String) -> Int64? {
        if case .integer(let value) = self[column] { return value }
        return nil
    }

    public func text(_ column: String) -> String? {
        if case .text(let value) = self[column] { return value }
        return nil
    }

    public func blob(_ column: String) -> Data? {
        switch self[column] {
        case .blob(let value): return value
        case .null: return nil
        case .text(let value): return Data(value.utf8)
        default: return nil
        }
    }
}

/// A storage failure. Messages name the database and SQLite's reason, never bound values.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
