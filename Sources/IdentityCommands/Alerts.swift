import ArgumentParser
import CallTraceAPI
import CallTraceCLI
import CallTraceProto
import Foundation

/// A person's own e-mail alerts (issue 32).
struct AlertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts", abstract: "Your e-mail alerts: missed calls, new enquiries, subject requests due, Monday's summary.",
        discussion: """
            Identity e-mails each alert you choose, to your account's address; an alert never carries a caller's number, it links \
            to the call in the web app. A kind your role cannot see is unavailable. Choosing needs a signed-in session \
            (`calltrace login`), not an API token.
            """,
        subcommands: [Show.self, Set.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Each alert, on or off, and whether your role may have it.")
        @OptionGroup var options: IdentityOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Identity_V1_AlertServiceClient(client).getAlertPreferences(.with { $0.orgID = org }, options: try options.callOptions)
            }
            try options.print(response) { AlertsCommand.describe(response.preferences) }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set", abstract: "Choose your alerts: exactly those named are on (none: all off).",
            discussion: "e.g. calltrace alerts set --alert missed-call --alert weekly-summary")
        @OptionGroup var options: IdentityOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(name: .customLong("alert"), help: "missed-call, new-enquiry, subject-requests-due or weekly-summary (repeat).") var alerts: [String] = []

        func run() async throws {
            if case .webApp(let url) = try options.route {
                throw ValidationError("choose your alerts in the web app, \(url)/account/alerts: an API token cannot change them")
            }
            let kinds = try alerts.map { try parseEnum($0, Calltrace_Identity_V1_AlertKind.self, option: "--alert") }
            let response = try await options.run { client in
                try await Calltrace_Identity_V1_AlertServiceClient(client).setAlertPreferences(.with { $0.orgID = org; $0.enabled = kinds },
                                                                                               options: try options.callOptions)
            }
            try options.print(response) { AlertsCommand.describe(response.preferences) }
        }
    }

    static func describe(_ preferences: [Calltrace_Identity_V1_AlertPreference]) -> String {
        preferences.map { p in
            let state = !p.available ? "unavailable to your role" : p.enabled ? "on" : "off"
            return "\(dashed(p.kind).padding(toLength: 22, withPad: " ", startingAt: 0)) \(state.padding(toLength: 26, withPad: " ", startingAt: 0)) \(p.description_p)"
        }.joined(separator: "\n")
    }
}
