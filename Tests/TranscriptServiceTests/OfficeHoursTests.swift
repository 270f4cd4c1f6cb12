import Foundation
import Testing
@testable import TranscriptDomain

@Suite("Office hours in Europe/London without tzdata")
struct OfficeHoursTests {
    static func utc(_ text: String) -> Int64 {
        Int64(ISO8601DateFormatter().date(from: text)!.timeIntervalSince1970 * 1000)
    }

    @Test("UK summer time starts and ends at 01:00 UTC on the last Sundays of March and October", arguments: [
        (2024, "2024-03-31T01:00:00Z", "2024-10-27T01:00:00Z"), (2025, "2025-03-30T01:00:00Z", "2025-10-26T01:00:00Z"),
        (2026, "2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z"), (2027, "2027-03-28T01:00:00Z", "2027-10-31T01:00:00Z"),
        (2030, "2030-03-31T01:00:00Z", "2030-10-27T01:00:00Z"),
    ])
    func switches(year: Int, start: String, end: String) {
        #expect(LondonTime.summerTimeStart(year: Int64(year)) == Self.utc(start))
        #expect(LondonTime.summerTimeEnd(year: Int64(year)) == Self.utc(end))
    }

    @Test("At the switch instants the clock jumps from 01:00 to 02:00 and back from 02:00 to 01:00")
    func switchInstants() {
        let spring = Self.utc("2026-03-29T01:00:00Z"), autumn = Self.utc("2026-10-25T01:00:00Z")
        #expect(LondonTime(unixMs: spring - 1) == LondonTime(weekday: 7, minute: 59, isSummerTime: false), "00:59 GMT")
        #expect(LondonTime(unixMs: spring) == LondonTime(weekday: 7, minute: 120, isSummerTime: true), "02:00 BST")
        #expect(LondonTime(unixMs: autumn - 1) == LondonTime(weekday: 7, minute: 119, isSummerTime: true), "01:59 BST")
        #expect(LondonTime(unixMs: autumn) == LondonTime(weekday: 7, minute: 60, isSummerTime: false), "01:00 GMT, again")
    }

    @Test("Ordinary times: weekdays, the edges of the hours, midnight in summer, before 1970")
    func ordinaryTimes() {
        let hours = CallRouting(officeHours: (1...5).map { OfficeHours(weekday: $0, opens: 540, closes: 1050) })
        let cases: [(String, Bool)] = [
            ("2026-07-15T08:30:00Z", true),    // Wednesday 09:30 BST
            ("2026-07-15T07:59:59Z", false),   // 08:59 BST
            ("2026-07-15T16:29:59Z", true),    // 17:29 BST
            ("2026-07-15T16:30:00Z", false),   // 17:30 BST: closed
            ("2026-01-14T08:30:00Z", false),   // Wednesday 08:30 GMT
            ("2026-01-14T09:00:00Z", true),    // 09:00 GMT
            ("2026-01-14T17:29:00Z", true),
            ("2026-01-14T17:30:00Z", false),
            ("2026-07-18T10:00:00Z", false),   // Saturday
            ("2026-07-19T23:30:00Z", false),   // Sunday 23:30 UTC is Monday 00:30 BST: before opening
        ]
        for (time, open) in cases { #expect(hours.isOpen(atUnixMs: Self.utc(time)) == open, "\(time)") }
        #expect(LondonTime(unixMs: Self.utc("2026-07-19T23:30:00Z")) == LondonTime(weekday: 1, minute: 30, isSummerTime: true))
        #expect(LondonTime(unixMs: Self.utc("1969-12-31T23:00:00Z")) == LondonTime(weekday: 3, minute: 1380, isSummerTime: false))
        let allDaySunday = CallRouting(officeHours: [OfficeHours(weekday: 7, opens: 0, closes: 1440)])
        #expect(allDaySunday.isOpen(atUnixMs: Self.utc("2026-07-19T22:59:00Z")) && !allDaySunday.isOpen(atUnixMs: Self.utc("2026-07-19T23:00:00Z")))
        #expect(CallRouting().isOpen(atUnixMs: Self.utc("2026-12-25T03:00:00Z")), "no hours: always open")
        #expect(LondonTime(unixMs: .min).weekday >= 1 && LondonTime(unixMs: .max).weekday <= 7, "made-up instants do not trap")
    }
}
