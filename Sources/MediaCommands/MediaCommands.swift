import ArgumentParser
import CallTraceAPI
import CallTraceCLI

/// The media service's commands (`calltrace recordings …`).
package enum MediaCommands {
    package static let groups: [any ParsableCommand.Type] = [Recordings.self]
}

enum MediaTarget: ServiceTarget {
    static let name = "media"
    static let defaultPort = DefaultPorts.media
}
