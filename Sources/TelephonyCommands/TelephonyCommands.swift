import ArgumentParser
import CallTraceAPI
import CallTraceCLI
import CallTraceProto

/// The telephony gateway's commands, in the order `calltrace --help` lists them.
package enum TelephonyCommands {
    package static let groups: [any ParsableCommand.Type] = [NumbersCommand.self, CallbackCommand.self]
}

/// The telephony gateway serves its calls under its gateway certificate.
enum TelephonyTarget: ServiceTarget {
    static let name = "telephony"
    static let defaultPort = DefaultPorts.telephony
    static let identityKind = "gateway"
}

typealias TelephonyOptions = ServiceCallOptions<TelephonyTarget>

struct NumbersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "numbers",
        abstract: "The firm's numbers at Twilio: search, buy, import and release (settings.manage).",
        discussion: "Buying points a number's calls at the telephony gateway and gives it a marketing source in transcript; "
            + "an imported number gets one with `calltrace tracking-numbers assign`.",
        subcommands: [Search.self, Buy.self, Import.self, Release.self])

    struct Search: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "search", abstract: "UK numbers Twilio offers now (at most 20).")
        @OptionGroup var options: TelephonyOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "A UK area code, e.g. 0118.") var areaCode = ""
        @Option(help: "Digits the number contains, e.g. 4960.") var contains = ""
        @Flag(help: "Mobile numbers (07…) instead of geographic ones.") var mobile = false

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Telephony_V1_NumberServiceClient(client).searchNumbers(.with {
                    $0.orgID = org; $0.areaCode = areaCode; $0.contains = contains; $0.mobile = mobile
                }, options: try options.callOptions)
            }
            try options.print(response) {
                response.numbers.isEmpty ? "no numbers offered"
                    : response.numbers.map { "\($0.number)  \($0.locality)\($0.voice ? "" : "  (no voice)")" }.joined(separator: "\n")
            }
        }
    }

    struct Buy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "buy",
                                                        abstract: "Buy a number one search offered, under the firm's regulatory bundle, for a marketing source.")
        @OptionGroup var options: TelephonyOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The number, e.g. +441184960123.") var number: String
        @Option(help: "The marketing source its calls count for, e.g. \"Google Ads - family\".") var source: String
        @Option(help: "google-ads, paid-social, organic, directory, referral, print, email or other.") var channel: String
        @Option(help: "Campaign (optional).") var campaign = ""
        @Option(help: "The firm's regulatory bundle at Twilio (BU…; default: the gateway's).") var bundle = ""
        @Option(help: "The firm's address at Twilio (AD…; default: the gateway's).") var address = ""

        func run() async throws {
            let channel = try parseEnum(channel, Calltrace_Transcript_V1_Channel.self, option: "--channel")
            let response = try await options.run { client in
                try await Calltrace_Telephony_V1_NumberServiceClient(client).buyNumber(.with {
                    $0.orgID = org; $0.number = number; $0.bundleSid = bundle; $0.addressSid = address
                    $0.source = source; $0.channel = channel; $0.campaign = campaign
                }, options: try options.callOptions)
            }
            try options.print(response) {
                "bought \(response.number.number) (\(response.number.twilioSid)); its calls count for \(response.trackingNumber.source) from now on"
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "import",
                                                        abstract: "Operators, under the firm's grant: take a number already on the Twilio account (ported or transferred there) for the firm.")
        @OptionGroup var options: TelephonyOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The number.") var number: String

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Telephony_V1_NumberServiceClient(client).importNumber(.with { $0.orgID = org; $0.number = number },
                                                                                          options: try options.callOptions)
            }
            try options.print(response) {
                "imported \(response.number.number) (\(response.number.twilioSid)); its calls now reach CallTrace. "
                    + "Give it a source: calltrace tracking-numbers assign \(response.number.number) --source …"
            }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "release",
                                                        abstract: "Release one of the firm's numbers: in tracking-numbers (its history stays), then at Twilio.")
        @OptionGroup var options: TelephonyOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The number.") var number: String
        @Flag(help: "Keep it on the Twilio account; only stop answering it here.") var keepAtTwilio = false

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Telephony_V1_NumberServiceClient(client).releaseNumber(.with {
                    $0.orgID = org; $0.number = number; $0.keepAtTwilio = keepAtTwilio
                }, options: try options.callOptions)
            }
            try options.print(response) { keepAtTwilio ? "no longer answered here; still on the Twilio account" : "released at Twilio" }
        }
    }
}

struct CallbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "callback",
        abstract: "Call an enquirer back (calls.place): your phone rings first, then theirs; they hear the firm's returned-call greeting.",
        discussion: "The returned call is recorded and linked to the call it returns. Refused for a caller who withheld their number "
            + "or objected to recording.")
    @OptionGroup var options: TelephonyOptions
    @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
    @Argument(help: "The call to return.") var call: String
    @Option(help: "Your phone (a UK number; default: the first phone the number the call came in on rings).") var staffNumber = ""

    func run() async throws {
        let response = try await options.run { client in
            try await Calltrace_Telephony_V1_CallbackServiceClient(client).placeCallback(.with {
                $0.orgID = org; $0.callID = call; $0.staffNumber = staffNumber
            }, options: try options.callOptions)
        }
        try options.print(response) { "placed: \(response.callID) (your phone rings first)" }
    }
}
