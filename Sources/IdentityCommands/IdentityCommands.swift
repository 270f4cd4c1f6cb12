import ArgumentParser

/// The identity service's commands, in the order `calltrace --help` lists them; its target
/// (`IdentityTarget`) is CallTraceCLI's, since every group may look people up there.
package enum IdentityCommands {
    package static let groups: [any ParsableCommand.Type] = [
        OrgsCommand.self, UsersCommand.self, LoginCommand.self, LogoutCommand.self, WhoAmICommand.self, AccountsCommand.self, GrantsCommand.self,
        SecurityPolicyCommand.self, ApiTokensCommand.self, AlertsCommand.self,
    ]
}
