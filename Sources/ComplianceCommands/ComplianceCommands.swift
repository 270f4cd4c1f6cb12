import ArgumentParser
import CallTraceAPI
import CallTraceCLI

/// The compliance service's commands, and those that check its documents or deadlines offline,
/// in the order `calltrace --help` lists them.
package enum ComplianceCommands {
    package static let groups: [any ParsableCommand.Type] = [
        AuditCommand.self, RetentionCommand.self, DeletionsCommand.self, RequestsCommand.self, BundlesCommand.self, MattersCommand.self,
        OffboardingCommand.self, VerifyCertificate.self, NoticesCommand.self, RegisterCommand.self, ComplianceCommand.self,
    ]
}

enum ComplianceTarget: ServiceTarget {
    static let name = "compliance"
    static let defaultPort = DefaultPorts.compliance
}
