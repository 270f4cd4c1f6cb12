import Foundation

/// A submitted form (`application/x-www-form-urlencoded`), after its form token was checked
/// (`Form.read`, in Forms.swift: apart, so the fuzzer compiles the decoder on its own).
struct Form: Sendable {
    private let fields: [String: String]

    init(fields: [String: String]) { self.fields = fields }

    /// The field's value, trimmed of surrounding white space; "" when absent.
    subscript(_ name: String) -> String { (fields[name] ?? "").trimmingCharacters(in: .whitespacesAndNewlines) }
    /// The value exactly as typed (passwords).
    func raw(_ name: String) -> String { fields[name] ?? "" }
    /// What follows `prefix` in the names of the fields that start with it: the ticked boxes of
    /// a list named `number-<value>` (a repeated name keeps only its last value).
    func names(after prefix: String) -> [String] { fields.keys.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }.sorted() }

    /// `a=1&b=two+words` → fields; the last of a repeated name wins; nil for bytes that are not
    /// a form (invalid percent-escapes or UTF-8).
    static func decode(_ body: String) -> [String: String]? {
        var fields: [String: String] = [:]
        for pair in body.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = unescape(parts[0]), let value = unescape(parts.count > 1 ? parts[1] : "") else { return nil }
            fields[name] = value
        }
        return fields
    }

    /// A value for a query or form: everything but unreserved characters percent-escaped (so a
    /// `+` in a source's name stays a `+`).
    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "-._~"))) ?? ""
    }

    private static func unescape(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}
