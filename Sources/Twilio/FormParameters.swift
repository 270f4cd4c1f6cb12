public import Foundation

/// The name/value pairs of an `application/x-www-form-urlencoded` body: what Twilio POSTs to
/// webhooks, and what its REST API takes. Order and repeated names are kept, as sent.
public struct FormParameters: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    public struct Pair: Sendable, Equatable {
        public var name: String
        public var value: String

        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    public var pairs: [Pair]

    public init(_ pairs: [Pair] = []) { self.pairs = pairs }

    public init(_ pairs: [(String, String)]) { self.pairs = pairs.map { Pair($0.0, $0.1) } }

    public init(dictionaryLiteral elements: (String, String)...) { self.init(elements) }

    /// The first value of `name`, or nil.
    public subscript(name: String) -> String? { pairs.first { $0.name == name }?.value }

    /// Every value of `name`, in the order sent.
    public func values(of name: String) -> [String] { pairs.filter { $0.name == name }.map(\.value) }

    public mutating func append(_ name: String, _ value: String) { pairs.append(Pair(name, value)) }

    /// Appends `name` only when there is a value.
    public mutating func append(_ name: String, _ value: String?) {
        if let value { pairs.append(Pair(name, value)) }
    }

    /// Parses a form body: pairs split on `&`, name and value on the first `=`, `+` read as a
    /// space, then percent-decoding as UTF-8. Empty pieces (`a=1&&b=2`) are skipped.
    ///
    /// - Throws: `FormError` for a malformed escape (`%zz`, a `%` at the end) or bytes that are not
    ///   UTF-8 once decoded; the error never quotes the body.
    public init(parsing body: Data) throws(FormError) {
        var pairs: [Pair] = []
        for piece in body.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = piece.firstIndex(of: UInt8(ascii: "="))
            let name = try Self.decode(piece[piece.startIndex..<(equals ?? piece.endIndex)])
            let value = if let equals { try Self.decode(piece[piece.index(after: equals)...]) } else { "" }
            pairs.append(Pair(name, value))
        }
        self.pairs = pairs
    }

    /// The form body: each name and value percent-encoded (everything but RFC 3986's unreserved
    /// characters, so `+` travels as `%2B` and a space as `%20`), pairs joined with `&`.
    public var encoded: Data { Data(encodedText.utf8) }

    public var encodedText: String {
        pairs.map { "\(Self.encode($0.name))=\(Self.encode($0.value))" }.joined(separator: "&")
    }

    /// `text` percent-encoded for a form or a query.
    public static func encode(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        let digits = Array("0123456789ABCDEF")
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            default:
                out.append("%")
                out.append(digits[Int(byte >> 4)])
                out.append(digits[Int(byte & 15)])
            }
        }
        return out
    }

    private static func decode(_ bytes: Data.SubSequence) throws(FormError) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%") {
                guard bytes.distance(from: index, to: bytes.endIndex) >= 3,
                      let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) else {
                    throw FormError("the form has a malformed percent escape")
                }
                out.append(high << 4 | low)
                index += 2
            } else {
                out.append(byte)
            }
            index += 1
        }
        guard let text = String(validating: out, as: UTF8.self) else { throw FormError("the form is not UTF-8 text") }
        return text
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// A form body that cannot be read; the text says why, never what it held.
public struct FormError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    init(_ description: String) { self.description = description }
}
