/// Free text people type into a service's records (a reason, a source's name, a note): checked
/// the same way in every service, and never echoed in the error (it may hold what the trail
/// must not). Text kept in the audit trail is read in terminals: no control character, no line
/// break of any kind, may reach it.
public enum DomainText {
    /// One line of at most `max` characters, trimmed (empty is allowed unless `required`): no
    /// control characters (C0, DEL, C1 — an escape sequence would drive the reader's terminal),
    /// no line or paragraph separators.
    public static func line(_ value: String, _ field: String, max: Int, required: Bool = false) throws -> String {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard !required || !trimmed.isEmpty else { throw DomainError.invalid("\(field) is required") }
        guard trimmed.count <= max, !trimmed.unicodeScalars.contains(where: breaksLine) else {
            throw DomainError.invalid("\(field) is one line of at most \(max) characters")
        }
        return trimmed
    }

    /// A paragraph (line breaks allowed) of at most `max` characters, trimmed.
    public static func paragraph(_ value: String, _ field: String, max: Int, required: Bool = false) throws -> String {
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !required || !trimmed.isEmpty else { throw DomainError.invalid("\(field) is required") }
        guard trimmed.count <= max else { throw DomainError.invalid("\(field) is at most \(max) characters") }
        return trimmed
    }

    private static func breaksLine(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .lineSeparator, .paragraphSeparator: true
        default: false
        }
    }
}
