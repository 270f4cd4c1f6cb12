import Foundation

/// CSV for spreadsheets (RFC 4180: every field quoted, CRLF line ends), safe to open in Excel
/// or LibreOffice: a field a spreadsheet would read as a formula (starting with = + - @, a tab
/// or a carriage return) gets a leading apostrophe, so a source or resource name someone typed
/// shows as text and never runs.
enum CSV {
    static func field(_ text: String) -> String {
        var value = text
        if let first = value.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) { value = "'" + value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// One line of fields, ending with CRLF.
    static func line(_ fields: [String]) -> String {
        fields.map(field).joined(separator: ",") + "\r\n"
    }
}
