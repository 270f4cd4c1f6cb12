import ArgumentParser
import CallTraceAPI
import CallTraceCLI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import Foundation
import TranscriptText

/// The transcript service from the command line: tracking numbers, calls, transcripts, the
/// attribution report and the suppression list. Calls go as the certificate named by --as (a
/// gateway by default) on behalf of the user whose token is given.
typealias TranscriptOptions = ServiceCallOptions<TranscriptTarget>

struct TrackingNumbersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tracking-numbers", abstract: "Assign, release and list tracking numbers (their marketing sources).",
        discussion: "Assigning, releasing and routing need settings.manage (admins); listing needs reports.read (others see the routing's phones masked).",
        subcommands: [Assign.self, Release.self, List.self, Routing.self])

    static func describe(_ n: Calltrace_Transcript_V1_TrackingNumber) -> String {
        "\(n.number)  \(n.source)  \(dashed(n.channel))\(n.campaign.isEmpty ? "" : "  campaign \(n.campaign)")  from \(iso(n.effectiveFromUnixMs))"
            + (n.effectiveUntilUnixMs == 0 ? "" : " until \(iso(n.effectiveUntilUnixMs))")
            + (n.hasRouting ? "\n  " + describe(n.routing) : "")
    }

    static func describe(_ r: Calltrace_Transcript_V1_Routing) -> String {
        let ring = r.destinations.isEmpty ? "rings nobody" : "rings \(r.destinations.joined(separator: ", ")) for \(r.ringSeconds) s"
        let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        func time(_ minute: UInt32) -> String { String(format: "%02d:%02d", minute / 60, minute % 60) }
        let hours = r.officeHours.isEmpty ? "always open"
            : "open " + r.officeHours.map { "\(days[Int($0.weekday) - 1]) \(time($0.opensMinute))-\(time($0.closesMinute))" }.joined(separator: ", ")
        return [ring, hours + " (Europe/London)", "voicemail \(r.voicemail ? "on" : "off")",
                "out of hours: \(r.outOfHoursMessage.isEmpty ? "the standard message" : "\"\(r.outOfHoursMessage)\"")",
                "whisper: \(r.whisper.isEmpty ? "\"<source> enquiry\"" : "\"\(r.whisper)\"")"].joined(separator: "; ")
    }

    /// `mon-fri=09:00-17:30`, `sat=10:00-13:00`, `mon,wed=09:00-12:00`: one opening for each day named.
    static func officeHours(_ spec: String) throws -> [Calltrace_Transcript_V1_OfficeHours] {
        let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        let invalid = ValidationError("--hours \(spec): write days=HH:MM-HH:MM, e.g. mon-fri=09:00-17:30 or sat=10:00-13:00")
        let parts = spec.lowercased().split(separator: "=")
        guard parts.count == 2 else { throw invalid }
        var weekdays: [Int] = []
        for item in parts[0].split(separator: ",") {
            let ends = item.split(separator: "-").map { days.firstIndex(of: String($0)) }
            guard (1...2).contains(ends.count), let first = ends.first ?? nil, let last = ends.last ?? nil, first <= last else { throw invalid }
            weekdays += (first...last).map { $0 + 1 }
        }
        func minute(_ text: Substring) -> UInt32? {
            let hm = text.split(separator: ":")
            guard hm.count == 2, let h = UInt32(hm[0]), let m = UInt32(hm[1]), m < 60, h * 60 + m <= 1440 else { return nil }
            return h * 60 + m
        }
        let times = parts[1].split(separator: "-")
        guard !weekdays.isEmpty, times.count == 2, let opens = minute(times[0]), let closes = minute(times[1]) else { throw invalid }
        return weekdays.map { day in .with { $0.weekday = UInt32(day); $0.opensMinute = opens; $0.closesMinute = closes } }
    }

    struct Assign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "assign", abstract: "Point a number at a marketing source (moving it if it is already yours).")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The number, in any common UK format.") var number: String
        @Option(help: "The marketing source, e.g. \"Google Ads – personal injury\".") var source: String
        @Option(help: "google-ads, paid-social, organic, directory, referral, print, email or other.") var channel: String
        @Option(help: "Campaign (optional).") var campaign = ""
        @Option(help: "The notice played before recording (default: the standard notice).") var notice = ""

        func run() async throws {
            let channel = try parseEnum(channel, Calltrace_Transcript_V1_Channel.self, option: "--channel")
            let response = try await options.run { client in
                try await Calltrace_Transcript_V1_TrackingNumberServiceClient(client).assignTrackingNumber(.with {
                    $0.orgID = org; $0.number = number; $0.source = source; $0.channel = channel; $0.campaign = campaign; $0.notice = notice
                }, options: try options.callOptions)
            }
            try options.print(response) { "assigned " + TrackingNumbersCommand.describe(response.trackingNumber) }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "release", abstract: "End the organisation's use of a number (its history stays).")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The number.") var number: String

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Transcript_V1_TrackingNumberServiceClient(client).releaseTrackingNumber(.with {
                    $0.orgID = org; $0.number = number
                }, options: try options.callOptions)
            }
            try options.print(response) { "released \(number)" }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "The organisation's numbers.")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Flag(help: "Every assignment, not only current ones.") var history = false

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Transcript_V1_TrackingNumberServiceClient(client).listTrackingNumbers(.with {
                    $0.orgID = org; $0.includeHistory = history
                }, options: try options.callOptions)
            }
            try options.print(response) {
                response.trackingNumbers.isEmpty ? "no tracking numbers" : response.trackingNumbers.map(TrackingNumbersCommand.describe).joined(separator: "\n")
            }
        }
    }
}

extension TrackingNumbersCommand {
    struct Routing: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "routing",
            abstract: "Show or change how calls to a number are connected: whom to ring, for how long, office hours, voicemail, the whisper.",
            discussion: """
                Without options, shows the number's routing. Options change only what they name: --destination (repeat, at most 5) \
                replaces the phones rung at once, --hours (repeat) replaces the office hours, in Europe/London time. Out of hours the \
                caller hears the out-of-hours message, then voicemail when it is on. Changing needs settings.manage.
                """)
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The tracking number.") var number: String
        @Option(help: "A phone to ring, any common UK format (repeat for several, rung at once).") var destination: [String] = []
        @Flag(name: .customLong("no-destinations"), help: "Ring nobody (voicemail when on, else the out-of-hours message).") var noDestinations = false
        @Option(help: "Seconds to ring before voicemail, 5 to 60 (default 20).") var ring: UInt32?
        @Option(help: "Office hours, e.g. mon-fri=09:00-17:30 or sat=10:00-13:00 (repeat for several).") var hours: [String] = []
        @Flag(name: .customLong("always-open"), help: "No office hours: always open.") var alwaysOpen = false
        @Option(name: .customLong("out-of-hours-message"), help: "Said out of hours (default: a standard sentence).") var outOfHoursMessage: String?
        @Option(help: "on or off: record a message when nobody answers, and out of hours.") var voicemail: String?
        @Option(help: "Said only to whoever answers (default: \"<source> enquiry\").") var whisper: String?

        func run() async throws {
            if let voicemail, !["on", "off"].contains(voicemail) { throw ValidationError("--voicemail must be on or off") }
            if noDestinations && !destination.isEmpty { throw ValidationError("--no-destinations or --destination, not both") }
            if alwaysOpen && !hours.isEmpty { throw ValidationError("--always-open or --hours, not both") }
            let officeHours = try hours.flatMap(TrackingNumbersCommand.officeHours)
            let changes = !destination.isEmpty || noDestinations || ring != nil || !hours.isEmpty || alwaysOpen || outOfHoursMessage != nil
                || voicemail != nil || whisper != nil
            let response = try await options.run { client -> Calltrace_Transcript_V1_TrackingNumber in
                let numbers = Calltrace_Transcript_V1_TrackingNumberServiceClient(client)
                let listed = try await numbers.listTrackingNumbers(.with { $0.orgID = org }, options: try options.callOptions).trackingNumbers
                guard var current = listed.first(where: { $0.number == PhoneNumber.e164(number) }) else {
                    throw ValidationError("\(number) is not one of the organisation's current tracking numbers")
                }
                guard changes else { return current }
                if !destination.isEmpty || noDestinations { current.routing.destinations = destination }
                if let ring { current.routing.ringSeconds = ring }
                if !hours.isEmpty || alwaysOpen { current.routing.officeHours = officeHours }
                if let outOfHoursMessage { current.routing.outOfHoursMessage = outOfHoursMessage }
                if let voicemail { current.routing.voicemail = voicemail == "on" }
                if let whisper { current.routing.whisper = whisper }
                let routing = current.routing
                return try await numbers.setRouting(.with { $0.orgID = org; $0.number = number; $0.routing = routing },
                                                    options: try options.callOptions).trackingNumber
            }
            try options.print(response) { TrackingNumbersCommand.describe(response) }
        }
    }
}

struct CallsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calls", abstract: "List, show and mark call records.",
        discussion: "Reading needs reports.read (numbers in full only with transcripts.read); marking calls.mark. To delete a call "
            + "(its record, transcript, analysis and recordings, everywhere; records.delete): `calltrace deletions delete-call`.",
        subcommands: [List.self, Show.self, Mark.self])

    static func describe(_ c: Calltrace_Transcript_V1_Call) -> String {
        var line = "\(c.callID)  \(iso(c.startedAtUnixMs))  \(dashed(c.direction))  from \(c.callerNumber.isEmpty ? c.callerNumberMasked : c.callerNumber)"
            + "  via \(c.trackingNumber) (\(c.source))  \(dashed(c.outcome))  \(c.durationMs / 1000) s"
        if c.enquiry != .unspecified { line += "  enquiry: \(dashed(c.enquiry))" }
        if c.practiceArea != .unspecified { line += "  practice area: \(dashed(c.practiceArea))" }
        if c.matterOpened { line += "  matter opened\(c.matterReference.isEmpty ? "" : " \(c.matterReference)")" }
        if !c.recorded { line += "  not recorded (the caller objected, or the firm had not accepted the processing agreement)" }
        return line
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Calls, newest first.")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "Started on or after (2026-11-01 or an ISO 8601 time).") var from: String?
        @Option(help: "Started before.") var before: String?
        @Option(help: "Only this source.") var source: String?
        @Option(help: "Only inbound or outbound calls.") var direction: String?
        @Option(help: "Only calls that ended so: answered, missed, voicemail or abandoned (repeat for several).") var outcome: [String] = []
        @Flag(help: "Only completed calls whose enquiry is not marked yet.") var unmarked = false
        @Option(help: "At most this many per page (500 at most).") var limit: UInt32 = 100
        @Option(help: "The next page, from a previous answer.") var page: String?

        func run() async throws {
            let from = try self.from.map { try unixMs($0, option: "--from") } ?? 0
            let before = try self.before.map { try unixMs($0, option: "--before") } ?? 0
            let direction = try self.direction.map { try parseEnum($0, Calltrace_Transcript_V1_Direction.self, option: "--direction") } ?? .unspecified
            let outcomes = try outcome.map { try parseEnum($0, Calltrace_Transcript_V1_Outcome.self, option: "--outcome") }
            let response = try await options.run { client in
                try await Calltrace_Transcript_V1_CallServiceClient(client).listCalls(.with {
                    $0.orgID = org; $0.startedFromUnixMs = from; $0.startedBeforeUnixMs = before; $0.source = source ?? ""
                    $0.direction = direction; $0.outcomes = outcomes; $0.unmarkedOnly = unmarked
                    $0.pageSize = limit; $0.pageToken = page ?? ""
                }, options: try options.callOptions)
            }
            try options.print(response) {
                (response.calls.isEmpty ? ["no calls"] : response.calls.map(CallsCommand.describe)).joined(separator: "\n")
                    + (response.nextPageToken.isEmpty ? "" : "\nmore: --page \(response.nextPageToken)")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "One call's record.")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The call id.") var call: String

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Transcript_V1_CallServiceClient(client).getCall(.with { $0.orgID = org; $0.callID = call },
                                                                                    options: try options.callOptions)
            }
            try options.print(response) { CallsCommand.describe(response.call) }
        }
    }

    struct Mark: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "mark", abstract: "The firm's verdict: new enquiry or not, matter opened, practice area.")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The call id.") var call: String
        @Option(help: "new or not-new.") var enquiry: String?
        @Option(help: "The matter reference, when a matter was opened.") var matter: String?
        @Option(name: .customLong("practice-area"), help: "e.g. personal-injury, family, conveyancing, employment.") var practiceArea: String?

        func run() async throws {
            let enquiry = try self.enquiry.map { try parseEnum($0, Calltrace_Transcript_V1_Enquiry.self, option: "--enquiry") } ?? .unspecified
            let area = try practiceArea.map { try parseEnum($0, Calltrace_Transcript_V1_PracticeArea.self, option: "--practice-area") } ?? .unspecified
            let response = try await options.run { client in
                try await Calltrace_Transcript_V1_CallServiceClient(client).markCallOutcome(.with {
                    $0.orgID = org; $0.callID = call; $0.enquiry = enquiry; $0.matterOpened = matter != nil; $0.matterReference = matter ?? ""
                    $0.practiceArea = area
                }, options: try options.callOptions)
            }
            try options.print(response) { "marked " + CallsCommand.describe(response.call) }
        }
    }
}

struct TranscriptsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transcripts", abstract: "Show, submit and delete transcripts; redact or analyse text locally; transcription settings.",
        discussion: "`redact` and `analyse --engine local` read standard input and need no service.",
        subcommands: [Show.self, Submit.self, Delete.self, Redact.self, Analyse.self, Settings.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "A call's transcript and analysis (transcripts.read), or where its transcription stands.")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The call id.") var call: String

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Transcript_V1_TranscriptServiceClient(client).getTranscript(.with { $0.orgID = org; $0.callID = call },
                                                                                                options: try options.callOptions)
            }
            try options.print(response) {
                let state = response.state == .unspecified
                    ? "none yet (transcription off, the caller objected, or a transcript given by hand is awaited)" : dashed(response.state)
                var lines = ["transcription: \(state)\(response.failureReason.isEmpty ? "" : " (\(response.failureReason))")"]
                if response.hasAnalysis {
                    let a = response.analysis
                    lines.append("analysis (\(a.engine)): \(dashed(a.practiceArea)), \(a.newEnquiry ? "new enquiry" : "not new"), urgency \(dashed(a.urgency))"
                                 + (a.callbackRequested ? ", callback requested" : ""))
                    lines.append("summary: \(a.summary)")
                }
                if response.hasTranscript {
                    lines.append("transcript (\(response.transcript.engine), \(response.transcript.redactions) redactions):")
                    lines += response.transcript.segments.map { "[\(minutesSeconds($0.startMs))] \($0.speaker): \($0.text)" }
                }
                return lines.joined(separator: "\n")
            }
        }
    }

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "submit",
            abstract: "Submit a transcript for a call from a file or standard input: one segment per line, \"[start-end] speaker: text\".",
            discussion: """
                The times are seconds into the recording ("[12.5-15.2]"), and may be left out. It is redacted before it is stored, \
                then analysed; card details found are muted in the call's recording, over the times of the segments that held them. \
                Without --token the gateway submits as itself.
                """)
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The call id.") var call: String
        @Option(help: "The file (default: standard input).") var file: String?

        func run() async throws {
            let data = try file.map { try Data(contentsOf: URL(fileURLWithPath: $0)) } ?? FileHandle.standardInput.readDataToEndOfFile()
            let segments = String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { line -> Calltrace_Transcript_V1_Segment? in
                var text = line.trimmingCharacters(in: .whitespaces)
                guard !text.isEmpty else { return nil }
                var times: (UInt64, UInt64)?
                if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
                    let span = text[text.index(after: text.startIndex)..<close].split(separator: "-")
                    if span.count == 2, let start = Double(span[0]), let end = Double(span[1]), start >= 0, end >= start, end < 7 * 86_400 {
                        times = (UInt64(start * 1000), UInt64(end * 1000))
                        text = text[text.index(after: close)...].trimmingCharacters(in: .whitespaces)
                    }
                }
                let parts = text.split(separator: ":", maxSplits: 1)
                return .with {
                    if let times { ($0.startMs, $0.endMs) = times }
                    if parts.count == 2, parts[0].count <= 32 {
                        $0.speaker = parts[0].trimmingCharacters(in: .whitespaces); $0.text = parts[1].trimmingCharacters(in: .whitespaces)
                    } else {
                        $0.speaker = "unknown"; $0.text = text
                    }
                }
            }
            let response = try await options.run { client in
                try await Calltrace_Transcript_V1_TranscriptServiceClient(client).submitTranscript(.with {
                    $0.orgID = org; $0.callID = call; $0.segments = segments
                }, options: try options.callOptions)
            }
            try options.print(response) { "stored \(response.transcript.segments.count) segments for call \(call) (\(response.transcript.redactions) redactions)" }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a call's transcript and analysis (records.delete); the call record stays.")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The call id.") var call: String

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Transcript_V1_TranscriptServiceClient(client).deleteTranscript(.with { $0.orgID = org; $0.callID = call },
                                                                                                   options: try options.callOptions)
            }
            try options.print(response) { "deleted the transcript of call \(call)" }
        }
    }

    struct Redact: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "redact",
            abstract: "Print standard input with card numbers, expiry dates, security codes, sort codes and account numbers replaced by markers.",
            discussion: "The same code that redacts every transcript before it is stored. Nothing leaves this machine.")
        @Flag(help: "Print JSON: the text and how many details were replaced.") var json = false

        func run() throws {
            let input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            let result = Redactor.redact(input)
            if json {
                let object: [String: Any] = ["text": result.text, "redactions": result.count]
                print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
            } else {
                print(result.text, terminator: result.text.hasSuffix("\n") ? "" : "\n")
            }
        }
    }

    struct Analyse: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "analyse",
            abstract: "Analyse a transcript on standard input and print the analysis JSON (practice area, new enquiry, urgency, callback, summary).",
            discussion: "The local engine: deterministic, no network. The text is redacted first, as the service does.")
        @Option(help: "Only local runs here; anthropic runs in the service, with the deployment's key.") var engine = "local"

        func run() throws {
            guard engine == "local" else { throw ValidationError("--engine: only local runs from the command line") }
            let input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            print(LocalAnalyser.analyse(Redactor.redact(input).text).json)
        }
    }

    struct Settings: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "settings",
            abstract: "Show or change the organisation's transcription settings (settings.manage).",
            discussion: "Transcription is off until turned on: nothing goes to a sub-processor before.")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "on or off.") var transcription: String?
        @Option(help: "deepgram or manual.") var engine: String?
        @Option(name: .customLong("analysis-engine"), help: "local or anthropic.") var analysisEngine: String?
        @Option(help: "The Deepgram model.") var model: String?
        @Option(help: "e.g. en-GB.") var language: String?

        func run() async throws {
            let changes = transcription != nil || engine != nil || analysisEngine != nil || model != nil || language != nil
            if let transcription, !["on", "off"].contains(transcription) { throw ValidationError("--transcription must be on or off") }
            let response = try await options.run { client -> Calltrace_Transcript_V1_TranscriptionSettings in
                let transcripts = Calltrace_Transcript_V1_TranscriptServiceClient(client)
                var settings = try await transcripts.getTranscriptionSettings(.with { $0.orgID = org }, options: try options.callOptions).settings
                guard changes else { return settings }
                if let transcription { settings.enabled = transcription == "on" }
                if let engine { settings.engine = engine }
                if let analysisEngine { settings.analysisEngine = analysisEngine }
                if let model { settings.model = model }
                if let language { settings.language = language }
                let chosen = settings
                return try await transcripts.setTranscriptionSettings(.with { $0.orgID = org; $0.settings = chosen }, options: try options.callOptions).settings
            }
            try options.print(response) {
                "transcription \(response.enabled ? "on" : "off"), engine \(response.engine), analysis \(response.analysisEngine)"
                    + (response.model.isEmpty ? "" : ", model \(response.model)") + ", language \(response.language)"
                    + "\ncard details: \(response.cardDetails)"
            }
        }
    }
}

/// `mm:ss` of a segment's start.
func minutesSeconds(_ ms: UInt64) -> String { String(format: "%02d:%02d", ms / 60_000, (ms / 1000) % 60) }

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "report", abstract: "Reports (reports.read).",
                                                    subcommands: [Attribution.self, Conversions.self])

    struct Attribution: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "attribution",
            abstract: "Which marketing brings real cases: calls, callers, answered, missed, enquiries, matters and conversion per source, channel or campaign.",
            discussion: "First touch credits a matter to the caller's first call in the period; last touch to their last call up to the one where it was opened. By utm-campaign, keyword, landing-page or referrer, rows are the website visits calls joined (first touch: the visitor's first visit); \"suggested\" counts enquiries the AI thinks new that staff have not marked.")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "From (2026-01-01 or an ISO 8601 time).") var from: String
        @Option(help: "Before (exclusive).") var before: String
        @Option(help: "source, channel, campaign, utm-campaign, keyword, landing-page or referrer.") var by = "source"
        @Flag(help: "Print CSV.") var csv = false

        func run() async throws {
            let from = try unixMs(self.from, option: "--from"), before = try unixMs(self.before, option: "--before")
            let grouping = try parseEnum(by, Calltrace_Transcript_V1_ReportGrouping.self, option: "--by")
            let response = try await options.run { client in
                try await Calltrace_Transcript_V1_CallServiceClient(client).attributionReport(.with {
                    $0.orgID = org; $0.fromUnixMs = from; $0.beforeUnixMs = before; $0.groupBy = grouping
                }, options: try options.callOptions)
            }
            let columns = ["calls", "callers", "answered", "missed", "enquiries", "suggested", "matters", "conversion", "first-touch", "last-touch"]
            func values(_ r: Calltrace_Transcript_V1_AttributionRow) -> [String] {
                [r.calls, r.uniqueCallers, r.answered, r.missed, r.newEnquiries, r.suggestedNewEnquiries, r.mattersOpened].map { "\($0)" }
                    + [String(format: "%.1f%%", r.conversionRate * 100), "\(r.firstTouchMatters)", "\(r.lastTouchMatters)"]
            }
            // Labels for the rows without a value of their own (the calls joined to no visit is told by its flag, not its key).
            func label(_ r: Calltrace_Transcript_V1_AttributionRow) -> String { r.noVisit ? "(no visit)" : r.key.isEmpty ? "(not set)" : r.key }
            if csv {
                func quoted(_ field: String) -> String { "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
                print(([by] + columns).joined(separator: ","))
                for row in response.rows + [response.total] { print(([quoted(label(row))] + values(row)).joined(separator: ",")) }
                return
            }
            try options.print(response) {
                let table = [[by] + columns] + (response.rows + [response.total]).map { [label($0)] + values($0) }
                let widths = (0..<table[0].count).map { column in table.map { $0[column].count }.max() ?? 0 }
                return table.map { row in
                    row.enumerated().map { index, cell in
                        index == 0 ? cell.padding(toLength: widths[0], withPad: " ", startingAt: 0)
                            : String(repeating: " ", count: widths[index] - cell.count) + cell
                    }.joined(separator: "  ")
                }.joined(separator: "\n")
                    + (response.poolCalls == 0 ? "" : "\n\(response.joinedCalls) of \(response.poolCalls) calls to website pool numbers joined to a visit")
            }
        }
    }
}

struct SuppressionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suppression", abstract: "Callers who objected (P13): not recorded, transcribed or analysed (requests.manage).",
        subcommands: [Add.self, Remove.self, List.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add", abstract: "Add a caller; their existing analyses are deleted.")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The caller's number, any common format.") var number: String
        @Option(help: "Why, e.g. \"objection received 2026-11-30\".") var reason = ""

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Transcript_V1_SuppressionServiceClient(client).addSuppression(.with {
                    $0.orgID = org; $0.phoneNumber = number; $0.reason = reason
                }, options: try options.callOptions)
            }
            try options.print(response) { "suppressed; \(response.analysesDeleted) analyses deleted" }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove a caller from the list.")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The caller's number.") var number: String

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Transcript_V1_SuppressionServiceClient(client).removeSuppression(.with {
                    $0.orgID = org; $0.phoneNumber = number
                }, options: try options.callOptions)
            }
            try options.print(response) { "removed" }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "The list, numbers masked.")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Transcript_V1_SuppressionServiceClient(client).listSuppressions(.with { $0.orgID = org },
                                                                                                     options: try options.callOptions)
            }
            try options.print(response) {
                response.suppressions.isEmpty ? "no suppressed callers"
                    : response.suppressions.map { "\($0.numberMasked)  since \(iso($0.addedAtUnixMs))  \($0.reason)" }.joined(separator: "\n")
            }
        }
    }
}

struct BlockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "block", abstract: "The firm's block list: callers rejected before anyone is rung; nothing of their calls is kept (settings.manage).",
        subcommands: [Add.self, Remove.self, List.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add", abstract: "Block a caller (again: nothing changes).")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The caller's number, any common format.") var number: String
        @Option(help: "Why, e.g. \"repeated nuisance calls\" (at most 200 characters).") var reason = ""

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Transcript_V1_BlockListServiceClient(client).blockCaller(.with {
                    $0.orgID = org; $0.phoneNumber = number; $0.reason = reason
                }, options: try options.callOptions)
            }
            try options.print(response) { "blocked" }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove", abstract: "Take a caller off the block list.")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The caller's number.") var number: String

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Transcript_V1_BlockListServiceClient(client).unblockCaller(.with {
                    $0.orgID = org; $0.phoneNumber = number
                }, options: try options.callOptions)
            }
            try options.print(response) { "unblocked" }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "The block list, newest first, numbers masked.")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Transcript_V1_BlockListServiceClient(client).listBlockedCallers(.with { $0.orgID = org },
                                                                                                      options: try options.callOptions)
            }
            try options.print(response) {
                response.blockedCallers.isEmpty ? "no blocked callers"
                    : response.blockedCallers.map { "\($0.numberMasked)  since \(iso($0.addedAtUnixMs))  \($0.reason)" }.joined(separator: "\n")
            }
        }
    }
}
