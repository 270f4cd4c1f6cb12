import Foundation

/// Where a tar archive's bytes go as they are written: a sealed blob (`ChunkSealer`), a file.
public protocol ArchiveSink: AnyObject {
    func add(_ data: Data) throws
    /// The archive is complete.
    func finish() throws
}

/// A running digest of an archive's bytes and of each entry's (SHA-256 through OpenSSL:
/// `SHA256Stream` in CallTraceKeys).
public protocol ArchiveDigest: AnyObject {
    func update(_ data: Data)
    /// The digest; the stream cannot be used after.
    func finish() -> Data
}

/// A tar (ustar) archive written as it goes into a sink, never whole in memory: each entry's
/// size and digest are kept for the index document that ends it (`index`), so whoever opens
/// the archive can check every file against it.
public final class TarWriter {
    public struct Summary: Sendable {
        public let size: UInt64
        /// Of the whole archive, lower-case hex.
        public let sha256: String
        public let entries: Int
    }

    /// Why an archive cannot be written as asked.
    public enum Failure: Error, CustomStringConvertible, Sendable {
        /// A path no ustar header can hold (over 255 bytes, or no '/' to split it at).
        case pathTooLong(String)
        /// An entry given more bytes than its header stated.
        case longerThanStated(path: String, size: UInt64)
        /// An entry ended before the bytes its header stated (its source stopped early).
        case shorterThanStated(path: String, written: UInt64, size: UInt64)

        public var description: String {
            switch self {
            case .pathTooLong(let path): "the path \(path) is too long for the archive"
            case .longerThanStated(let path, let size): "\(path) is longer than its stated \(size) bytes"
            case .shorterThanStated(let path, let written, let size): "\(path) ended after \(written) of \(size) bytes"
            }
        }
    }

    private let sink: any ArchiveSink
    private let digest: () throws -> any ArchiveDigest
    private let whole: any ArchiveDigest
    private var entry: (path: String, size: UInt64, written: UInt64, digest: any ArchiveDigest)?
    private var listed: [[String: Any]] = []
    private var size: UInt64 = 0

    /// - Parameter digest: makes a new running SHA-256.
    public init(sink: any ArchiveSink, digest: @escaping () throws -> any ArchiveDigest) throws {
        self.sink = sink
        self.digest = digest
        whole = try digest()
    }

    /// One whole entry.
    public func add(_ path: String, _ data: Data) throws {
        try begin(path, size: UInt64(data.count))
        try body(data)
        try end()
    }

    /// Starts an entry of `size` bytes, given in pieces by `body`, closed by `end`.
    public func begin(_ path: String, size: UInt64) throws {
        precondition(entry == nil, "an entry is already open")
        try emit(try Self.header(path: path, size: size))
        entry = (path, size, 0, try digest())
    }

    public func body(_ data: Data) throws {
        guard var open = entry else { preconditionFailure("no entry is open") }
        open.written += UInt64(data.count)
        guard open.written <= open.size else { throw Failure.longerThanStated(path: open.path, size: open.size) }
        open.digest.update(data)
        entry = open
        try emit(data)
    }

    public func end() throws {
        guard let open = entry else { preconditionFailure("no entry is open") }
        guard open.written == open.size else { throw Failure.shorterThanStated(path: open.path, written: open.written, size: open.size) }
        let padding = Int((512 - open.size % 512) % 512)
        if padding > 0 { try emit(Data(count: padding)) }
        listed.append(["path": open.path, "bytes": open.size, "sha256": Self.hex(open.digest.finish())])
        entry = nil
    }

    /// Adds index.json (`fields` and the entries so far).
    public func index(_ fields: [String: Any]) throws {
        var document = fields
        document["entries"] = listed
        try add("index.json", try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys]))
    }

    /// Writes the archive's end and finishes the sink.
    public func finish() throws -> Summary {
        try emit(Data(count: 1024))
        try sink.finish()
        return Summary(size: size, sha256: Self.hex(whole.finish()), entries: listed.count)
    }

    private func emit(_ data: Data) throws {
        whole.update(data)
        size += UInt64(data.count)
        try sink.add(data)
    }

    private static func hex(_ data: Data) -> String { data.map { String(format: "%02x", $0) }.joined() }

    /// A ustar header: names longer than 100 bytes are split into prefix and name at a '/'.
    static func header(path: String, size: UInt64) throws -> Data {
        var name = Array(path.utf8), prefix: [UInt8] = []
        if name.count > 100 {
            guard let slash = name.indices.reversed().first(where: { name[$0] == UInt8(ascii: "/") && $0 <= 155 && name.count - $0 - 1 <= 100 }) else {
                throw Failure.pathTooLong(path)
            }
            prefix = Array(name[..<slash])
            name = Array(name[(slash + 1)...])
        }
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ bytes: [UInt8], at offset: Int) { for (i, byte) in bytes.enumerated() { block[offset + i] = byte } }
        func padded(_ text: String, to width: Int) -> String { text.count >= width ? text : String(repeating: "0", count: width - text.count) + text }
        func octal(_ value: UInt64, width: Int) -> [UInt8] { Array(padded(String(value, radix: 8), to: width - 1).utf8) + [0] }
        put(name, at: 0)
        put(octal(0o600, width: 8), at: 100)
        put(octal(0, width: 8), at: 108)
        put(octal(0, width: 8), at: 116)
        put(octal(size, width: 12), at: 124)
        put(octal(0, width: 12), at: 136)
        put(Array("        ".utf8), at: 148)  // the checksum counts itself as spaces
        block[156] = UInt8(ascii: "0")
        put(Array("ustar".utf8) + [0] + Array("00".utf8), at: 257)
        put(prefix, at: 345)
        let checksum = block.reduce(0) { $0 + UInt64($1) }
        put(Array(padded(String(checksum, radix: 8), to: 6).utf8) + [0, UInt8(ascii: " ")], at: 148)
        return Data(block)
    }
}
