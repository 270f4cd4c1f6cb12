import CallTraceKeys
import CallTraceProto
import CallTraceServiceHost

/// How the telephony gateway connects an inbound call on a tracking number (issue 31): whom to
/// ring, for how long, when the office answers, what an out-of-hours caller hears, voicemail,
/// and the whisper to whoever answers. Kept per organisation and number: it stays when the
/// number moves to another source and goes when the number is released.
struct CallRouting: Sendable, Equatable {
    static let maxDestinations = 5
    /// What `ring_seconds = 0` means.
    static let defaultRingSeconds = 20
    static let ringSeconds = 5...60
    /// At most three openings a day (a lunch break twice over).
    static let maxOfficeHours = 21

    /// The firm's phones, E.164 UK numbers, in the order given, without repeats.
    var destinations: [String] = []
    var ringSeconds = CallRouting.defaultRingSeconds
    /// None: always open.
    var officeHours: [OfficeHours] = []
    var outOfHoursMessage = ""
    var voicemail = false
    var whisper = ""

    /// UK numbers CallTrace never rings: premium rate (09), personal numbering (070), pagers and
    /// the Isle of Man's mobiles (076, 07624), the service numbers that charge a premium (084,
    /// 087), and corporate and VoIP ranges resold at a premium (055, 056).
    static let chargedPrefixes = ["+449", "+4470", "+4476", "+4484", "+4487", "+4455", "+4456"]

    /// A number's routing before the firm set one: nobody is rung, always open.
    static let unset = CallRouting()

    /// The routing the firm asked for, checked: at most 5 destinations, each a UK number (any
    /// common format) other than the tracking number itself (the call would ring itself);
    /// ring time 5–60 s (0: 20); office hours weekday 1–7 with 0 ≤ opens < closes ≤ 1440; the
    /// messages one line each. No error repeats a number.
    init(validating requested: RoutingChange, trackingNumber: String) throws {
        guard requested.destinations.count <= Self.maxDestinations else {
            throw DomainError.invalid("routing has at most \(Self.maxDestinations) destinations")
        }
        for (position, raw) in requested.destinations.enumerated() {
            let number = try Self.phone(raw, field: "destination \(position + 1)", trackingNumber: trackingNumber)
            if !destinations.contains(number) { destinations.append(number) }
        }
        if requested.ringSeconds != 0 {
            guard Self.ringSeconds.contains(Int(requested.ringSeconds)) else {
                throw DomainError.invalid("ring_seconds is \(Self.ringSeconds.lowerBound) to \(Self.ringSeconds.upperBound) (0: \(Self.defaultRingSeconds))")
            }
            ringSeconds = Int(requested.ringSeconds)
        }
        guard requested.officeHours.count <= Self.maxOfficeHours else {
            throw DomainError.invalid("routing has at most \(Self.maxOfficeHours) office_hours")
        }
        officeHours = try requested.officeHours.map { try OfficeHours(validating: $0.weekday, opens: $0.opens, closes: $0.closes) }
        outOfHoursMessage = try DomainText.line(requested.outOfHoursMessage, "out_of_hours_message", max: 500)
        voicemail = requested.voicemail
        whisper = try DomainText.line(requested.whisper, "whisper", max: 200)
    }

    /// A firm's phone the gateway may ring (a destination, or a member of staff a call back rings
    /// first), in E.164: a UK number other than the tracking number itself (the call would ring
    /// itself), never premium-rate or personal (09, 070, 084, 087: ringing them costs the firm per
    /// minute, the toll fraud a stolen token would try). The error never repeats the number.
    static func phone(_ raw: String, field: String, trackingNumber: String) throws -> String {
        let number = try CallRules.e164(raw, field: field)
        guard number.hasPrefix("+44") else { throw DomainError.invalid("\(field) is not a UK number") }
        guard number != trackingNumber else { throw DomainError.invalid("\(field) is the tracking number itself") }
        guard !Self.chargedPrefixes.contains(where: number.hasPrefix) else {
            throw DomainError.invalid("\(field) is a premium-rate, personal or pager number (09, 070, 076, 084, 087, 055, 056): CallTrace does not ring them")
        }
        return number
    }

    init(officeHours: [OfficeHours] = []) {
        self.officeHours = officeHours
    }

    /// A stored routing (already checked when it was set).
    init(stored proto: Calltrace_Transcript_V1_Routing) {
        destinations = proto.destinations
        ringSeconds = proto.ringSeconds == 0 ? Self.defaultRingSeconds : Int(proto.ringSeconds)
        officeHours = proto.officeHours.map { OfficeHours(weekday: Int($0.weekday), opens: Int($0.opensMinute), closes: Int($0.closesMinute)) }
        outOfHoursMessage = proto.outOfHoursMessage
        voicemail = proto.voicemail
        whisper = proto.whisper
    }

    /// As the wire carries it; destinations masked (`+44 7700 ••••23`) unless `withNumbers`.
    func proto(withNumbers: Bool) -> Calltrace_Transcript_V1_Routing {
        .with {
            $0.destinations = withNumbers ? destinations : destinations.map(PhoneNumber.masked)
            $0.ringSeconds = UInt32(ringSeconds)
            $0.officeHours = officeHours.map { hours in
                .with { $0.weekday = UInt32(hours.weekday); $0.opensMinute = UInt32(hours.opens); $0.closesMinute = UInt32(hours.closes) }
            }
            $0.outOfHoursMessage = outOfHoursMessage
            $0.voicemail = voicemail
            $0.whisper = whisper
        }
    }

    /// Whether the office answers at `unixMs` (always, without office hours).
    func isOpen(atUnixMs unixMs: Int64) -> Bool {
        officeHours.isEmpty || officeHours.contains { $0.contains(LondonTime(unixMs: unixMs)) }
    }

    /// What changed from `old`, for the audit trail: counts and switches, never a number or a message's words.
    func changes(from old: CallRouting) -> String {
        var changed: [String] = []
        if destinations != old.destinations { changed.append("destinations: \(old.destinations.count) → \(destinations.count)") }
        if ringSeconds != old.ringSeconds { changed.append("ring_seconds: \(old.ringSeconds) → \(ringSeconds)") }
        if officeHours != old.officeHours {
            changed.append("office_hours: \(old.officeHours.isEmpty ? "always" : "\(old.officeHours.count) openings") → "
                           + (officeHours.isEmpty ? "always" : "\(officeHours.count) openings"))
        }
        if outOfHoursMessage != old.outOfHoursMessage { changed.append("out_of_hours_message \(outOfHoursMessage.isEmpty ? "standard" : "changed")") }
        if voicemail != old.voicemail { changed.append("voicemail \(voicemail ? "on" : "off")") }
        if whisper != old.whisper { changed.append("whisper \(whisper.isEmpty ? "standard" : "changed")") }
        return changed.isEmpty ? "unchanged" : changed.joined(separator: "; ")
    }
}

/// The routing a firm asks for, as given (`CallRouting(validating:trackingNumber:)` checks it).
struct RoutingChange: Sendable {
    /// In any common format, in the order given.
    var destinations: [String] = []
    /// 0: the default.
    var ringSeconds: UInt32 = 0
    var officeHours: [(weekday: UInt32, opens: UInt32, closes: UInt32)] = []
    var outOfHoursMessage = ""
    var voicemail = false
    var whisper = ""
}

/// One day's opening in Europe/London local time: `opens` up to (not including) `closes`,
/// minutes after local midnight.
struct OfficeHours: Sendable, Equatable {
    /// 1 Monday … 7 Sunday (ISO 8601).
    let weekday: Int
    let opens: Int
    let closes: Int

    init(weekday: Int, opens: Int, closes: Int) {
        self.weekday = weekday
        self.opens = opens
        self.closes = closes
    }

    /// An opening as asked for: weekday 1–7, minutes 0 ≤ opens < closes ≤ 1440.
    init(validating weekday: UInt32, opens: UInt32, closes: UInt32) throws {
        guard (1...7).contains(weekday) else { throw DomainError.invalid("office_hours weekday is 1 (Monday) to 7 (Sunday)") }
        guard opens < closes, closes <= 1440 else {
            throw DomainError.invalid("office_hours need 0 ≤ opens_minute < closes_minute ≤ 1440 (minutes after local midnight)")
        }
        self.init(weekday: Int(weekday), opens: Int(opens), closes: Int(closes))
    }

    func contains(_ time: LondonTime) -> Bool {
        time.weekday == weekday && opens <= time.minute && time.minute < closes
    }
}

/// A UTC instant as a clock in London reads it, without the system's time zone database: UK
/// summer time (BST, UTC+1) runs from 01:00 UTC on the last Sunday of March to 01:00 UTC on the
/// last Sunday of October (the Summer Time Order 2002); GMT (UTC+0) the rest of the year.
struct LondonTime: Sendable, Equatable {
    /// 1 Monday … 7 Sunday (ISO 8601).
    let weekday: Int
    /// Minutes after local midnight, 0..<1440.
    let minute: Int
    let isSummerTime: Bool

    static let dayMs: Int64 = 86_400_000
    /// The years whose summer time is computed.
    static let years: ClosedRange<Int64> = 1972...9999

    init(unixMs: Int64) {
        let year = Self.civil(days: Self.floorDivide(unixMs, Self.dayMs)).year
        // Years far from ours (a made-up instant) are read as GMT: their sums would overflow.
        isSummerTime = Self.years.contains(year) && Self.summerTimeStart(year: year) <= unixMs && unixMs < Self.summerTimeEnd(year: year)
        let local = unixMs + (isSummerTime ? 3_600_000 : 0)
        minute = Int(Self.floorModulo(local, Self.dayMs) / 60_000)
        weekday = Self.weekday(days: Self.floorDivide(local, Self.dayMs))
    }

    init(weekday: Int, minute: Int, isSummerTime: Bool) {
        self.weekday = weekday
        self.minute = minute
        self.isSummerTime = isSummerTime
    }

    /// 01:00 UTC on the last Sunday of March.
    static func summerTimeStart(year: Int64) -> Int64 { lastSunday(year: year, month: 3) * dayMs + 3_600_000 }

    /// 01:00 UTC on the last Sunday of October.
    static func summerTimeEnd(year: Int64) -> Int64 { lastSunday(year: year, month: 10) * dayMs + 3_600_000 }

    /// The last Sunday of a month of 31 days, as days since 1970-01-01.
    static func lastSunday(year: Int64, month: Int64) -> Int64 {
        let last = days(year: year, month: month, day: 31)
        return last - Int64(weekday(days: last) % 7)
    }

    /// ISO weekday of a day counted from 1970-01-01 (a Thursday).
    static func weekday(days: Int64) -> Int { Int(floorModulo(days + 3, 7)) + 1 }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDivide(y, 400)
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The date of a day since 1970-01-01 (Hinnant's `civil_from_days`).
    static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = floorDivide(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, dayOfYear - (153 * mp + 2) / 5 + 1)
    }

    /// "2026-07-01 15:04:05": the wall clock in London at `unixMs` (to the second).
    static func dateTime(unixMs: Int64) -> String {
        let local = unixMs + (LondonTime(unixMs: unixMs).isSummerTime ? 3_600_000 : 0)
        let date = civil(days: floorDivide(local, dayMs))
        let second = floorModulo(local, dayMs) / 1000
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(date.year)-\(two(date.month))-\(two(date.day)) \(two(second / 3600)):\(two(second / 60 % 60)):\(two(second % 60))"
    }

    /// "2026-10-25 01:30:00+0100": `dateTime` and the offset from UTC then, as Google Ads'
    /// conversion import takes a time in a zone of its own: the hour that comes twice when summer
    /// time ends (01:00–01:59 on the last Sunday of October) is never ambiguous.
    static func dateTimeWithOffset(unixMs: Int64) -> String {
        dateTime(unixMs: unixMs) + (LondonTime(unixMs: unixMs).isSummerTime ? "+0100" : "+0000")
    }

    /// Rounded toward minus infinity (for instants before 1970), for a positive `b`.
    static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 { a % b < 0 ? a / b - 1 : a / b }
    static func floorModulo(_ a: Int64, _ b: Int64) -> Int64 { a % b < 0 ? a % b + b : a % b }
}
