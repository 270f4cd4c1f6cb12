import Foundation

/// Call metadata: ordered key/value pairs sent with a call's header.
///
/// Keys are lowercase ASCII (`a-z 0-9 - _ .`). A key ending in `-bin` carries a binary value;
/// other values are printable ASCII. Keys starting with `ctrpc-` are reserved for the protocol.
public struct Metadata: Sendable, Hashable, Sequence {
    public struct Entry: Sendable, Hashable {
        public let key: String
        public let value: Data
    }

    /// The reserved key prefix.
    public static let reservedPrefix = "ctrpc-"

    private(set) var entries: [Entry] = []

    public init() {}

    public init(_ pairs: KeyValuePairs<String, String>) throws {
        for (key, value) in pairs { try add(key, value) }
    }

    /// Adds a text value. Throws `invalidArgument` for a bad key or a non-printable value.
    public mutating func add(_ key: String, _ value: String) throws {
        try Self.validate(key: key, reservedAllowed: false)
        guard !key.hasSuffix("-bin") else {
            throw RPCError(.invalidArgument, "metadata key \(key) is binary; use add(_:binary:)")
        }
        guard value.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            throw RPCError(.invalidArgument, "metadata value for \(key) is not printable ASCII")
        }
        entries.append(Entry(key: key, value: Data(value.utf8)))
    }

    /// Adds a binary value; the key must end in `-bin`.
    public mutating func add(_ key: String, binary value: Data) throws {
        try Self.validate(key: key, reservedAllowed: false)
        guard key.hasSuffix("-bin") else {
            throw RPCError(.invalidArgument, "binary metadata key \(key) must end in -bin")
        }
        entries.append(Entry(key: key, value: value))
    }

    /// The first text value for `key`.
    public subscript(key: String) -> String? {
        entries.first { $0.key == key }.map { String(decoding: $0.value, as: UTF8.self) }
    }

    /// The first binary value for `key`.
    public func binary(_ key: String) -> Data? {
        entries.first { $0.key == key }?.value
    }

    public func makeIterator() -> IndexingIterator<[Entry]> { entries.makeIterator() }

    static func validate(key: String, reservedAllowed: Bool) throws {
        guard !key.isEmpty, key.utf8.count <= 256,
              key.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E })
        else {
            throw RPCError(.invalidArgument, "metadata key must be lowercase ASCII letters, digits, '-', '_' or '.'")
        }
        if !reservedAllowed && key.hasPrefix(reservedPrefix) {
            throw RPCError(.invalidArgument, "metadata key prefix \(reservedPrefix) is reserved for the protocol")
        }
    }
}

extension Metadata {
    /// At most this many entries in a call's header.
    public static let maxEntries = 64
    /// At most this many bytes of keys and values in a call's header.
    public static let maxBytes = 16 * 1024

    /// Reads metadata received from a peer, refusing malformed keys and values, and more than
    /// `maxEntries` entries or `maxBytes` bytes.
    init(validating received: [Entry]) throws {
        guard received.count <= Self.maxEntries,
              received.reduce(0, { $0 + $1.key.utf8.count + $1.value.count }) <= Self.maxBytes else {
            throw RPCError(.resourceExhausted, "call metadata exceeds \(Self.maxEntries) entries or \(Self.maxBytes) bytes")
        }
        for entry in received {
            try Self.validate(key: entry.key, reservedAllowed: false)
            if !entry.key.hasSuffix("-bin"),
               !entry.value.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
                throw RPCError(.invalidArgument, "metadata value for \(entry.key) is not printable ASCII")
            }
        }
        entries = received
    }
}
