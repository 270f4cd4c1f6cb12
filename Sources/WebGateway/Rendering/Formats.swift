import CallTraceProto
import Foundation

/// How the pages write times, durations, sizes and the services' enums: UK formats in
/// Europe/London, plain English.
enum Formats {
    static let london = TimeZone(identifier: "Europe/London")!

    private static func formatter(_ pattern: String) -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_GB")
        formatter.timeZone = london
        formatter.dateFormat = pattern
        return formatter
    }

    private static let dateTime = formatter("d MMM yyyy, HH:mm")
    private static let dateOnly = formatter("d MMM yyyy")
    private static let isoDay = formatter("yyyy-MM-dd")
    private static let lock = NSLock()

    /// "5 Dec 2026, 17:58" (London time); "" for 0.
    static func dateTime(unixMs: Int64) -> String {
        guard unixMs > 0 else { return "" }
        return lock.withLock { dateTime.string(from: Date(timeIntervalSince1970: Double(unixMs) / 1000)) }
    }

    /// "5 Dec 2026"; "" for 0.
    static func date(unixMs: Int64) -> String {
        guard unixMs > 0 else { return "" }
        return lock.withLock { dateOnly.string(from: Date(timeIntervalSince1970: Double(unixMs) / 1000)) }
    }

    /// The value of an `<input type="date">` for a time.
    static func isoDay(unixMs: Int64) -> String {
        lock.withLock { isoDay.string(from: Date(timeIntervalSince1970: Double(unixMs) / 1000)) }
    }

    /// The start of a London day given as `yyyy-MM-dd` (Unix ms), or nil when it is not a date.
    static func startOfDay(_ text: String) -> Int64? {
        guard text.count == 10, let date = lock.withLock({ isoDay.date(from: text) }) else { return nil }
        return Int64(date.timeIntervalSince1970 * 1000)
    }

    /// The start of the London day after `yyyy-MM-dd` (Unix ms): 23 or 25 hours later on the
    /// days the clocks change.
    static func startOfNextDay(_ text: String) -> Int64? {
        guard let start = startOfDay(text) else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = london
        guard let next = calendar.date(byAdding: .day, value: 1, to: Date(timeIntervalSince1970: Double(start) / 1000)) else { return nil }
        return Int64(next.timeIntervalSince1970 * 1000)
    }

    /// "4:05" or "1:02:03".
    static func duration(ms: UInt64) -> String {
        let seconds = Int(clamping: ms / 1000)
        let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return h > 0 ? "\(h):\(two(m)):\(two(s))" : "\(m):\(two(s))"
    }

    /// "1.2 MB".
    static func size(bytes: UInt64) -> String {
        ByteCountFormatter.string(fromByteCount: Int64(clamping: bytes), countStyle: .file)
    }

    static func channel(_ channel: Calltrace_Transcript_V1_Channel) -> String {
        switch channel {
        case .googleAds: "Google Ads"
        case .paidSocial: "Paid social"
        case .organic: "Organic search"
        case .directory: "Directory"
        case .referral: "Referral"
        case .print: "Print"
        case .email: "E-mail"
        case .other: "Other"
        default: "Not set"
        }
    }

    static func direction(_ direction: Calltrace_Transcript_V1_Direction) -> String {
        direction == .outbound ? "Outbound" : "Inbound"
    }

    static func outcome(_ outcome: Calltrace_Transcript_V1_Outcome) -> String {
        switch outcome {
        case .answered: "Answered"
        case .missed: "Missed"
        case .voicemail: "Voicemail"
        case .abandoned: "Abandoned"
        default: "In progress"
        }
    }

    static func enquiry(_ enquiry: Calltrace_Transcript_V1_Enquiry) -> String {
        switch enquiry {
        case .new: "New enquiry"
        case .notNew: "Not a new enquiry"
        default: "Not marked"
        }
    }

    static let practiceAreas: [(Calltrace_Transcript_V1_PracticeArea, String)] = [
        (.personalInjury, "Personal injury"), (.clinicalNegligence, "Clinical negligence"), (.family, "Family"),
        (.conveyancing, "Conveyancing"), (.willsAndProbate, "Wills and probate"), (.employment, "Employment"),
        (.immigration, "Immigration"), (.criminal, "Criminal"), (.housingAndLandlordTenant, "Housing and landlord–tenant"),
        (.commercial, "Commercial"), (.disputeResolution, "Dispute resolution"), (.other, "Other"),
    ]

    static func practiceArea(_ area: Calltrace_Transcript_V1_PracticeArea) -> String {
        practiceAreas.first { $0.0 == area }?.1 ?? "Not set"
    }

    static func role(_ role: Calltrace_Identity_V1_Role) -> String {
        switch role {
        case .admin: "Admin"
        case .member: "Member"
        case .analyst: "Analyst"
        default: "No role"
        }
    }

    /// The MIME type of a recording's format.
    static func mimeType(_ format: Calltrace_Media_V1_AudioFormat) -> String {
        switch format {
        case .mp3: "audio/mpeg"
        case .opus: "audio/ogg"
        case .flac: "audio/flac"
        default: "audio/wav"
        }
    }
}
