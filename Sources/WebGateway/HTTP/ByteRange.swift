/// One HTTP byte range (RFC 9110 §14.1.2) of a file of known size, as the player's seeking asks
/// for it: `bytes=100-199`, `bytes=100-` (to the end) or `bytes=-500` (the last 500 bytes).
struct ByteRange: Equatable, Sendable {
    /// The first byte.
    let offset: UInt64
    /// How many bytes (at least 1).
    let length: UInt64

    var last: UInt64 { offset + length - 1 }

    /// What a `Range` header asks of a file of `size` bytes.
    enum Request: Equatable {
        /// No header, or one we do not serve as a range (another unit, several ranges, a
        /// malformed one): the whole file, 200.
        case whole
        /// One satisfiable range: 206.
        case partial(ByteRange)
        /// A well-formed range wholly past the end (or of an empty file): 416.
        case unsatisfiable
    }

    static func parse(_ header: String?, size: UInt64) -> Request {
        guard let header else { return .whole }
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.lowercased().hasPrefix("bytes="), !text.contains(",") else { return .whole }
        let spec = text.dropFirst(6).trimmingCharacters(in: .whitespaces)
        guard let dash = spec.firstIndex(of: "-") else { return .whole }
        let first = spec[..<dash], second = spec[spec.index(after: dash)...]
        guard first.allSatisfy(\.isASCIIDigit), second.allSatisfy(\.isASCIIDigit), !(first.isEmpty && second.isEmpty) else { return .whole }
        if first.isEmpty {
            // A suffix: the last N bytes. Digits past UInt64 mean "more than the file": all of it.
            let count = UInt64(second) ?? UInt64.max
            guard count > 0, size > 0 else { return .unsatisfiable }
            let length = min(count, size)
            return .partial(ByteRange(offset: size - length, length: length))
        }
        guard let start = UInt64(first) else { return .unsatisfiable }  // past any file's end
        guard start < size else { return .unsatisfiable }
        let end = second.isEmpty ? size - 1 : min(UInt64(second) ?? UInt64.max, size - 1)
        guard end >= start else { return .whole }  // "500-100" is invalid: ignored, as RFC 9110 says
        return .partial(ByteRange(offset: start, length: end - start + 1))
    }
}

private extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
