import ArgumentParser
import CallTraceAPI
import CallTraceCLI
import CallTraceProto
import CallTraceRPC
import Foundation

/// The identity service from the command line: organisations, users, sessions, two-factor,
/// support grants and security policies. Passwords are read from standard input (first line),
/// never from the command line.
typealias IdentityOptions = ServiceCallOptions<IdentityTarget>
typealias Identity = Calltrace_Identity_V1_IdentityServiceClient

/// A password or a secret token: asked for on the terminal without echo (the prompt on standard
/// error), or the next line of standard input when that is a pipe or a file.
func secretFromStandardInput(_ what: String) throws -> String {
    let line: String?
    if isatty(STDIN_FILENO) == 1 {
        // Echo off before the prompt shows: what is typed after it is neither echoed nor flushed.
        var saved = termios()
        let quiet = tcgetattr(STDIN_FILENO, &saved) == 0
        if quiet {
            var silent = saved
            silent.c_lflag &= ~tcflag_t(ECHO)
            _ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &silent)
        }
        FileHandle.standardError.write(Data("\(what.prefix(1).uppercased() + what.dropFirst()): ".utf8))
        line = readLine(strippingNewline: true)
        if quiet { _ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved) }
        FileHandle.standardError.write(Data("\n".utf8))
    } else {
        line = readLine(strippingNewline: true)
    }
    guard let line, !line.isEmpty else { throw ValidationError("give the \(what) (on the terminal, or the first line of standard input)") }
    return line
}

struct OrgsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orgs", abstract: "Organisations (operators: --as operator-<name>).",
        discussion: "The first admin's invitation goes to their e-mail from identity itself; no operator sees it.",
        subcommands: [List.self, Create.self, Suspend.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Every organisation, its name and status (operators).")
        @OptionGroup var options: IdentityOptions

        func run() async throws {
            let response = try await options.run { client in
                try await Identity(client).listOrganizations(.init(), options: try options.callOptions)
            }
            try options.print(response) {
                response.organizations.map { "\($0.orgID)  \($0.name)  \($0.status)  since \(iso($0.createdAtUnixMs))" }.joined(separator: "\n")
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "A new organisation and an invitation for its first admin.")
        @OptionGroup var options: IdentityOptions
        @Option(help: "The firm's name.") var name: String
        @Option(name: .customLong("admin-email")) var adminEmail: String
        @Option(name: .customLong("admin-name")) var adminName = ""

        func run() async throws {
            let response = try await options.run { client in
                try await Identity(client).createOrganization(.with {
                    $0.name = name; $0.firstAdminEmail = adminEmail; $0.firstAdminDisplayName = adminName
                }, options: try options.callOptions)
            }
            try options.print(response) { "organisation \(response.orgID); invitation sent, valid until \(iso(response.invitationExpiresAtUnixMs))" }
        }
    }

    struct Suspend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "suspend", abstract: "Suspend an organisation: its sessions end, nobody signs in.")
        @OptionGroup var options: IdentityOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "Why (audited).") var reason: String

        func run() async throws {
            let response = try await options.run { client in
                try await Identity(client).suspendOrganization(.with { $0.orgID = org; $0.reason = reason }, options: try options.callOptions)
            }
            try options.print(response) { "suspended \(org)" }
        }
    }
}

struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login", abstract: "Sign in (password on standard input); prints the session token for CALLTRACE_TOKEN.",
        discussion: "Through a credential gateway (`--as gateway-web` by default).")
    @OptionGroup var options: IdentityOptions
    @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
    @Option var email: String
    @Option(help: "The current two-factor code, when the account has one.") var totp = ""

    func run() async throws {
        try options.signedInBrowserOnly()
        let password = try secretFromStandardInput("password")
        let response = try await options.run { client in
            try await Identity(client).login(.with { $0.orgID = org; $0.email = email; $0.password = password; $0.totpCode = totp },
                                             options: try options.credentialCallOptions)
        }
        try options.print(response) { response.token }
    }
}

struct LogoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logout", abstract: "End the session of CALLTRACE_TOKEN (or --token).")
    @OptionGroup var options: IdentityOptions

    func run() async throws {
        try options.signedInBrowserOnly()
        let response = try await options.run { client in try await Identity(client).logout(.init(), options: try options.callOptions) }
        try options.print(response) { "signed out" }
    }
}

struct AccountsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accounts", abstract: "A person's own account: accept an invitation, reset a password, two-factor.",
        subcommands: [Redeem.self, RequestReset.self, Reset.self, EnrollTOTP.self, ConfirmTOTP.self])

    struct Redeem: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "redeem", abstract: "Accept an invitation: the invitation token, then the new password, on standard input.")
        @OptionGroup var options: IdentityOptions

        func run() async throws {
            try options.signedInBrowserOnly()
            let token = try secretFromStandardInput("invitation token")
            let password = try secretFromStandardInput("password")
            let response = try await options.run { client in
                try await Identity(client).redeemInvitation(.with { $0.invitationToken = token; $0.password = password }, options: try options.credentialCallOptions)
            }
            try options.print(response) { "account \(response.userID) of \(response.orgID) is ready: calltrace login --org \(response.orgID) --email …" }
        }
    }

    struct RequestReset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "request-reset", abstract: "A password-reset token is e-mailed, if the account exists.")
        @OptionGroup var options: IdentityOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option var email: String

        func run() async throws {
            let response = try await options.run { client in
                try await Identity(client).requestPasswordReset(.with { $0.orgID = org; $0.email = email }, options: try options.credentialCallOptions)
            }
            try options.print(response) { "if that account exists, a reset link is on its way" }
        }
    }

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "reset", abstract: "Set a new password: the reset token, then the password, on standard input.")
        @OptionGroup var options: IdentityOptions

        func run() async throws {
            try options.signedInBrowserOnly()
            let token = try secretFromStandardInput("reset token")
            let password = try secretFromStandardInput("password")
            let response = try await options.run { client in
                try await Identity(client).resetPassword(.with { $0.resetToken = token; $0.password = password }, options: try options.credentialCallOptions)
            }
            try options.print(response) { "password changed; every session of the account ended" }
        }
    }

    struct EnrollTOTP: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "totp-enroll", abstract: "Start two-factor (password on standard input): prints the otpauth URI.")
        @OptionGroup var options: IdentityOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org

        func run() async throws {
            try options.signedInBrowserOnly()
            let password = try secretFromStandardInput("password")
            let response = try await options.run { client in
                try await Identity(client).enrollTotp(.with { $0.orgID = org; $0.password = password }, options: try options.callOptions)
            }
            try options.print(response) { response.otpauthUri }
        }
    }

    struct ConfirmTOTP: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "totp-confirm", abstract: "Finish two-factor with a current code.")
        @OptionGroup var options: IdentityOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option var code: String

        func run() async throws {
            try options.signedInBrowserOnly()
            let response = try await options.run { client in
                try await Identity(client).confirmTotp(.with { $0.orgID = org; $0.code = code }, options: try options.callOptions)
            }
            try options.print(response) { "two-factor is on" }
        }
    }
}

struct UsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users", abstract: "The organisation's users (users.manage: admins).",
        subcommands: [List.self, Show.self, Invite.self, Role.self, Suspend.self, Remove.self, RevokeSessions.self, ResetTwoFactor.self])

    static func role(_ text: String) throws -> Calltrace_Identity_V1_Role { try parseEnum(text, Calltrace_Identity_V1_Role.self, option: "--role") }

    static func describe(_ u: Calltrace_Identity_V1_User) -> String {
        "\(u.userID)  \(u.displayName.isEmpty ? "(no name)" : u.displayName) <\(u.email)>  \(dashed(u.role))  \(u.status)"
            + "  two-factor \(u.twoFactorConfirmed ? "on" : "off")  since \(iso(u.createdAtUnixMs))"
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Every user of the organisation, with role, status and two-factor.")
        @OptionGroup var options: IdentityOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org

        func run() async throws {
            let response = try await options.run { client in
                try await Identity(client).listUsers(.with { $0.orgID = org }, options: try options.callOptions)
            }
            try options.print(response) { response.users.map(UsersCommand.describe).joined(separator: "\n") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "One user, by user id or e-mail address.")
        @OptionGroup var options: IdentityOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "A user id (usr_…) or an e-mail address.") var user: String

        func run() async throws {
            let response = try await options.run { client in
                try await Identity(client).listUsers(.with { $0.orgID = org }, options: try options.callOptions)
            }
            guard let found = response.users.first(where: { $0.userID == user || $0.email.lowercased() == user.lowercased() }) else {
                FileHandle.standardError.write(Data("calltrace: no user \(user) in organisation \(org)\n".utf8))
                throw ExitCode(3)
            }
            try options.print(found) { UsersCommand.describe(found) }
        }
    }

    struct Invite: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "invite", abstract: "Invite a user; the invitation goes to their e-mail.")
        @OptionGroup var options: IdentityOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option var email: String
        @Option var name = ""
        @Option(help: "admin, member or analyst.") var role: String

        func run() async throws {
            let role = try UsersCommand.role(role)
            let response = try await options.run { client in
                try await Identity(client).inviteUser(.with { $0.orgID = org; $0.email = email; $0.displayName = name; $0.role = role },
                                                      options: try options.callOptions)
            }
            try options.print(response) { "user \(response.userID) invited; valid until \(iso(response.invitationExpiresAtUnixMs))" }
        }
    }

    /// The options of a command about one user.
    struct UserOptions: ParsableArguments {
        @OptionGroup var options: IdentityOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The user id (usr_…).") var user: String
    }

    struct Role: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "role", abstract: "Change a user's role; their sessions end.")
        @OptionGroup var u: UserOptions
        @Option(help: "admin, member or analyst.") var role: String

        func run() async throws {
            let role = try UsersCommand.role(role)
            let response = try await u.options.run { client in
                try await Identity(client).changeUserRole(.with { $0.orgID = u.org; $0.userID = u.user; $0.role = role }, options: try u.options.callOptions)
            }
            try u.options.print(response) { "\(u.user) is now \(dashed(role))" }
        }
    }

    struct Suspend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "suspend", abstract: "Suspend a user; their sessions end.")
        @OptionGroup var u: UserOptions

        func run() async throws {
            let response = try await u.options.run { client in
                try await Identity(client).suspendUser(.with { $0.orgID = u.org; $0.userID = u.user }, options: try u.options.callOptions)
            }
            try u.options.print(response) { "suspended \(u.user)" }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove a user for good.")
        @OptionGroup var u: UserOptions

        func run() async throws {
            let response = try await u.options.run { client in
                try await Identity(client).removeUser(.with { $0.orgID = u.org; $0.userID = u.user }, options: try u.options.callOptions)
            }
            try u.options.print(response) { "removed \(u.user)" }
        }
    }

    struct RevokeSessions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke-sessions", abstract: "End every session of a user.")
        @OptionGroup var u: UserOptions

        func run() async throws {
            let response = try await u.options.run { client in
                try await Identity(client).revokeUserSessions(.with { $0.orgID = u.org; $0.userID = u.user }, options: try u.options.callOptions)
            }
            try u.options.print(response) { "\(response.sessionsEnded) sessions ended" }
        }
    }

    struct ResetTwoFactor: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "reset-2fa", abstract: "Clear a user's two-factor (they enrol again).")
        @OptionGroup var u: UserOptions

        func run() async throws {
            let response = try await u.options.run { client in
                try await Identity(client).resetTwoFactor(.with { $0.orgID = u.org; $0.userID = u.user }, options: try u.options.callOptions)
            }
            try u.options.print(response) { "two-factor of \(u.user) cleared" }
        }
    }
}

struct GrantsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grants", abstract: "Support grants: what an operator may do in the organisation, and for how long (grants.manage).",
        subcommands: [List.self, Create.self, Revoke.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "The organisation's grants, past and present, with their reasons.")
        @OptionGroup var options: IdentityOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org

        func run() async throws {
            let response = try await options.run { client in
                try await Identity(client).listSupportGrants(.with { $0.orgID = org }, options: try options.callOptions)
            }
            let people = options.json ? [:] : await options.people(org: org)
            try options.print(response) {
                response.grants.map { g in
                    let state = g.revokedAtUnixMs > 0 ? "revoked \(iso(g.revokedAtUnixMs))" : "until \(iso(g.expiresAtUnixMs))"
                    let by = people[g.createdBy].map { "\($0) (\(g.createdBy))" } ?? g.createdBy
                    return "\(g.grantID)  \(g.permissions.map(dashed).joined(separator: ","))  \(state)  by \(by)  reason: \(g.reason)"
                }.joined(separator: "\n")
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Let operators act in the organisation for a while (every use is audited).")
        @OptionGroup var options: IdentityOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(name: .customLong("permission"), help: "e.g. recordings-play, transcripts-read (repeat).") var permissions: [String]
        @Option(help: "How long, in minutes.") var minutes: UInt32
        @Option(help: "Why (audited).") var reason: String

        func run() async throws {
            let permissions = try permissions.map { try parseEnum($0, Calltrace_Identity_V1_Permission.self, option: "--permission") }
            let response = try await options.run { client in
                try await Identity(client).createSupportGrant(.with {
                    $0.orgID = org; $0.permissions = permissions; $0.durationSeconds = minutes * 60; $0.reason = reason
                }, options: try options.callOptions)
            }
            try options.print(response) { "grant \(response.grantID) until \(iso(response.expiresAtUnixMs))" }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke", abstract: "End a support grant at once.")
        @OptionGroup var options: IdentityOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The grant id.") var grant: String

        func run() async throws {
            let response = try await options.run { client in
                try await Identity(client).revokeSupportGrant(.with { $0.orgID = org; $0.grantID = grant }, options: try options.callOptions)
            }
            try options.print(response) { "revoked \(grant)" }
        }
    }
}

struct SecurityPolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "security-policy", abstract: "The organisation's sign-in rules: client address ranges, session lifetimes, two-factor (settings.manage).",
        subcommands: [Show.self, Set.self], defaultSubcommand: Set.self)

    static func describe(_ policy: Calltrace_Identity_V1_SecurityPolicy) -> String {
        """
        client addresses:  \(policy.allowedClientRanges.isEmpty ? "any" : policy.allowedClientRanges.joined(separator: " "))
        idle timeout:      \(policy.sessionIdleSeconds) s
        session lifetime:  \(policy.sessionMaxSeconds) s
        two-factor:        \(policy.requireTwoFactor ? "required" : "not required")
        """
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "The policy as it stands.")
        @OptionGroup var options: IdentityOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org

        func run() async throws {
            let response = try await options.run { client in
                try await Identity(client).getSecurityPolicy(.with { $0.orgID = org }, options: try options.callOptions)
            }
            try options.print(response) { SecurityPolicyCommand.describe(response.policy) }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set", abstract: "Changes what the flags name; everything else stays as it is.",
            discussion: "With no flag it changes nothing and says so: `security-policy show` prints the policy.")
        @OptionGroup var options: IdentityOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(name: .customLong("allow"), help: "A client address range (CIDR) users may come from (repeat; replaces the list).") var ranges: [String] = []
        @Flag(name: .customLong("allow-any"), help: "Lift the address restriction: any address.") var allowAny = false
        @Option(name: .customLong("idle-seconds"), help: "Sessions end after this long unused (0: the default, 1800).") var idleSeconds: UInt32?
        @Option(name: .customLong("max-seconds"), help: "Sessions end this long after sign-in (0: the default, 43200).") var maxSeconds: UInt32?
        @Flag(name: .customLong("require-2fa"), inversion: .prefixedNo, help: "Every user signs in with two-factor (--no-require-2fa: not required).")
        var requireTwoFactor: Bool?

        func validate() throws {
            if allowAny && !ranges.isEmpty { throw ValidationError("give --allow or --allow-any, not both") }
        }

        func run() async throws {
            guard !ranges.isEmpty || allowAny || idleSeconds != nil || maxSeconds != nil || requireTwoFactor != nil else {
                throw ValidationError("name what to change (--allow, --allow-any, --idle-seconds, --max-seconds, --[no-]require-2fa); "
                                      + "`calltrace security-policy show --org \(org)` prints the policy")
            }
            let response = try await options.run { client in
                let current = try await Identity(client).getSecurityPolicy(.with { $0.orgID = org }, options: try options.callOptions).policy
                return try await Identity(client).setSecurityPolicy(.with {
                    $0.orgID = org
                    $0.allowedClientRanges = allowAny ? [] : ranges.isEmpty ? current.allowedClientRanges : ranges
                    $0.sessionIdleSeconds = idleSeconds ?? current.sessionIdleSeconds
                    $0.sessionMaxSeconds = maxSeconds ?? current.sessionMaxSeconds
                    $0.requireTwoFactor = requireTwoFactor ?? current.requireTwoFactor
                }, options: try options.callOptions)
            }
            try options.print(response) { "security policy of \(org) set:\n" + SecurityPolicyCommand.describe(response.policy) }
        }
    }
}

struct WhoAmICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "whoami", abstract: "Whose the session token is: name, e-mail, role and what it permits.")
    @OptionGroup var options: IdentityOptions
    @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org

    func run() async throws {
        let response = try await options.run { client in
            try await Identity(client).getCurrentUser(.with { $0.orgID = org }, options: try options.callOptions)
        }
        try options.print(response) {
            UsersCommand.describe(response.user) + "\n  may: " + response.permissions.map(dashed).joined(separator: ", ")
        }
    }
}
