import ArgumentParser
import CallTraceAPI
import CallTraceCLI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import Foundation

/// `calltrace recordings …`: the media service's RPCs from the command line, as a gateway (or
/// an operator) presenting its certificate, on behalf of a user when `--token` is given.
struct Recordings: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recordings",
        abstract: "Upload, list, play, share and delete recordings (the media service).",
        discussion: """
            Calls go to media as the certificate named by --as (a gateway by default); calls on
            behalf of a user carry their session token (--token, or CALLTRACE_TOKEN). Output is
            readable by default, JSON with --json. Exit status: 0 done, 1 failed, 3 not found,
            4 not allowed (no, expired or refused token; too weak a role), 5 media unreachable.
            Progress bars appear on a terminal only.
            """,
        subcommands: [Upload.self, Play.self, List.self, Show.self, Delete.self, Redact.self, Share.self, OpenLink.self, RevokeLink.self, Links.self,
                      LinkPolicy.self])

    /// Media as the caller reaches it (`--target`, default 127.0.0.1:7102).
    typealias Options = ServiceCallOptions<MediaTarget>

    static func describe(_ recording: Calltrace_Media_V1_Recording) -> String {
        let created = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(recording.createdAtUnixMs) / 1000))
        let format = [Calltrace_Media_V1_AudioFormat.wavPcm16: "wav-pcm16", .wavMulaw: "wav-mulaw", .wavAlaw: "wav-alaw", .mp3: "mp3",
                      .opus: "opus", .flac: "flac"][recording.format] ?? "unknown"
        return "\(recording.recordingID)  call \(recording.callID)  \(format)  \(recording.channels)ch \(recording.sampleRateHz) Hz  "
            + "\(recording.sizeBytes) bytes  \(created)  sha256 \(recording.sha256.hexString)"
            + (recording.redactionState == .muted ? "  muted" : "")
            + (recording.redactionState == .failed ? "\n  NOT MUTED: \(recording.redactionFailure)" : "")
    }

    struct Upload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "upload", abstract: "Upload an audio file (its SHA-256 is computed and checked end to end), as a telephony gateway (--as gateway-telephony), for a call it started.")
        @OptionGroup var options: Options
        @Argument(help: "The audio file.") var file: String
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "The gateway's call id.") var call: String
        @Option(help: "wav-pcm16, wav-mulaw, wav-alaw, mp3 or opus (WAV: read from the file when not given).") var format: String?
        @Option(name: .customLong("sample-rate"), help: "Hz (WAV: read from the file).") var sampleRate: UInt32?
        @Option(help: "1 or 2 (WAV: read from the file).") var channels: UInt32?
        @Option(name: .customLong("duration-ms"), help: "If known.") var durationMS: UInt64 = 0

        func run() async throws {
            guard let handle = FileHandle(forReadingAtPath: file) else { throw ValidationError("\(file) cannot be read") }
            defer { try? handle.close() }
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
            let wav = WAVInfo(try handle.read(upToCount: 4096) ?? Data())
            try handle.seek(toOffset: 0)
            let format = try Self.format(self.format, wav: wav)
            let digest = try SHA256Stream()
            while let block = try handle.read(upToCount: 1 << 20), !block.isEmpty { digest.update(block) }
            let sha = digest.finish()
            try handle.seek(toOffset: 0)
            let header = Calltrace_Media_V1_RecordingHeader.with {
                $0.orgID = org; $0.callID = call; $0.format = format
                $0.sampleRateHz = sampleRate ?? wav?.sampleRate ?? 0; $0.channels = channels ?? wav?.channels ?? 1
                $0.durationMs = durationMS; $0.sha256 = sha
            }
            let progress = ProgressBar(total: size, label: "upload")
            let response = try await options.run { client in
                try await Calltrace_Media_V1_RecordingServiceClient(client).uploadRecording(options: try options.callOptions) { writer in
                    try await writer.send(.with { $0.header = header })
                    while let block = try handle.read(upToCount: 1 << 20), !block.isEmpty {
                        try await writer.send(.with { $0.chunk = block })
                        progress.advance(by: block.count)
                    }
                }
            }
            progress.finish()
            try options.print(response) { "stored " + Recordings.describe(response.recording) }
        }

        static func format(_ name: String?, wav: WAVInfo?) throws -> Calltrace_Media_V1_AudioFormat {
            switch name {
            case "wav-pcm16": return .wavPcm16
            case "wav-mulaw": return .wavMulaw
            case "wav-alaw": return .wavAlaw
            case "mp3": return .mp3
            case "opus": return .opus
            case nil:
                guard let format = wav?.format else { throw ValidationError("name the --format (the file is not a WAV file this tool can read)") }
                return format
            default: throw ValidationError("--format must be wav-pcm16, wav-mulaw, wav-alaw, mp3 or opus")
            }
        }
    }

    struct Play: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "play", abstract: "Save a recording (or a byte range of it) to a file. Audited, with --reason.")
        @OptionGroup var options: Options
        @Argument(help: "Recording id.") var recording: String
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "Where to write the audio.") var out: String
        @Option(help: "First byte.") var offset: UInt64 = 0
        @Option(help: "Bytes (0: to the end).") var length: UInt64 = 0
        @Option(help: "Why (kept in the audit trail).") var reason = ""

        func run() async throws {
            let request = Calltrace_Media_V1_PlayRecordingRequest.with {
                $0.orgID = org; $0.recordingID = recording; $0.offset = offset; $0.length = length; $0.reason = reason
            }
            let written = try await Recordings.save(to: out) { sink in
                try await options.run { client in
                    try await Calltrace_Media_V1_RecordingServiceClient(client).playRecording(request, options: try options.callOptions) { stream in
                        for try await message in stream { try sink(message.hasRecording ? message.recording : nil, message.data) }
                    }
                }
            }
            Swift.print(options.json ? #"{"out":"\#(out)","bytes":\#(written)}"# : "wrote \(written) bytes to \(out)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List an organisation's recordings, newest first (metadata only).")
        @OptionGroup var options: Options
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "Only this call's.") var call: String?
        @Option(name: .customLong("page-size"), help: "Per page (at most 500).") var pageSize: UInt32 = 100
        @Option(name: .customLong("page-token"), help: "From a previous page.") var pageToken = ""

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Media_V1_RecordingServiceClient(client).listRecordings(.with {
                    $0.orgID = org; $0.callID = call ?? ""; $0.pageSize = pageSize; $0.pageToken = pageToken
                }, options: try options.callOptions)
            }
            try options.print(response) {
                (response.recordings.map(Recordings.describe) + (response.nextPageToken.isEmpty ? [] : ["more: --page-token \(response.nextPageToken)"]))
                    .joined(separator: "\n")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "One recording's metadata.")
        @OptionGroup var options: Options
        @Argument(help: "Recording id.") var recording: String
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Media_V1_RecordingServiceClient(client).getRecording(.with { $0.orgID = org; $0.recordingID = recording },
                                                                                        options: try options.callOptions)
            }
            try options.print(response) { Recordings.describe(response.recording) }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a recording at once and for good (audited).")
        @OptionGroup var options: Options
        @Argument(help: "Recording id.") var recording: String
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Media_V1_RecordingServiceClient(client).deleteRecording(.with { $0.orgID = org; $0.recordingID = recording },
                                                                                           options: try options.callOptions)
            }
            try options.print(response) { "deleted \(recording)" }
        }
    }

    struct Redact: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "redact",
            abstract: "Mute time ranges of a WAV recording with digital silence (a new sealed version; the old one is destroyed).")
        @OptionGroup var options: Options
        @Argument(help: "Recording id.") var recording: String
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(name: .customLong("range"), help: "START-END in milliseconds, e.g. 61200-64800; repeat for more.") var ranges: [String]
        @Option(help: "Why (kept in the audit trail).") var reason = ""

        func run() async throws {
            let parsed = try ranges.map { text -> Calltrace_Media_V1_TimeRange in
                let parts = text.split(separator: "-")
                guard parts.count == 2, let start = UInt64(parts[0]), let end = UInt64(parts[1]), start < end else {
                    throw ValidationError("--range must be START-END in milliseconds, not \(text)")
                }
                return .with { $0.startMs = start; $0.endMs = end }
            }
            let response = try await options.run { client in
                try await Calltrace_Media_V1_RecordingServiceClient(client).redactRecording(.with {
                    $0.orgID = org; $0.recordingID = recording; $0.ranges = parsed; $0.reason = reason
                }, options: try options.callOptions)
            }
            try options.print(response) { "muted \(response.mutedBytes) bytes; now " + Recordings.describe(response.recording) }
        }
    }

    struct Share: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "share", abstract: "Create a share link to a recording; prints its token (shown once).")
        @OptionGroup var options: Options
        @Argument(help: "Recording id.") var recording: String
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "Seconds the link lives (at most 30 days).") var ttl: UInt32 = 86_400
        @Option(help: "Why it was shared (sealed at rest).") var note = ""

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Media_V1_ShareLinkServiceClient(client).createShareLink(.with {
                    $0.orgID = org; $0.recordingID = recording; $0.ttlSeconds = ttl; $0.note = note
                }, options: try options.callOptions)
            }
            try options.print(response) { "link \(response.link.linkID) until \(Recordings.time(response.link.expiresAtUnixMs))\ntoken \(response.token)" }
        }
    }

    struct OpenLink: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "open-link", abstract: "Save the recording a share-link token opens (as the gateway serving the link).")
        @OptionGroup var options: Options
        @Option(name: .customLong("link"), parsing: .unconditional, help: "The link's token (taken whole, even when it begins with '-').")
        var token: String
        @Option(help: "Where to write the audio.") var out: String

        func run() async throws {
            let written = try await Recordings.save(to: out) { sink in
                try await options.run { client in
                    try await Calltrace_Media_V1_ShareLinkServiceClient(client).openShareLink(.with { $0.token = token },
                                                                                             options: try options.callOptions) { stream in
                        for try await message in stream { try sink(message.hasRecording ? message.recording : nil, message.data) }
                    }
                }
            }
            Swift.print(options.json ? #"{"out":"\#(out)","bytes":\#(written)}"# : "wrote \(written) bytes to \(out)")
        }
    }

    struct RevokeLink: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke-link", abstract: "Revoke a share link at once.")
        @OptionGroup var options: Options
        @Argument(help: "Link id (lnk_…).") var link: String
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Media_V1_ShareLinkServiceClient(client).revokeShareLink(.with { $0.orgID = org; $0.linkID = link },
                                                                                           options: try options.callOptions)
            }
            try options.print(response) { "revoked \(link)" }
        }
    }

    struct LinkPolicy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "link-policy", abstract: "The organisation's longest share-link lifetime; --max-ttl sets it (an hour to 30 days, settings.manage).")
        @OptionGroup var options: Options
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(name: .customLong("max-ttl"), help: "Seconds (3600 to 2592000).") var maxTTL: UInt32?

        func run() async throws {
            let policy = try await options.run { client in
                let links = Calltrace_Media_V1_ShareLinkServiceClient(client)
                if let maxTTL {
                    return try await links.setShareLinkPolicy(.with { $0.orgID = org; $0.maxTtlSeconds = maxTTL }, options: try options.callOptions).policy
                }
                return try await links.getShareLinkPolicy(.with { $0.orgID = org }, options: try options.callOptions).policy
            }
            try options.print(policy) {
                "links live at most \(policy.maxTtlSeconds) s (\(policy.maxTtlSeconds / 86_400) days)"
                    + (policy.updatedBy.isEmpty ? " (the default)" : "; set by \(policy.updatedBy) at \(Recordings.time(policy.updatedAtUnixMs))")
            }
        }
    }

    struct Links: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "links", abstract: "List share links, with how often each was opened.")
        @OptionGroup var options: Options
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "Only this recording's.") var recording: String?

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Media_V1_ShareLinkServiceClient(client).listShareLinks(.with {
                    $0.orgID = org; $0.recordingID = recording ?? ""
                }, options: try options.callOptions)
            }
            try options.print(response) {
                response.links.map { link in
                    "\(link.linkID)  recording \(link.recordingID)  until \(Recordings.time(link.expiresAtUnixMs))  opens \(link.opens)"
                        + (link.revokedAtUnixMs != 0 ? "  revoked" : "") + (link.note.isEmpty ? "" : "  \(link.note)")
                }.joined(separator: "\n")
            }
        }
    }

    static func time(_ unixMs: Int64) -> String { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(unixMs) / 1000)) }

    /// Writes streamed audio to `path` through a temporary file (renamed into place when whole),
    /// with a progress bar on a terminal; returns the bytes written.
    static func save(to path: String, _ body: (@escaping (Calltrace_Media_V1_Recording?, Data) throws -> Void) async throws -> Void) async throws -> Int {
        try await saveStream(to: path, label: "play") { sink in
            try await body { recording, data in try sink(recording.map { Int($0.sizeBytes) }, data) }
        }
    }
}
