import CallTraceProto
import CallTraceServiceHost
import Foundation

/// The alerts a person can choose (issue 32), each with the permission its content needs, the
/// fields a sender gives and the e-mail identity writes from them. A sender never writes the
/// text: identity does, so no alert can carry more than its template says. No template puts a
/// caller's number anywhere, and a subject line holds only the kind, a source's name, a time or
/// counts.
enum AlertKind: Int, CaseIterable, Sendable {
    case missedCall = 1, newEnquiry, subjectRequestsDue, weeklySummary

    init?(_ proto: Calltrace_Identity_V1_AlertKind) {
        guard let kind = AlertKind(rawValue: proto.rawValue) else { return nil }
        self = kind
    }

    var proto: Calltrace_Identity_V1_AlertKind { Calltrace_Identity_V1_AlertKind(rawValue: rawValue) ?? .unspecified }

    /// What a recipient's role must allow, now: the alert tells no more than they may already see.
    var permission: Calltrace_Identity_V1_Permission {
        switch self {
        case .missedCall, .weeklySummary: .reportsRead
        case .newEnquiry: .transcriptsRead
        case .subjectRequestsDue: .requestsManage
        }
    }

    var description: String {
        switch self {
        case .missedCall: "A call was missed, went to voicemail or was abandoned (with a link to call back)"
        case .newEnquiry: "The AI found a call to be a new enquiry (with its summary)"
        case .subjectRequestsDue: "Subject requests are due within 5 working days, or overdue (each morning there are some)"
        case .weeklySummary: "Monday: last week's calls, enquiries and matters by source"
        }
    }

    /// The field names and how each is checked.
    var fields: [String: AlertField] {
        switch self {
        case .missedCall:
            ["call_id": .identifier, "source": .line(100), "started_at_unix_ms": .time, "outcome": .choice(["missed", "voicemail", "abandoned"])]
        case .newEnquiry:
            ["call_id": .identifier, "source": .line(100), "started_at_unix_ms": .time, "practice_area": .line(100), "summary": .paragraph(4000)]
        case .subjectRequestsDue:
            ["due_soon": .count, "overdue": .count, "earliest_due_unix_ms": .time]
        case .weeklySummary:
            ["week_start_unix_ms": .time, "calls": .count, "new_enquiries": .count, "matters_opened": .count, "rows": .rows(columns: 4, max: 200)]
        }
    }

    /// The fields every alert of this kind must have.
    var required: Set<String> {
        switch self {
        case .missedCall: ["call_id", "started_at_unix_ms", "outcome"]
        case .newEnquiry: ["call_id", "started_at_unix_ms"]
        case .subjectRequestsDue: ["due_soon", "overdue"]
        case .weeklySummary: ["week_start_unix_ms", "calls", "new_enquiries", "matters_opened"]
        }
    }
}

/// How a field's value is checked.
enum AlertField: Sendable {
    /// An id of ours: letters, digits, `_` and `-`, at most 64.
    case identifier
    /// One line of plain text.
    case line(Int)
    /// Lines of plain text.
    case paragraph(Int)
    /// UTC milliseconds since 1970.
    case time
    /// A whole number, 0 or more.
    case count
    case choice(Set<String>)
    /// Lines of `columns` tab-separated cells, the first text and the rest counts.
    case rows(columns: Int, max: Int)

    func check(_ value: String, _ name: String) throws -> String {
        switch self {
        case .identifier:
            guard (1...64).contains(value.count), value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
                throw DomainError.invalid("\(name) is not an id")
            }
            return value
        case .line(let max):
            return try DomainText.line(value, name, max: max)
        case .paragraph(let max):
            let text = try DomainText.paragraph(value, name, max: max)
            try text.split(separator: "\n", omittingEmptySubsequences: false).forEach { _ = try DomainText.line(String($0), name, max: max) }
            return text
        case .time:
            guard let ms = Int64(value), ms >= 0, ms < 32_503_680_000_000 else { throw DomainError.invalid("\(name) is not a time") }
            return value
        case .count:
            guard let n = UInt32(value) else { throw DomainError.invalid("\(name) is not a count") }
            return String(n)
        case .choice(let allowed):
            guard allowed.contains(value) else { throw DomainError.invalid("\(name) is one of \(allowed.sorted().joined(separator: ", "))") }
            return value
        case .rows(let columns, let max):
            let lines = value.split(separator: "\n")
            guard lines.count <= max else { throw DomainError.invalid("\(name) has at most \(max) lines") }
            for line in lines {
                let cells = line.split(separator: "\t", omittingEmptySubsequences: false)
                guard cells.count == columns else { throw DomainError.invalid("\(name): each line has \(columns) tab-separated cells") }
                _ = try DomainText.line(String(cells[0]), name, max: 100)
                guard cells.dropFirst().allSatisfy({ UInt32($0) != nil }) else { throw DomainError.invalid("\(name): cells after the first are counts") }
            }
            return value
        }
    }
}

/// One alert as identity writes it: the fields checked, ready to be put into words.
struct Alert: Sendable {
    let kind: AlertKind
    let fields: [String: String]

    /// Checks `fields` against the kind's template: every name known, every required one there,
    /// each value well-formed.
    init(kind: AlertKind, fields raw: [String: String]) throws {
        let known = kind.fields
        var fields: [String: String] = [:]
        for (name, value) in raw {
            guard let field = known[name] else { throw DomainError.invalid("\(name) is not a field of this alert") }
            let checked = try field.check(value, name)
            if !checked.isEmpty { fields[name] = checked }
        }
        let missing = kind.required.subtracting(fields.keys)
        guard missing.isEmpty else { throw DomainError.invalid("this alert needs \(missing.sorted().joined(separator: ", "))") }
        self.kind = kind
        self.fields = fields
    }

    /// The subject and body for a person of `firm`; links start with `linkBase` (the web app's
    /// address), or are paths when the deployment has none configured.
    func words(firm: String, linkBase: String?) -> (subject: String, body: String) {
        let base = (linkBase ?? "").hasSuffix("/") ? String((linkBase ?? "").dropLast()) : (linkBase ?? "")
        let source = fields["source"].map(Self.withoutNumbers).flatMap { $0.isEmpty ? nil : $0 } ?? "no source"
        let when = fields["started_at_unix_ms"].map(Self.londonTime) ?? ""
        let footer = """


            You get this e-mail because you chose it in CallTrace for \(firm). Change your alerts: \(base)/account/alerts
            """
        switch kind {
        case .missedCall:
            let what = switch fields["outcome"] {
            case "voicemail": "Voicemail left"
            case "abandoned": "Abandoned call"
            default: "Missed call"
            }
            return ("\(what): \(source), \(when)", """
                \(what) for \(firm): a call to \(source) at \(when) (London time).

                Open the call to listen, read it and call back: \(base)/calls/\(fields["call_id"] ?? "")
                """ + footer)
        case .newEnquiry:
            let area = fields["practice_area"].map(Self.withoutNumbers).flatMap { $0.isEmpty ? nil : $0 }
            let summary = fields["summary"].map { "\n\nThe AI's summary (check it against the call):\n\n\($0)" } ?? ""
            return ("New enquiry\(area.map { " (\($0))" } ?? ""): \(source), \(when)", """
                The AI analysis found a new enquiry for \(firm): a call to \(source) at \(when) (London time)\(area.map { ", \($0)" } ?? "").\(summary)

                Confirm or correct it on the call's page: \(base)/calls/\(fields["call_id"] ?? "")
                """ + footer)
        case .subjectRequestsDue:
            let overdue = Int(fields["overdue"] ?? "0") ?? 0, soon = Int(fields["due_soon"] ?? "0") ?? 0
            var parts: [String] = []
            if overdue > 0 { parts.append("\(overdue) overdue") }
            if soon > 0 { parts.append("\(soon) due within 5 working days") }
            let earliest = fields["earliest_due_unix_ms"].map { "\n\nThe earliest is due \(Self.londonDay($0))." } ?? ""
            return ("Subject requests: \(parts.joined(separator: ", "))", """
                \(firm) has subject requests to answer: \(parts.joined(separator: " and ")).\(earliest)

                Open them: \(base)/requests
                """ + footer)
        case .weeklySummary:
            let start = fields["week_start_unix_ms"] ?? "0"
            let rows = (fields["rows"] ?? "").split(separator: "\n").map { line -> String in
                let cells = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                return "  \(Self.withoutNumbers(cells[0])): \(Self.counted(cells[1], "call")), \(Self.counted(cells[2], "new enquiry", "new enquiries")), "
                    + "\(Self.counted(cells[3], "matter")) opened"
            }
            return ("Your week in calls: from \(Self.londonDay(start))", """
                \(firm), the week from \(Self.londonDay(start)): \(Self.counted(fields["calls"] ?? "0", "call")), \
                \(Self.counted(fields["new_enquiries"] ?? "0", "new enquiry", "new enquiries")), \(Self.counted(fields["matters_opened"] ?? "0", "matter")) opened.
                \(rows.isEmpty ? "" : "\nBy source:\n" + rows.joined(separator: "\n") + "\n")
                The full report: \(base)/reports
                """ + footer)
        }
    }

    /// A name with any run of seven or more digits (a phone number, however spaced) masked: a
    /// source or practice area a firm named after a number says nothing of a caller's, but an
    /// alert shows no number at all.
    static func withoutNumbers(_ text: String) -> String {
        var out = "", run = ""
        func flush() {
            // Separators after the last digit are not part of the number.
            let tail = run.reversed().prefix { !$0.isNumber }.count
            out += run.dropLast(tail).filter(\.isNumber).count >= 7 ? "[number]" + run.suffix(tail) : run
            run = ""
        }
        for character in text {
            if character.isNumber || (!run.isEmpty && (character == " " || character == "-" || character == "+" || character == "(" || character == ")")) {
                run.append(character)
            } else if character == "+" || character == "(" {
                flush(); run.append(character)
            } else {
                flush(); out.append(character)
            }
        }
        flush()
        return out.trimmingCharacters(in: .whitespaces)
    }

    /// "1 call", "2 calls".
    static func counted(_ count: String, _ one: String, _ many: String? = nil) -> String {
        "\(count) \(count == "1" ? one : many ?? one + "s")"
    }

    static let london = TimeZone(identifier: "Europe/London")!

    static func londonTime(_ ms: String) -> String {
        format(ms, "EEE d MMM HH:mm")
    }

    static func londonDay(_ ms: String) -> String {
        format(ms, "EEE d MMM yyyy")
    }

    private static func format(_ ms: String, _ pattern: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_GB")
        formatter.timeZone = london
        formatter.dateFormat = pattern
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(Int64(ms) ?? 0) / 1000))
    }
}
