import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import Foundation
import HTTPTypes
import Hummingbird

/// The routing form of one current number (issue 31): whom to ring, for how long, office hours,
/// the out-of-hours message, voicemail and the whisper. settings.manage only; transcript checks
/// the routing (UK numbers, never premium-rate, ring time, times, lengths) and its refusal comes
/// back on the form with what was typed.
extension NumberPages {
    func routingForm(_ request: Request, _ context: WebContext) async throws -> Response {
        let (chrome, permissions) = try await app.chrome(context, current: "Numbers")
        guard permissions.contains(.settingsManage) else { throw RPCError(.permissionDenied, "settings.manage is needed") }
        let number = try await currentNumber(request.query["number"], context)
        return routingPage(number, form: RoutingForm(stored: number.routing, hasRouting: number.hasRouting), problem: nil, chrome: chrome)
    }

    func saveRouting(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        let typed = RoutingForm(form)
        guard !form["number"].isEmpty, form["number"].count <= 30 else { throw PageError.invalid("Which number?") }
        do {
            let routing = try typed.routing()
            _ = try await app.backend.trackingNumbers.setRouting(.with {
                $0.orgID = session.orgID
                $0.number = form["number"]
                $0.routing = routing
            }, options: context.caller.options)
        } catch let problem as FormProblem {
            return try await refused(form["number"], typed, problem, context)
        } catch let error as RPCError where error.code == .invalidArgument {
            return try await refused(form["number"], typed, RoutingForm.problem(transcriptSaid: error.message), context)
        }
        return WebApp.seeOther("/numbers?done=routed")
    }

    /// The form again, as typed, with what is wrong at its top (400).
    private func refused(_ number: String, _ typed: RoutingForm, _ problem: FormProblem, _ context: WebContext) async throws -> Response {
        let (chrome, _) = try await app.chrome(context, current: "Numbers")
        return routingPage(try await currentNumber(number, context), form: typed, problem: problem, chrome: chrome, status: .badRequest)
    }

    /// One of the firm's current numbers, any common format; not found otherwise.
    private func currentNumber(_ raw: String, _ context: WebContext) async throws -> Calltrace_Transcript_V1_TrackingNumber {
        let session = try app.session(context)
        guard let wanted = PhoneNumber.e164(raw) else { throw PageError.notFound }
        let numbers = try await app.backend.trackingNumbers.listTrackingNumbers(.with { $0.orgID = session.orgID },
                                                                              options: context.caller.options).trackingNumbers
        guard let number = numbers.first(where: { $0.number == wanted && $0.effectiveUntilUnixMs == 0 }) else { throw PageError.notFound }
        return number
    }

    private func routingPage(_ number: Calltrace_Transcript_V1_TrackingNumber, form: RoutingForm, problem: FormProblem?, chrome: Chrome,
                             status: HTTPResponse.Status = .ok) -> Response {
        var data = form.values
        data["csrf"] = chrome.csrf
        data["number"] = number.number
        data["display"] = Self.national(number.number)
        data["source"] = number.source
        if let problem { data["problem"] = problem.values }
        return app.renderer.page("routing", title: "Routing for \(Self.national(number.number))", data: data, chrome: chrome, status: status)
    }
}

/// The routing form's fields as typed (kept when they are refused) or as stored: up to five
/// phones, the ring time, one opening a weekday (or always open), the out-of-hours message,
/// voicemail and the whisper.
struct RoutingForm: Sendable {
    static let weekdays = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    static let destinationFields = 5

    var destinations: [String]
    var ring: String
    var alwaysOpen: Bool
    /// Monday … Sunday: "HH:MM" as the time inputs send them; both empty for a closed day.
    var days: [(opens: String, closes: String)]
    var outOfHours: String
    var voicemail: Bool
    var whisper: String
    /// Weekdays with more than one opening (set through the CLI): the form shows the first.
    var severalOpenings: [String] = []

    init(_ form: Form) {
        destinations = (1...Self.destinationFields).map { form["destination-\($0)"] }
        ring = form["ring"]
        alwaysOpen = form["hours"] != "set"
        days = (1...7).map { (form["opens-\($0)"], form["closes-\($0)"]) }
        outOfHours = form["out-of-hours"]
        voicemail = form["voicemail"] == "on"
        whisper = form["whisper"]
    }

    /// A number's routing as stored; before one is set, always open with office hours of
    /// Monday to Friday, 09:00–17:30, ready to be chosen.
    init(stored routing: Calltrace_Transcript_V1_Routing, hasRouting: Bool) {
        destinations = (0..<Self.destinationFields).map { $0 < routing.destinations.count ? NumberPages.national(routing.destinations[$0]) : "" }
        ring = hasRouting ? String(routing.ringSeconds) : ""
        alwaysOpen = routing.officeHours.isEmpty
        days = (1...7).map { day in
            guard let first = routing.officeHours.first(where: { $0.weekday == day }) else {
                return routing.officeHours.isEmpty && day <= 5 ? ("09:00", "17:30") : ("", "")
            }
            return (Self.time(first.opensMinute), Self.time(first.closesMinute % 1440))
        }
        severalOpenings = (1...7).filter { day in routing.officeHours.count(where: { $0.weekday == day }) > 1 }.map { Self.weekdays[$0 - 1] }
        outOfHours = routing.outOfHoursMessage
        voicemail = routing.voicemail
        whisper = routing.whisper
    }

    /// The routing to ask transcript for. Only what a form alone knows is checked here: each
    /// time is a time, a day has both or neither, and it opens before it closes (00:00 closing
    /// is midnight); transcript checks the rest.
    func routing() throws -> Calltrace_Transcript_V1_Routing {
        guard ring.isEmpty || UInt32(ring) != nil else { throw FormProblem("Give the ring time as a number of seconds, 5 to 60.", field: "ring") }
        var hours: [Calltrace_Transcript_V1_OfficeHours] = []
        if !alwaysOpen {
            for (index, day) in days.enumerated() where !(day.opens.isEmpty && day.closes.isEmpty) {
                let name = Self.weekdays[index], field = "opens-\(index + 1)"
                guard let opens = Self.minute(day.opens), let closes = Self.minute(day.closes).map({ $0 == 0 ? 1440 : $0 }) else {
                    throw FormProblem("\(name): give the times it opens and closes as HH:MM, or leave both empty when the office is closed.", field: field)
                }
                guard opens < closes else { throw FormProblem("\(name): the office must open before it closes.", field: field) }
                hours.append(.with { $0.weekday = UInt32(index + 1); $0.opensMinute = opens; $0.closesMinute = closes })
            }
            guard !hours.isEmpty else { throw FormProblem("Give the hours of at least one day, or choose “Always”.", field: "opens-1") }
        }
        return .with {
            $0.destinations = destinations.filter { !$0.isEmpty }
            $0.ringSeconds = UInt32(ring) ?? 0
            $0.officeHours = hours
            // A textarea for reading comfort; the message is said as one line.
            $0.outOfHoursMessage = outOfHours.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
            $0.voicemail = voicemail
            $0.whisper = whisper
        }
    }

    /// Transcript's refusal in the form's words, pointing at the field it is about.
    static func problem(transcriptSaid message: String) -> FormProblem {
        if let match = message.firstMatch(of: /^destination ([1-5])/) {
            return FormProblem(Failures.sentence("phone" + message.dropFirst("destination".count)), field: "destination-\(match.1)")
        }
        let fields: [(wire: String, words: String, field: String)] = [
            ("ring_seconds", "the ring time in seconds", "ring"), ("out_of_hours_message", "the out-of-hours message", "out-of-hours"),
            ("whisper", "the whisper", "whisper"), ("office_hours", "office hours", "opens-1"),
        ]
        guard let known = fields.first(where: { message.contains($0.wire) }) else { return FormProblem(Failures.sentence(message), field: "destination-1") }
        return FormProblem(Failures.sentence(message.replacingOccurrences(of: known.wire, with: known.words)), field: known.field)
    }

    var values: [String: Any] {
        var values: [String: Any] = [
            "destinations": destinations.enumerated().map { ["index": $0.offset + 1, "value": $0.element] },
            "ring": ring, "alwaysOpen": alwaysOpen, "outOfHours": outOfHours, "voicemail": voicemail, "whisper": whisper,
            "days": days.enumerated().map { ["index": $0.offset + 1, "name": Self.weekdays[$0.offset], "opens": $0.element.opens, "closes": $0.element.closes] },
        ]
        if !severalOpenings.isEmpty { values["severalOpenings"] = severalOpenings.joined(separator: ", ") }
        return values
    }

    /// "09:00" for 540; "24:00" for 1440.
    static func time(_ minute: UInt32) -> String { String(format: "%02d:%02d", minute / 60, minute % 60) }

    /// Minutes after midnight of "9:00", "09:00" or "09:00:00" (what time inputs send); nil otherwise.
    static func minute(_ text: String) -> UInt32? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard (2...3).contains(parts.count), parts[0].count <= 2, parts[1].count == 2,
              let hour = UInt32(parts[0]), let minute = UInt32(parts[1]), hour < 24, minute < 60 else { return nil }
        return hour * 60 + minute
    }
}

/// A number's routing as the Numbers page shows it: whom it rings and for how long, when the
/// office answers, voicemail, the whisper. Phones in national format (masked as transcript sent
/// them to people without settings.manage).
struct RoutingSummary {
    let values: [String: Any]

    init(_ routing: Calltrace_Transcript_V1_Routing?, source: String) {
        guard let routing else {
            values = ["rings": "Not set up yet: nobody is rung", "hours": "Always open", "voicemail": "Voicemail off"]
            return
        }
        let phones = routing.destinations.map(NumberPages.national)
        values = [
            "rings": phones.isEmpty ? "Rings nobody" : "Rings \(Self.list(phones)) for \(routing.ringSeconds) seconds",
            "hours": routing.officeHours.isEmpty ? "Always open" : "Open \(Self.hours(routing.officeHours)) (UK time)",
            "voicemail": routing.voicemail ? "Voicemail on" : "Voicemail off",
            "whisper": "Whisper: “\(routing.whisper.isEmpty ? "\(source) enquiry" : routing.whisper)”",
        ]
    }

    /// "a", "a and b", "a, b and c".
    static func list(_ items: [String]) -> String {
        items.count <= 1 ? items.joined() : items.dropLast().joined(separator: ", ") + " and " + items.last!
    }

    /// "Mon–Fri 09:00–17:30, Sat 10:00–13:00": days in a row with the same times as one range.
    static func hours(_ openings: [Calltrace_Transcript_V1_OfficeHours]) -> String {
        let names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        let perDay = (1...7).map { day in
            openings.filter { $0.weekday == day }.sorted { $0.opensMinute < $1.opensMinute }
                .map { "\(RoutingForm.time($0.opensMinute))–\(RoutingForm.time($0.closesMinute))" }.joined(separator: " and ")
        }
        var runs: [String] = [], day = 0
        while day < 7 {
            var last = day
            while last + 1 < 7 && perDay[last + 1] == perDay[day] { last += 1 }
            if !perDay[day].isEmpty { runs.append((last == day ? names[day] : "\(names[day])–\(names[last])") + " " + perDay[day]) }
            day = last + 1
        }
        return runs.joined(separator: ", ")
    }
}
