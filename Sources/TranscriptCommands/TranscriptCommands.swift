import ArgumentParser
import CallTraceAPI
import CallTraceCLI

/// The transcript service's commands, in the order `calltrace --help` lists them.
package enum TranscriptCommands {
    package static let groups: [any ParsableCommand.Type] = [
        TrackingNumbersCommand.self, CallsCommand.self, TranscriptsCommand.self, ReportCommand.self, WebsitesCommand.self, SuppressionCommand.self, BlockCommand.self,
    ]
}

enum TranscriptTarget: ServiceTarget {
    static let name = "transcript"
    static let defaultPort = DefaultPorts.transcript
}
