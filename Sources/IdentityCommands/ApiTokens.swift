import ArgumentParser
import CallTraceCLI
import CallTraceProto
import Foundation

struct ApiTokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api-tokens", abstract: "API tokens for a person's own tools and CRM integrations: scoped, expiring, revocable.",
        discussion: """
            A token acts for the person who made it, with only the permissions it names that their role still has. It is printed \
            once, when made (`create`), and identity keeps only its hash. Making one needs a signed-in session (`calltrace login`), \
            never another API token. `list --all-users` and revoking someone else's token need users.manage.
            """,
        subcommands: [List.self, Create.self, Revoke.self])

    static func describe(_ t: Calltrace_Identity_V1_ApiToken, owner: String?) -> String {
        let state = t.revokedAtUnixMs > 0 ? "revoked \(iso(t.revokedAtUnixMs))" : "until \(iso(t.expiresAtUnixMs))"
        return "\(t.tokenID)  \(t.prefix)…  \(t.name)  \(t.permissions.map(dashed).joined(separator: ","))  \(state)"
            + "  last used \(iso(t.lastUsedAtUnixMs))" + (owner.map { "  of \($0)" } ?? "")
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Your API tokens, newest first (never their secrets).")
        @OptionGroup var options: IdentityOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Flag(name: .customLong("all-users"), help: "Every user's tokens, with their owners (users.manage).") var allUsers = false

        func run() async throws {
            let response = try await options.run { client in
                try await Identity(client).listApiTokens(.with { $0.orgID = org; $0.allUsers = allUsers }, options: try options.callOptions)
            }
            let people = options.json || !allUsers ? [:] : await options.people(org: org)
            try options.print(response) {
                response.apiTokens.map { t in
                    ApiTokensCommand.describe(t, owner: allUsers ? people["user:\(t.userID)"].map { "\($0) (user:\(t.userID))" } ?? "user:\(t.userID)" : nil)
                }.joined(separator: "\n")
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create", abstract: "A new API token: printed once on standard output, what it is on standard error.",
            discussion: "e.g. export CALLTRACE_TOKEN=$(calltrace api-tokens create --name \"Clio sync\" --permission reports-read)")
        @OptionGroup var options: IdentityOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "What it is for, e.g. \"Clio sync\" (one line, at most 100 characters).") var name: String
        @Option(name: .customLong("permission"), help: "e.g. reports-read, recordings-play (repeat); each one your role has.") var permissions: [String]
        @Option(help: "How many days it lasts (at most 365).") var days: UInt32 = 90

        func validate() throws {
            guard (1...365).contains(days) else { throw ValidationError("--days is from 1 to 365") }
        }

        func run() async throws {
            try options.signedInBrowserOnly()
            let permissions = try permissions.map { try parseEnum($0, Calltrace_Identity_V1_Permission.self, option: "--permission") }
            let response = try await options.run { client in
                try await Identity(client).createApiToken(.with {
                    $0.orgID = org; $0.name = name; $0.permissions = permissions; $0.durationSeconds = days * 86_400
                }, options: try options.callOptions)
            }
            if !options.json {
                let made = response.apiToken
                let note = "calltrace: API token \(made.tokenID) (\(made.prefix)…) until \(iso(made.expiresAtUnixMs)); it is shown only this once\n"
                FileHandle.standardError.write(Data(note.utf8))
            }
            try options.print(response) { response.token }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke", abstract: "End an API token at once (yours, or anyone's with users.manage).")
        @OptionGroup var options: IdentityOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The token's id (api_…), as `api-tokens list` shows it.") var token: String

        func run() async throws {
            let response = try await options.run { client in
                try await Identity(client).revokeApiToken(.with { $0.orgID = org; $0.tokenID = token }, options: try options.callOptions)
            }
            try options.print(response) { "revoked \(token)" }
        }
    }
}
