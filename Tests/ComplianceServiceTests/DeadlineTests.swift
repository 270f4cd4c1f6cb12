@testable import ComplianceDeadlines
@testable import ComplianceDomain
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

    @Test("Malformed dates and bad files are refused")
    func refusals() {
        #expect(Day("2025-02-29") == nil && Day("2025-13-01") == nil && Day("25-01-01") == nil)
        #expect(throws: DeadlineError.self) { try BankHolidays.parse(.init("{\"scotland\": {}}".utf8), source: "test") }
        #expect(throws: DeadlineError.self) { try DeadlineEngine.dueDate(received: Day(year: 2025, month: 1, day: 5), nation: .scotland, pausedDays: -1) }
        #expect(BankHolidays.shipped.years(of: .northernIreland) == 2022...2027)
    }

    @Test("The rules give GOV.UK's holidays, substitute days included, for every year of the shipped list without a proclamation",
          arguments: Nation.allCases)
    func rulesMatchGOVUK(nation: Nation) {
        for year in 2024...2027 {
            let listed = BankHolidays.shipped.days[nation]!.filter { $0.year == year }
            #expect(BankHolidayRules.holidays(in: year, nation: nation) == listed, "\(nation.rawValue) \(year)")
        }
    }

    @Test("GOV.UK's list overrides the rules with its one-off proclamations: 2022's jubilee (the spring holiday moved) and funeral, 2023's coronation")
    func proclamations() {
        func days(_ list: [String]) -> Set<Day> { Set(list.compactMap(Day.init)) }
        let listed2022 = BankHolidays.shipped.days[.englandAndWales]!.filter { $0.year == 2022 }
        let ruled2022 = BankHolidayRules.holidays(in: 2022, nation: .englandAndWales)
        #expect(listed2022.subtracting(ruled2022) == days(["2022-06-02", "2022-06-03", "2022-09-19"]))
        #expect(ruled2022.subtracting(listed2022) == days(["2022-05-30"]), "the last Monday of May moved to 2 June")
        #expect(BankHolidays.shipped.days[.scotland]!.filter { $0.year == 2023 }.subtracting(BankHolidayRules.holidays(in: 2023, nation: .scotland))
                == days(["2023-05-08"]))
        #expect(BankHolidays.shipped.isHoliday(Day(year: 2022, month: 9, day: 19), in: .northernIreland))
    }

    @Test("A due date in a year past the shipped list follows the rules, and the answer says which source decided", arguments: [
        // (received, nation, due, why)
        ("2031-11-25", "england-and-wales", "2031-12-29", "25 Dec 2031 is a Thursday, 26 a Friday: Monday 29"),
        ("2032-11-25", "england-and-wales", "2032-12-29", "25 Dec 2032 is a Saturday: Monday 27 and Tuesday 28 are the substitutes"),
        ("2032-11-30", "scotland", "2032-12-30", "30 Dec 2032, a Thursday, is a working day"),
        ("2033-12-02", "scotland", "2034-01-04", "2 Jan 2034 is a Monday, 3 Jan the substitute for 1 Jan (a Sunday)... 4 Jan"),
        ("2031-02-17", "northern-ireland", "2031-03-18", "17 Mar 2031, a Monday, is St Patrick's Day"),
        ("2030-03-19", "england-and-wales", "2030-04-23", "19 Apr 2030 is Good Friday, 22 Easter Monday; 23 April is a Tuesday"),
    ] as [(String, String, String, String)])
    func pastTheList(received: String, nation: String, due: String, why: String) throws {
        let answer = try DeadlineEngine.due(received: try #require(Day(received)), nation: try #require(Nation(rawValue: nation)))
        #expect(answer.day.description == due, "\(why)")
        #expect(answer.decidedBy.hasPrefix("the statutory and customary rules"), "\(answer.decidedBy)")
        let inList = try DeadlineEngine.due(received: try #require(Day("2025-09-03")), nation: .englandAndWales)
        #expect(inList.decidedBy == BankHolidays.shipped.source)
    }

    @Test("Easter Sunday", arguments: [(2024, "2024-03-31"), (2025, "2025-04-20"), (2026, "2026-04-05"), (2027, "2027-03-28"),
                                       (2030, "2030-04-21"), (2038, "2038-04-25"), (2285, "2285-03-22")])
    func easter(year: Int, sunday: String) {
        #expect(BankHolidayRules.easterSunday(year).description == sunday)
    }
}
