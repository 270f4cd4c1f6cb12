import Foundation

/// A calendar day, without a time or a time zone.
public struct Day: Comparable, Hashable, Sendable, CustomStringConvertible {
    public let year: Int, month: Int, day: Int

    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// `YYYY-MM-DD`; nil for anything else or a day that does not exist.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
              (1...12).contains(month), (1...Day.length(of: month, in: year)).contains(day) else { return nil }
        self.init(year: year, month: month, day: day)
    }

    public var description: String { String(format: "%04d-%02d-%02d", year, month, day) }

    public static func < (a: Day, b: Day) -> Bool { (a.year, a.month, a.day) < (b.year, b.month, b.day) }

    static func length(of month: Int, in year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// The corresponding date `months` later, or that month's last day where there is none
    /// (31 January + 1 month = the last day of February).
    public func adding(months: Int) -> Day {
        let total = year * 12 + (month - 1) + months
        let (y, m) = (total / 12, total % 12 + 1)
        return Day(year: y, month: m, day: min(day, Day.length(of: m, in: y)))
    }

    /// Days since 1970-01-01 (proleptic Gregorian), for day arithmetic and weekdays.
    public var ordinal: Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    init(ordinal: Int) {
        let z = ordinal + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        self.init(year: yoe + era * 400 + (m <= 2 ? 1 : 0), month: m, day: d)
    }

    public func adding(days: Int) -> Day { Day(ordinal: ordinal + days) }

    /// The day it is in the UK at `unixMs` (London time, which follows the clocks changing).
    public static func inUK(atUnixMs unixMs: Int64) -> Day {
        let date = Date(timeIntervalSince1970: Double(unixMs) / 1000)
        let offset = Int64(Self.london.secondsFromGMT(for: date)) * 1000
        let local = unixMs + offset
        return Day(ordinal: Int((local - (local % 86_400_000 + 86_400_000) % 86_400_000) / 86_400_000))
    }

    public static let london = TimeZone(identifier: "Europe/London") ?? TimeZone(secondsFromGMT: 0)!

    /// Saturday or Sunday (1970-01-01 was a Thursday).
    var isWeekend: Bool { [2, 3].contains(((ordinal % 7) + 7) % 7) }
}

/// The three bank-holiday calendars of the UK.
public enum Nation: String, CaseIterable, Sendable {
    case englandAndWales = "england-and-wales"
    case scotland
    case northernIreland = "northern-ireland"
}

/// UK bank holidays per nation: GOV.UK's list (https://www.gov.uk/bank-holidays.json, the same
/// JSON shape) for the years it covers, so its one-off proclamations (a jubilee, a coronation, a
/// moved early-May holiday) count; for any other year, the holidays the Banking and Financial
/// Dealings Act 1971 and custom make (`BankHolidayRules`). `shipped` is the list this release
/// carries, and `load(from:)` reads a newer download.
public struct BankHolidays: Sendable {
    public let source: String
    let days: [Nation: Set<Day>]
    /// The years the list covers, per nation.
    let covered: [Nation: Set<Int>]

    init(source: String, days: [Nation: Set<Day>]) {
        self.source = source
        self.days = days
        covered = days.mapValues { Set($0.map(\.year)) }
    }

    public func isHoliday(_ day: Day, in nation: Nation) -> Bool {
        covers(day.year, nation) ? days[nation]?.contains(day) ?? false : BankHolidayRules.holidays(in: day.year, nation: nation).contains(day)
    }

    func covers(_ year: Int, _ nation: Nation) -> Bool { covered[nation]?.contains(year) ?? false }

    /// What decides `nation`'s holidays in `year`: this list, or the rules.
    public func decider(of year: Int, in nation: Nation) -> String {
        covers(year, nation) ? source : "the statutory and customary rules (\(source) has no \(year))"
    }

    /// The years the list covers for `nation` (other years follow the rules).
    public func years(of nation: Nation) -> ClosedRange<Int>? {
        guard let all = days[nation], let first = all.min(), let last = all.max() else { return nil }
        return first.year...last.year
    }

    /// GOV.UK's format: `{"england-and-wales": {"events": [{"date": "2026-12-25", …}]}, …}`.
    public static func parse(_ json: Data, source: String) throws -> BankHolidays {
        guard let object = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else {
            throw DeadlineError("the bank holidays are not GOV.UK's JSON (an object of divisions)")
        }
        var days: [Nation: Set<Day>] = [:]
        for nation in Nation.allCases {
            guard let division = object[nation.rawValue] as? [String: Any], let events = division["events"] as? [[String: Any]] else {
                throw DeadlineError("the bank holidays have no \(nation.rawValue) events")
            }
            days[nation] = Set(try events.map { event in
                guard let text = event["date"] as? String, let day = Day(text) else { throw DeadlineError("a bank holiday's date is not YYYY-MM-DD") }
                return day
            })
        }
        return BankHolidays(source: source, days: days)
    }

    public static func load(from path: String) throws -> BankHolidays {
        guard let data = FileManager.default.contents(atPath: path) else { throw DeadlineError("\(path) cannot be read") }
        return try parse(data, source: path)
    }

    /// The copy shipped with this release (GOV.UK, 2022–2027; 2027 as announced): 2022's and
    /// 2023's one-off days (the platinum jubilee, the state funeral, the coronation) are in it.
    public static let shipped: BankHolidays = {
        func events(_ dates: [String]) -> [[String: String]] { dates.map { ["date": $0] } }
        let json: [String: Any] = [
            "england-and-wales": ["division": "england-and-wales", "events": events([
                "2022-01-03", "2022-04-15", "2022-04-18", "2022-05-02", "2022-06-02", "2022-06-03", "2022-08-29", "2022-09-19", "2022-12-26",
                "2022-12-27",
                "2023-01-02", "2023-04-07", "2023-04-10", "2023-05-01", "2023-05-08", "2023-05-29", "2023-08-28", "2023-12-25", "2023-12-26",
                "2024-01-01", "2024-03-29", "2024-04-01", "2024-05-06", "2024-05-27", "2024-08-26", "2024-12-25", "2024-12-26",
                "2025-01-01", "2025-04-18", "2025-04-21", "2025-05-05", "2025-05-26", "2025-08-25", "2025-12-25", "2025-12-26",
                "2026-01-01", "2026-04-03", "2026-04-06", "2026-05-04", "2026-05-25", "2026-08-31", "2026-12-25", "2026-12-28",
                "2027-01-01", "2027-03-26", "2027-03-29", "2027-05-03", "2027-05-31", "2027-08-30", "2027-12-27", "2027-12-28",
            ])],
            "scotland": ["division": "scotland", "events": events([
                "2022-01-03", "2022-01-04", "2022-04-15", "2022-05-02", "2022-06-02", "2022-06-03", "2022-08-01", "2022-09-19", "2022-11-30",
                "2022-12-26", "2022-12-27",
                "2023-01-02", "2023-01-03", "2023-04-07", "2023-05-01", "2023-05-08", "2023-05-29", "2023-08-07", "2023-11-30", "2023-12-25",
                "2023-12-26",
                "2024-01-01", "2024-01-02", "2024-03-29", "2024-05-06", "2024-05-27", "2024-08-05", "2024-12-02", "2024-12-25", "2024-12-26",
                "2025-01-01", "2025-01-02", "2025-04-18", "2025-05-05", "2025-05-26", "2025-08-04", "2025-12-01", "2025-12-25", "2025-12-26",
                "2026-01-01", "2026-01-02", "2026-04-03", "2026-05-04", "2026-05-25", "2026-08-03", "2026-11-30", "2026-12-25", "2026-12-28",
                "2027-01-01", "2027-01-04", "2027-03-26", "2027-05-03", "2027-05-31", "2027-08-02", "2027-11-30", "2027-12-27", "2027-12-28",
            ])],
            "northern-ireland": ["division": "northern-ireland", "events": events([
                "2022-01-03", "2022-03-17", "2022-04-15", "2022-04-18", "2022-05-02", "2022-06-02", "2022-06-03", "2022-07-12", "2022-08-29",
                "2022-09-19", "2022-12-26", "2022-12-27",
                "2023-01-02", "2023-03-17", "2023-04-07", "2023-04-10", "2023-05-01", "2023-05-08", "2023-05-29", "2023-07-12", "2023-08-28",
                "2023-12-25", "2023-12-26",
                "2024-01-01", "2024-03-18", "2024-03-29", "2024-04-01", "2024-05-06", "2024-05-27", "2024-07-12", "2024-08-26", "2024-12-25",
                "2024-12-26",
                "2025-01-01", "2025-03-17", "2025-04-18", "2025-04-21", "2025-05-05", "2025-05-26", "2025-07-14", "2025-08-25", "2025-12-25",
                "2025-12-26",
                "2026-01-01", "2026-03-17", "2026-04-03", "2026-04-06", "2026-05-04", "2026-05-25", "2026-07-13", "2026-08-31", "2026-12-25",
                "2026-12-28",
                "2027-01-01", "2027-03-17", "2027-03-26", "2027-03-29", "2027-05-03", "2027-05-31", "2027-07-12", "2027-08-30", "2027-12-27",
                "2027-12-28",
            ])],
        ]
        // swiftlint:disable:next force_try — the literal above is well formed; a test parses it.
        return try! parse(try! JSONSerialization.data(withJSONObject: json), source: "https://www.gov.uk/bank-holidays.json (shipped copy, 2022–2027)")
    }()
}

public struct DeadlineError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// When a subject request must be answered, as the ICO describes it: the period starts on the
/// day of receipt (or the day the identity proof, authority or clarification needed arrives);
/// the due date is the corresponding calendar date in the next month, or that month's last day
/// where there is none; an extension (complex or numerous requests) runs to three months from
/// the same start; days the clock was paused are added; a due date on a weekend or a bank
/// holiday of the nation moves to the next working day.
public enum DeadlineEngine {
    /// The day `count` working days after `start` (weekends and the nation's bank holidays do
    /// not count): "due within 5 working days" is due on or before `workingDays(5, after: today)`.
    public static func workingDays(_ count: Int, after start: Day, nation: Nation, holidays: BankHolidays = .shipped) -> Day {
        var day = start, left = count
        while left > 0 {
            day = day.adding(days: 1)
            if !day.isWeekend && !holidays.isHoliday(day, in: nation) { left -= 1 }
        }
        return day
    }

    public static func dueDate(received start: Day, nation: Nation, extended: Bool = false, pausedDays: Int = 0,
                               holidays: BankHolidays = .shipped) throws -> Day {
        try due(received: start, nation: nation, extended: extended, pausedDays: pausedDays, holidays: holidays).day
    }

    /// The due date, and which bank holidays decided it: GOV.UK's list, or the rules for a year
    /// the list does not cover.
    public static func due(received start: Day, nation: Nation, extended: Bool = false, pausedDays: Int = 0,
                           holidays: BankHolidays = .shipped) throws -> (day: Day, decidedBy: String) {
        guard pausedDays >= 0 else { throw DeadlineError("paused days cannot be negative") }
        guard (1900...9000).contains(start.year), pausedDays <= 3650 else {
            throw DeadlineError("a request received in \(start.year) with \(pausedDays) paused days is not one this engine answers")
        }
        var due = start.adding(months: extended ? 3 : 1).adding(days: pausedDays)
        while due.isWeekend || holidays.isHoliday(due, in: nation) { due = due.adding(days: 1) }
        return (due, holidays.decider(of: due.year, in: nation))
    }
}

/// The UK's bank holidays by the rules that make them each year (the Banking and Financial
/// Dealings Act 1971, schedule 1, and the days proclaimed every year by custom), with substitute
/// days: a holiday that falls on a Saturday or Sunday moves to the next weekday that is not
/// already one (so Christmas on a Saturday is Monday 27, Boxing Day Tuesday 28).
///
/// | nation | holidays |
/// |---|---|
/// | England and Wales | 1 Jan, Good Friday, Easter Monday, first and last Mondays of May, last Monday of August, 25 and 26 Dec |
/// | Scotland | 1 and 2 Jan, Good Friday, first and last Mondays of May, first Monday of August, 30 Nov (St Andrew's), 25 and 26 Dec |
/// | Northern Ireland | England and Wales's, and 17 Mar (St Patrick's) and 12 Jul (Battle of the Boyne) |
///
/// One-off proclamations (an extra day for a jubilee, a moved early-May Monday) are not rules:
/// GOV.UK's list carries them for the years it covers.
public enum BankHolidayRules {
    public static func holidays(in year: Int, nation: Nation) -> Set<Day> {
        func monday(first month: Int) -> Day {
            let first = Day(year: year, month: month, day: 1)
            return first.adding(days: (7 + 4 - ((first.ordinal % 7) + 7) % 7) % 7)  // 1970-01-01 (ordinal 0) was a Thursday: Monday is 4
        }
        func monday(last month: Int) -> Day {
            let last = Day(year: year, month: month, day: Day.length(of: month, in: year))
            return last.adding(days: -((((last.ordinal % 7) + 7) % 7 - 4 + 7) % 7))
        }
        let easter = easterSunday(year)
        var movable: Set<Day> = [easter.adding(days: -2), monday(first: 5), monday(last: 5)]
        var fixed: [(Int, Int)] = [(1, 1), (12, 25), (12, 26)]
        switch nation {
        case .englandAndWales:
            movable.formUnion([easter.adding(days: 1), monday(last: 8)])
        case .scotland:
            movable.insert(monday(first: 8))
            fixed += [(1, 2), (11, 30)]
        case .northernIreland:
            movable.formUnion([easter.adding(days: 1), monday(last: 8)])
            fixed += [(3, 17), (7, 12)]
        }
        // Days on weekdays stand; those on a weekend go, in date order, to the next free weekday.
        var days = movable
        let dates = fixed.map { Day(year: year, month: $0.0, day: $0.1) }.sorted()
        for day in dates where !day.isWeekend { days.insert(day) }
        for day in dates where day.isWeekend {
            var substitute = day
            while substitute.isWeekend || days.contains(substitute) { substitute = substitute.adding(days: 1) }
            days.insert(substitute)
        }
        return days
    }

    /// Easter Sunday in the Gregorian calendar (the anonymous Gregorian algorithm, as in
    /// Meeus, "Astronomical Algorithms").
    public static func easterSunday(_ year: Int) -> Day {
        let a = year % 19, b = year / 100, c = year % 100, d = b / 4, e = b % 4
        let f = (b + 8) / 25, g = (b - f + 1) / 3, h = (19 * a + b - d - g + 15) % 30
        let i = c / 4, k = c % 4, l = (32 + 2 * e + 2 * i - h - k) % 7, m = (a + 11 * h + 22 * l) / 451
        let month = (h + l - 7 * m + 114) / 31, day = (h + l - 7 * m + 114) % 31 + 1
        return Day(year: year, month: month, day: day)
    }
}
