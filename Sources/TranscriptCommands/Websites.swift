import ArgumentParser
import CallTraceAPI
import CallTraceCLI
import CallTraceProto
import Foundation

/// Website attribution from the command line (issue 32): a firm's websites, their number pools
/// and the pools' use. The tag itself is served by the web gateway (`/dni.js`).
struct WebsitesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "websites", abstract: "The firm's websites, the numbers their tag shows, and how the pools are used.",
        discussion: "Creating, changing, pooling and deleting need settings.manage (admins); listing and status need reports.read.",
        subcommands: [Create.self, Update.self, List.self, Pool.self, Status.self, Delete.self])

    typealias Client = Calltrace_Transcript_V1_WebsiteServiceClient

    static func describe(_ w: Calltrace_Transcript_V1_Website) -> String {
        ["\(w.websiteID)  \(w.name)  key \(w.siteKey)", "  origins \(w.origins.joined(separator: ", "))",
         "  replaces \(w.targetNumbers.joined(separator: ", ")); source \(w.source)",
         "  captures \(w.clickIds.map { dashed($0) }.joined(separator: ", "))",
         "  pool \(w.poolNumbers.isEmpty ? "empty (the source's number is shown)" : w.poolNumbers.joined(separator: ", "))"].joined(separator: "\n")
    }

    /// The settings shared by create and update.
    struct Settings: ParsableArguments {
        @Option(help: "A name for the website.") var name: String
        @Option(help: "Where the tag runs: https://www.example.co.uk (repeat for several).") var origin: [String]
        @Option(help: "A number printed on the site that the tag replaces (repeat for several).") var replace: [String]
        @Option(help: "The marketing source the site's visitors come under (its own number shows before consent).") var source: String
        @Option(help: "A click id to capture after consent: gclid, gbraid, wbraid, msclkid or fbclid (repeat; default the first three).")
        var clickID: [String] = []

        func proto() throws -> Calltrace_Transcript_V1_WebsiteSettings {
            let kinds = try clickID.map { try parseEnum($0, Calltrace_Transcript_V1_ClickIdKind.self, option: "--click-id") }
            return .with { $0.name = name; $0.origins = origin; $0.targetNumbers = replace; $0.source = source; $0.clickIds = kinds }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Add a website; prints the key its tag needs.")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @OptionGroup var settings: Settings

        func run() async throws {
            let proto = try settings.proto()
            let response = try await options.run { client in
                try await Client(client).createWebsite(.with { $0.orgID = org; $0.settings = proto }, options: try options.callOptions)
            }
            try options.print(response) { "created " + WebsitesCommand.describe(response.website) }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "update", abstract: "Replace a website's settings (its key and pool stay).")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The website's id (web_…).") var website: String
        @OptionGroup var settings: Settings

        func run() async throws {
            let proto = try settings.proto()
            let response = try await options.run { client in
                try await Client(client).updateWebsite(.with { $0.orgID = org; $0.websiteID = website; $0.settings = proto },
                                                       options: try options.callOptions)
            }
            try options.print(response) { "updated " + WebsitesCommand.describe(response.website) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "The firm's websites.")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org

        func run() async throws {
            let response = try await options.run { client in
                try await Client(client).listWebsites(.with { $0.orgID = org }, options: try options.callOptions)
            }
            try options.print(response) {
                response.websites.isEmpty ? "no websites" : response.websites.map(WebsitesCommand.describe).joined(separator: "\n")
            }
        }
    }

    struct Pool: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pool", abstract: "Replace a website's pool: the tracking numbers its tag shows, one visitor at a time.",
            discussion: "Each must be one of the firm's current tracking numbers and in no other website's pool. No numbers: an empty pool.")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The website's id (web_…).") var website: String
        @Argument(help: "The pool's numbers.") var numbers: [String] = []

        func run() async throws {
            let response = try await options.run { client in
                try await Client(client).setPoolNumbers(.with { $0.orgID = org; $0.websiteID = website; $0.numbers = numbers },
                                                        options: try options.callOptions)
            }
            try options.print(response) { WebsitesCommand.describe(response.website) }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status", abstract: "A pool's numbers held now, and its visits, reservations and takeovers (an exhausted pool) in a period.")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The website's id (web_…).") var website: String
        @Option(help: "From (2026-01-01 or an ISO 8601 time; default: the last 30 days).") var from: String?
        @Option(help: "Before (exclusive).") var before: String?

        func run() async throws {
            let from = try self.from.map { try unixMs($0, option: "--from") } ?? 0
            let before = try self.before.map { try unixMs($0, option: "--before") } ?? 0
            let response = try await options.run { client in
                try await Client(client).getPoolStatus(.with { $0.orgID = org; $0.websiteID = website; $0.fromUnixMs = from; $0.beforeUnixMs = before },
                                                       options: try options.callOptions)
            }
            try options.print(response) {
                "\(response.held) of \(response.poolSize) numbers held now (each for \(response.holdSeconds / 60) minutes after the visitor's last activity)\n"
                    + "\(response.visits) visits, \(response.reservations) reservations, \(response.takenOver) taken over from another visitor"
                    + (response.takenOver > 0 ? " (the pool was exhausted: add numbers)" : "")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a website and its pool (its visits stay until retention).")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The website's id (web_…).") var website: String

        func run() async throws {
            let response = try await options.run { client in
                try await Client(client).deleteWebsite(.with { $0.orgID = org; $0.websiteID = website }, options: try options.callOptions)
            }
            try options.print(response) { "deleted \(website)" }
        }
    }
}

extension ReportCommand {
    struct Conversions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "conversions",
            abstract: "Google Ads offline click conversions: confirmed genuine enquiries and matters on calls joined to a visit with a gclid.",
            discussion: "Each conversion is given once: those exported before are left out (--again gives them again), and those given now are recorded as exported unless --preview. --csv prints Google's click-conversion import file (time zone line, header, one line each).")
        @OptionGroup var options: TranscriptOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "From (2026-01-01 or an ISO 8601 time).") var from: String
        @Option(help: "Before (exclusive).") var before: String
        @Option(help: "The enquiry conversion action's name in Google Ads.") var enquiryName = "Genuine enquiry"
        @Option(help: "The matter conversion action's name in Google Ads.") var matterName = "Matter opened"
        @Flag(help: "Show them without recording them as exported.") var preview = false
        @Flag(help: "Include conversions exported before.") var again = false
        @Flag(help: "Print Google Ads' import file.") var csv = false

        func run() async throws {
            let from = try unixMs(self.from, option: "--from"), before = try unixMs(self.before, option: "--before")
            let response = try await options.run { client in
                try await Calltrace_Transcript_V1_WebsiteServiceClient(client).exportConversions(.with {
                    $0.orgID = org; $0.fromUnixMs = from; $0.beforeUnixMs = before; $0.preview = preview; $0.includeExported = again
                    $0.enquiryConversionName = enquiryName; $0.matterConversionName = matterName
                }, options: try options.callOptions)
            }
            if csv {
                FileHandle.standardOutput.write(Data(response.googleAdsCsv.utf8))
                return
            }
            try options.print(response) {
                (response.rows.map { "\(iso($0.convertedAtUnixMs))  \($0.conversion)  call \($0.callID)  gclid \($0.clickID)" }
                    + ["\(response.rows.count) conversions\(preview ? " (preview: not recorded)" : ""); \(response.alreadyExported) exported before; "
                        + "\(response.withoutClickID) without a gclid"]).joined(separator: "\n")
            }
        }
    }
}
