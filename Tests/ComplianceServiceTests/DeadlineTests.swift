import ComplianceDomain
import Testing

/// The ICO's rules for when a subject request must be answered, against dates worked by hand.
@Suite("The deadline engine")
struct DeadlineTests {
    @Test("Due dates", arguments: [
        // (received, nation, extended, paused days, due, why)
        ("2025-09-03", "england-and-wales", false, 0, "2025-10-03", "the corresponding date next month"),
        ("2024-11-25", "england-and-wales", false, 0, "2024-12-27", "25 Dec and 26 Dec are bank holidays: the next working day"),
        ("2025-01-31", "england-and-wales", false, 0, "2025-02-28", "no 31 February: the month's last day (a Friday)"),
        ("2024-01-31", "england-and-wales", false, 0, "2024-02-29", "leap year: 29 February (a Thursday)"),
        ("2026-01-31", "england-and-wales", false, 0, "2026-03-02", "28 February 2026 is a Saturday: Monday 2 March"),
        ("2025-07-05", "england-and-wales", false, 0, "2025-08-05", "an ordinary Tuesday"),
        ("2025-07-04", "scotland", false, 0, "2025-08-05", "4 August 2025 is Scotland's summer bank holiday"),
        ("2025-06-12", "northern-ireland", false, 0, "2025-07-15", "12 July 2025 is a Saturday; Monday 14 July is NI's holiday"),
        ("2025-06-12", "england-and-wales", false, 0, "2025-07-14", "England and Wales work on 14 July"),
        ("2026-10-30", "scotland", false, 0, "2026-12-01", "30 November 2026 is St Andrew's Day in Scotland"),
        ("2026-10-30", "england-and-wales", false, 0, "2026-11-30", "…but not in England"),
        ("2025-09-03", "england-and-wales", true, 0, "2025-12-03", "extended: three months from the same start"),
        ("2025-09-03", "england-and-wales", false, 10, "2025-10-13", "ten paused days are added"),
        ("2025-11-30", "england-and-wales", true, 0, "2026-03-02", "extended from 30 Nov: 28 Feb 2026 is a Saturday"),
    ] as [(String, String, Bool, Int, String, String)])
    func dueDates(received: String, nation: String, extended: Bool, paused: Int, due: String, why: String) throws {
        let day = try #require(Day(received))
        let computed = try DeadlineEngine.dueDate(received: day, nation: try #require(Nation(rawValue: nation)), extended: extended, pausedDays: paused)
        #expect(computed.description == due, "\(why)")
    }

    @Test("Scotland's 4 August holiday moves its due date where England's does not")
    func nationsDiffer() throws {
        let received = try #require(Day("2025-07-04"))
        #expect(try DeadlineEngine.dueDate(received: received, nation: .englandAndWales).description == "2025-08-04")
        #expect(try DeadlineEngine.dueDate(received: received, nation: .scotland).description == "2025-08-05")
    }

    @Test("Dates outside the known bank holidays, malformed dates and bad files are refused")
    func refusals() {
        #expect(Day("2025-02-29") == nil && Day("2025-13-01") == nil && Day("25-01-01") == nil)
        #expect(throws: DeadlineError.self) { try DeadlineEngine.dueDate(received: Day(year: 2031, month: 1, day: 5), nation: .scotland) }
        #expect(throws: DeadlineError.self) { try BankHolidays.parse(.init("{\"scotland\": {}}".utf8), source: "test") }
        #expect(BankHolidays.shipped.years(of: .northernIreland) == 2024...2027)
    }
}
