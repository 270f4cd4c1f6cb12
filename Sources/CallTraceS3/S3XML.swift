import Foundation

/// What the blob store reads of S3's XML answers: the text of simple elements (`<Key>`,
/// `<UploadId>`, `<Code>`) and the elements that group them (`<Contents>`, `<Upload>`). S3's
/// answers are flat, attribute-free elements under one root, so a scan for the tags does;
/// anything it does not recognise it skips. XML's five named entities and numeric references
/// are decoded.
enum S3XML {
    /// The contents of every `<tag>…</tag>` in `xml`, in order (not nested in one another).
    static func elements(_ tag: String, in xml: Data) -> [Data] {
        let bytes = [UInt8](xml)
        let open = Array("<\(tag)>".utf8), close = Array("</\(tag)>".utf8)
        var found: [Data] = [], at = 0
        while let start = find(open, in: bytes, from: at) {
            let inner = start + open.count
            guard let end = find(close, in: bytes, from: inner) else { break }
            found.append(Data(bytes[inner..<end]))
            at = end + close.count
        }
        return found
    }

    /// The text of every `<tag>…</tag>` in `xml`, entities decoded.
    static func texts(_ tag: String, in xml: Data) -> [String] {
        elements(tag, in: xml).map { decode(String(decoding: $0, as: UTF8.self)) }
    }

    /// `text` as XML character data.
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        var index = start
        while index <= haystack.count - needle.count {
            if haystack[index] == needle[0] && haystack[index..<index + needle.count].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }

    private static let named = ["lt": "<", "gt": ">", "amp": "&", "quot": "\"", "apos": "'"]

    private static func decode(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var out = "", rest = Substring(text)
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semicolon = rest[amp...].prefix(12).firstIndex(of: ";") else { out += rest[amp...]; return out }
            let name = rest[rest.index(after: amp)..<semicolon]
            if let value = named[String(name)] {
                out += value
            } else if name.hasPrefix("#x"), let code = UInt32(name.dropFirst(2), radix: 16), let scalar = UnicodeScalar(code) {
                out.unicodeScalars.append(scalar)
            } else if name.hasPrefix("#"), let code = UInt32(name.dropFirst()), let scalar = UnicodeScalar(code) {
                out.unicodeScalars.append(scalar)
            } else {
                out += rest[amp...semicolon]
            }
            rest = rest[rest.index(after: semicolon)...]
        }
        return out + rest
    }
}
