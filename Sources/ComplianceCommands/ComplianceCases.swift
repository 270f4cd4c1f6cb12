import ArgumentParser
import CallTraceAPI
import CallTraceCLI
import CallTraceProto
import CallTraceRPC
import CallTraceKeys
import ComplianceDocuments
import ComplianceDeadlines
import Foundation

/// Retention, deletions and subject requests from the command line (the compliance service).

/// Asks `poll` until `done` says so or `timeout` passes (for --wait); the last answer either way.
func waitFor<T>(timeout: Duration, poll: () async throws -> T, done: (T) -> Bool) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    var answer = try await poll()
    while !done(answer) && ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(250))
        answer = try await poll()
    }
    return answer
}

struct RetentionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention", abstract: "How long each kind of data is kept, and the runs that enforce it (settings.manage).",
        discussion: """
            Months per kind; 0 keeps the data while the account is active. Recordings and transcripts never outlive the
            call records they belong to. The policy runs daily at 02:00 London time, or now with `run`.
            """,
        subcommands: [Show.self, Set.self, Run.self, Runs.self])

    static func describe(_ p: Calltrace_Compliance_V1_RetentionPolicy) -> String {
        func months(_ n: UInt32) -> String { n == 0 ? "kept while the account is active" : "\(n) months" }
        return "recordings: \(months(p.recordingsMonths))\ntranscripts and summaries: \(months(p.transcriptsMonths))\n"
            + "call records: \(months(p.callRecordsMonths))" + (p.updatedBy.isEmpty ? "" : "\nset by \(p.updatedBy) at \(iso(p.updatedAtUnixMs))")
    }

    static func describe(_ r: Calltrace_Compliance_V1_RetentionRun) -> String {
        "\(r.runID)  \(r.state == .finished ? "finished \(iso(r.finishedAtUnixMs))" : "running")  by \(r.requestedBy)  started \(iso(r.startedAtUnixMs))\n"
            + "  recordings purged: \(r.recordingsPurged) (\(r.recordingBytesPurged) bytes, created before \(iso(r.recordingsBeforeUnixMs)))\n"
            + "  transcripts purged: \(r.transcriptsPurged) (calls before \(iso(r.transcriptsBeforeUnixMs)))\n"
            + "  call records purged: \(r.callRecordsPurged) (started before \(iso(r.callRecordsBeforeUnixMs)))"
            + (r.lastError.isEmpty ? "" : "\n  retrying: \(r.lastError)")
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "The organisation's policy.")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_RetentionServiceClient(client).getRetentionPolicy(.with { $0.orgID = org }, options: try options.callOptions)
            }
            try options.print(response) { RetentionCommand.describe(response.policy) }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set", abstract: "Set the policy (audited); the next run applies it.")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "Months to keep recordings (0: while active).") var recordings: UInt32
        @Option(help: "Months to keep transcripts and summaries (0: while active).") var transcripts: UInt32
        @Option(name: .customLong("call-records"), help: "Months to keep call records (0: while active).") var callRecords: UInt32

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_RetentionServiceClient(client).setRetentionPolicy(.with {
                    $0.orgID = org
                    $0.policy = .with { $0.recordingsMonths = recordings; $0.transcriptsMonths = transcripts; $0.callRecordsMonths = callRecords }
                }, options: try options.callOptions)
            }
            try options.print(response) { RetentionCommand.describe(response.policy) }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the policy now; with --wait, print the receipt when it finishes.")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Flag(help: "Wait for the run to finish (exit 1 if it has not within --wait-seconds).") var wait = false
        @Option(name: .customLong("wait-seconds")) var waitSeconds = 300

        func run() async throws {
            var run = try await options.run { client in
                try await Calltrace_Compliance_V1_RetentionServiceClient(client).runRetention(.with { $0.orgID = org }, options: try options.callOptions).run
            }
            if wait {
                run = try await options.run { client in
                    let retention = Calltrace_Compliance_V1_RetentionServiceClient(client)
                    return try await waitFor(timeout: .seconds(waitSeconds)) {
                        try await retention.listRetentionRuns(.with { $0.orgID = org }, options: try options.callOptions).runs.first { $0.runID == run.runID } ?? run
                    } done: { $0.state == .finished }
                }
            }
            try options.print(run) { RetentionCommand.describe(run) }
            if wait && run.state != .finished { throw ExitCode(1) }
        }
    }

    struct Runs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "runs", abstract: "Retention receipts, newest first.")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "At most this many (100 at most).") var limit: UInt32 = 20

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_RetentionServiceClient(client).listRetentionRuns(.with { $0.orgID = org; $0.limit = limit },
                                                                                                    options: try options.callOptions)
            }
            try options.print(response) { response.runs.isEmpty ? "no runs" : response.runs.map(RetentionCommand.describe).joined(separator: "\n") }
        }
    }
}

struct DeletionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deletions", abstract: "Delete a call everywhere — record, transcript, analysis, recordings — and follow it (records.delete).",
        subcommands: [DeleteCall.self, Show.self, List.self])

    static func describe(_ d: Calltrace_Compliance_V1_Deletion) -> String {
        "\(d.deletionID)  call \(d.callID)  \(d.state == .done ? "done \(iso(d.finishedAtUnixMs))" : "pending")  by \(d.requestedBy) at \(iso(d.requestedAtUnixMs))\n"
            + "  transcript confirmed: \(iso(d.transcriptConfirmedAtUnixMs))  media confirmed: \(iso(d.mediaConfirmedAtUnixMs))"
            + "  recordings deleted: \(d.recordingsDeleted)"
            + (d.requestID.isEmpty ? "" : "\n  for subject request \(d.requestID)")
            + (d.lastError.isEmpty ? "" : "\n  attempts \(d.attempts), retrying: \(d.lastError)")
    }

    struct DeleteCall: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete-call", abstract: "Delete a call in every service; retried until transcript and media both confirm.")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "The call id.") var call: String
        @Option(help: "Why (kept in the audit trail; one line).") var reason = ""
        @Flag(help: "Wait until both services confirm (exit 1 if they have not within --wait-seconds).") var wait = false
        @Option(name: .customLong("wait-seconds")) var waitSeconds = 60

        func run() async throws {
            var deletion = try await options.run { client in
                try await Calltrace_Compliance_V1_DeletionServiceClient(client).deleteCall(.with {
                    $0.orgID = org; $0.callID = call; $0.reason = reason
                }, options: try options.callOptions).deletion
            }
            if wait {
                deletion = try await options.run { client in
                    let deletions = Calltrace_Compliance_V1_DeletionServiceClient(client)
                    return try await waitFor(timeout: .seconds(waitSeconds)) {
                        try await deletions.getDeletion(.with { $0.orgID = org; $0.deletionID = deletion.deletionID }, options: try options.callOptions).deletion
                    } done: { $0.state == .done }
                }
            }
            try options.print(deletion) { DeletionsCommand.describe(deletion) }
            if wait && deletion.state != .done { throw ExitCode(1) }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Where a deletion stands.")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The deletion id (del_…).") var id: String

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_DeletionServiceClient(client).getDeletion(.with { $0.orgID = org; $0.deletionID = id },
                                                                                             options: try options.callOptions)
            }
            try options.print(response) { DeletionsCommand.describe(response.deletion) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "The organisation's deletions, newest first.")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "At most this many (500 at most).") var limit: UInt32 = 100

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_DeletionServiceClient(client).listDeletions(.with { $0.orgID = org; $0.limit = limit },
                                                                                              options: try options.callOptions)
            }
            try options.print(response) {
                response.deletions.isEmpty ? "no deletions" : response.deletions.map(DeletionsCommand.describe).joined(separator: "\n")
            }
        }
    }
}

struct RequestsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "requests", abstract: "Data-subject requests with the ICO deadline (requests.manage).",
        discussion: """
            open → (pause / resume while waiting for clarification or proof of identity) → identity --result passed →
            locate → bundle (access) / erase (erasure) / object (objection) → close --outcome. `list --overdue` and `list --due-soon 7` show what
            needs doing; `extend` (before the first due date) gives three months from the start.
            """,
        subcommands: [Open.self, Show.self, List.self, Pause.self, Resume.self, Extend.self, Identity.self, Locate.self, BuildBundle.self,
                      Erase.self, Object.self, Close.self])

    static func describe(_ r: Calltrace_Compliance_V1_SubjectRequest) -> String {
        var lines = ["\(r.requestID)  \(dashed(r.kind))  \(dashed(r.state))  due \(r.dueOn)\(r.overdue ? " OVERDUE" : "")"
                     + "\(r.extended ? " (extended: \(r.extensionReason))" : "")",
                     "  numbers: \(r.phoneNumbersMasked.joined(separator: ", "))  received \(r.receivedOn) (\(r.nation))  identity: \(dashed(r.identityCheck))"]
        if r.state == .paused { lines.append("  clock stopped since \(r.pausedSince): \(r.pauseReason)") }
        if r.pausedDays > 0 { lines.append("  days paused: \(r.pausedDays)") }
        if !r.deletionIds.isEmpty {
            lines.append("  erasure: \(r.deletionsDone) of \(r.deletionIds.count) deletions done"
                         + (r.erasureConfirmedAtUnixMs > 0 ? ", confirmed \(iso(r.erasureConfirmedAtUnixMs))" : ""))
        } else if r.erasureConfirmedAtUnixMs > 0 {
            lines.append("  erasure confirmed \(iso(r.erasureConfirmedAtUnixMs)) (no calls found)")
        }
        if r.objectionAppliedAtUnixMs > 0 { lines.append("  objection applied \(iso(r.objectionAppliedAtUnixMs))") }
        if !r.notes.isEmpty { lines.append("  notes: \(r.notes)") }
        if r.state == .closed { lines.append("  closed \(iso(r.closedAtUnixMs)): \(r.outcome)") }
        return lines.joined(separator: "\n")
    }

    /// The options every case command shares: where, who, which organisation and case.
    struct CaseOptions: ParsableArguments {
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The request id (sar_…).") var id: String
    }

    /// Runs `call` on the subject-request client and prints the case it answers.
    static func change(_ options: ComplianceOptions,
                       _ call: (Calltrace_Compliance_V1_SubjectRequestServiceClient, CallOptions) async throws -> Calltrace_Compliance_V1_SubjectRequest)
        async throws {
        let request = try await options.run { client in try await call(.init(client), try options.callOptions) }
        try options.print(request) { describe(request) }
    }

    struct Open: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "open", abstract: "Open a case; prints it with its due date.")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "access, erasure or objection.") var kind: String
        @Option(name: .customLong("number"), help: "The subject's phone number (repeat for more).") var numbers: [String]
        @Option(help: "The day it was received, YYYY-MM-DD.") var received: String
        @Option(help: "england-and-wales, scotland or northern-ireland.") var nation: String
        @Option(help: "Notes (sealed at rest).") var notes = ""

        func run() async throws {
            let kind = try parseEnum(kind, Calltrace_Compliance_V1_SubjectRequestKind.self, option: "--kind")
            try await RequestsCommand.change(options) { client, callOptions in
                try await client.openSubjectRequest(.with {
                    $0.orgID = org; $0.kind = kind; $0.phoneNumbers = numbers; $0.receivedOn = received; $0.nation = nation; $0.notes = notes
                }, options: callOptions).request
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "A case, its due date and progress.")
        @OptionGroup var c: CaseOptions

        func run() async throws {
            try await RequestsCommand.change(c.options) { client, o in
                try await client.getSubjectRequest(.with { $0.orgID = c.org; $0.requestID = c.id }, options: o).request
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Open cases, soonest due first (or --overdue, --due-soon N, --all).")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Flag(help: "Only cases past their due date.") var overdue = false
        @Option(name: .customLong("due-soon"), help: "Only cases due within this many days.") var dueSoon: UInt32?
        @Flag(help: "Closed cases too.") var all = false

        func run() async throws {
            let view: Calltrace_Compliance_V1_SubjectRequestView = overdue ? .overdue : dueSoon != nil ? .dueSoon : all ? .all : .unspecified
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_SubjectRequestServiceClient(client).listSubjectRequests(.with {
                    $0.orgID = org; $0.view = view; $0.dueWithinDays = dueSoon ?? 0
                }, options: try options.callOptions)
            }
            try options.print(response) {
                response.requests.isEmpty ? "no requests" : response.requests.map(RequestsCommand.describe).joined(separator: "\n")
            }
        }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "pause", abstract: "Stop the clock while waiting for clarification or proof of identity.")
        @OptionGroup var c: CaseOptions
        @Option(help: "Why, e.g. \"awaiting proof of identity\".") var reason: String

        func run() async throws {
            try await RequestsCommand.change(c.options) { client, o in
                try await client.pauseSubjectRequest(.with { $0.orgID = c.org; $0.requestID = c.id; $0.reason = reason }, options: o).request
            }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "resume", abstract: "Start the clock again; the days it was stopped are added.")
        @OptionGroup var c: CaseOptions

        func run() async throws {
            try await RequestsCommand.change(c.options) { client, o in
                try await client.resumeSubjectRequest(.with { $0.orgID = c.org; $0.requestID = c.id }, options: o).request
            }
        }
    }

    struct Extend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "extend", abstract: "Extend to three months from the start (complex or numerous requests), before the first due date.")
        @OptionGroup var c: CaseOptions
        @Option(help: "Why.") var reason: String

        func run() async throws {
            try await RequestsCommand.change(c.options) { client, o in
                try await client.extendSubjectRequest(.with { $0.orgID = c.org; $0.requestID = c.id; $0.reason = reason }, options: o).request
            }
        }
    }

    struct Identity: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "identity", abstract: "Record the identity check; passing restarts a stopped clock.")
        @OptionGroup var c: CaseOptions
        @Option(help: "passed, failed or pending.") var result: String

        func run() async throws {
            let result = try parseEnum(result, Calltrace_Compliance_V1_IdentityCheck.self, option: "--result")
            try await RequestsCommand.change(c.options) { client, o in
                try await client.recordIdentityCheck(.with { $0.orgID = c.org; $0.requestID = c.id; $0.result = result }, options: o).request
            }
        }
    }

    struct Locate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "locate", abstract: "The subject's calls and their recordings.")
        @OptionGroup var c: CaseOptions

        func run() async throws {
            let response = try await c.options.run { client in
                try await Calltrace_Compliance_V1_SubjectRequestServiceClient(client).locateSubjectData(.with {
                    $0.orgID = c.org; $0.requestID = c.id
                }, options: try c.options.callOptions)
            }
            try c.options.print(response) {
                response.calls.isEmpty ? "no calls found"
                    : response.calls.map { "\($0.callID)  \(iso($0.startedAtUnixMs))  recording \($0.recordingID.isEmpty ? "-" : $0.recordingID)"
                        + ($0.transcribed ? "  transcribed" : "") }.joined(separator: "\n")
            }
        }
    }

    struct Erase: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "erase", abstract: "Erasure: delete every call found, in every service (identity check passed first).")
        @OptionGroup var c: CaseOptions

        func run() async throws {
            try await RequestsCommand.change(c.options) { client, o in
                try await client.eraseSubjectData(.with { $0.orgID = c.org; $0.requestID = c.id }, options: o).request
            }
        }
    }

    struct Object: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "object", abstract: "Objection: suppress the numbers (never recorded or analysed again); analyses deleted.")
        @OptionGroup var c: CaseOptions

        func run() async throws {
            try await RequestsCommand.change(c.options) { client, o in
                try await client.objectToProcessing(.with { $0.orgID = c.org; $0.requestID = c.id }, options: o).request
            }
        }
    }

    struct Close: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "close", abstract: "Close the case with its outcome.")
        @OptionGroup var c: CaseOptions
        @Option(help: "What was done, e.g. \"bundle sent 2026-12-10\".") var outcome: String

        func run() async throws {
            try await RequestsCommand.change(c.options) { client, o in
                try await client.closeSubjectRequest(.with { $0.orgID = c.org; $0.requestID = c.id; $0.outcome = outcome }, options: o).request
            }
        }
    }
}

extension RequestsCommand {
    struct BuildBundle: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bundle", abstract: "Access: build the subject's bundle (audio, transcripts, metadata, index); fetch it with `calltrace bundles download`.")
        @OptionGroup var c: CaseOptions

        func run() async throws {
            let response = try await c.options.run { client in
                try await Calltrace_Compliance_V1_SubjectRequestServiceClient(client).buildAccessBundle(.with {
                    $0.orgID = c.org; $0.requestID = c.id
                }, options: try c.options.callOptions)
            }
            try c.options.print(response) { BundlesCommand.describe(response.bundle) }
        }
    }
}

struct BundlesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundles", abstract: "Exported bundles (subject access, offboarding export, matter file): state and download.",
        discussion: "A bundle is a tar archive; its last entry, index.json, lists every other entry with its size and SHA-256. It expires 7 days after it is ready.",
        subcommands: [Show.self, Download.self])

    static func describe(_ b: Calltrace_Compliance_V1_Bundle) -> String {
        "\(b.bundleID)  \(dashed(b.kind))  \(dashed(b.state))  of \(b.subject)"
            + (b.state == .ready ? "\n  \(b.sizeBytes) bytes, \(b.entries) entries, sha256 \(b.sha256); expires \(iso(b.expiresAtUnixMs)); downloads \(b.downloads)" : "")
            + (b.failureReason.isEmpty ? "" : "\n  failed: \(b.failureReason)")
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "A bundle's state.")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The bundle id (bun_…).") var id: String

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_BundleServiceClient(client).getBundle(.with { $0.orgID = org; $0.bundleID = id }, options: try options.callOptions)
            }
            try options.print(response) { BundlesCommand.describe(response.bundle) }
        }
    }

    struct Download: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "download", abstract: "Download a ready bundle to a file (0600), checking its SHA-256; a progress bar on a terminal.")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Argument(help: "The bundle id (bun_…).") var id: String
        @Option(help: "File to write (e.g. bundle.tar).") var out: String

        func run() async throws {
            let digest = try SHA256Stream()
            var bundle = Calltrace_Compliance_V1_Bundle()
            let written = try await saveStream(to: out, label: "download") { sink in
                try await options.run { client in
                    try await Calltrace_Compliance_V1_BundleServiceClient(client).downloadBundle(.with { $0.orgID = org; $0.bundleID = id },
                                                                                                   options: try options.callOptions) { stream in
                        for try await piece in stream {
                            if piece.hasBundle { bundle = piece.bundle }
                            digest.update(piece.data)
                            try sink(piece.hasBundle ? Int(piece.bundle.sizeBytes) : nil, piece.data)
                        }
                    }
                }
            }
            guard digest.finish().hexString == bundle.sha256, UInt64(written) == bundle.sizeBytes else {
                try? FileManager.default.removeItem(atPath: out)
                FileHandle.standardError.write(Data("calltrace: the download does not match the bundle's SHA-256; removed \(out)\n".utf8))
                throw ExitCode(1)
            }
            try options.print(bundle) { "wrote \(out): \(written) bytes, sha256 \(bundle.sha256) (checked)" }
        }
    }
}

struct MattersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matters", abstract: "Matter files: one call as a bundle for the firm's case system (matters.export).", subcommands: [Export.self])

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Export a call (audio, transcript, summary, metadata, audit excerpt); --delete-after also deletes it everywhere once exported (records.delete).")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "The call id.") var call: String
        @Option(help: "The firm's matter reference.") var matter: String
        @Flag(name: .customLong("delete-after"), help: "Delete the call everywhere once the bundle is ready.") var deleteAfter = false

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_MatterServiceClient(client).exportMatter(.with {
                    $0.orgID = org; $0.callID = call; $0.matterReference = matter; $0.deleteAfterExport = deleteAfter
                }, options: try options.callOptions)
            }
            try options.print(response) { BundlesCommand.describe(response.bundle) }
        }
    }
}

struct OffboardingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "offboarding", abstract: "Offboard an organisation: export, confirm, purge everywhere, signed deletion certificate (org.offboard).",
        discussion: """
            start → bundles download (the full export) → confirm --confirm-org <org id> → the certificate (show --certificate-out FILE),
            which `calltrace verify-certificate FILE --public-key KEY` checks offline; `signing-key` prints the key to pin.
            """,
        subcommands: [Start.self, Show.self, Confirm.self, SigningKey.self])

    static func describe(_ o: Calltrace_Compliance_V1_Offboarding) -> String {
        "\(o.offboardingID)  \(dashed(o.state))  organisation \(o.orgID)\n  export bundle \(o.exportBundleID)  started by \(o.startedBy) at \(iso(o.startedAtUnixMs))"
            + (o.confirmedAtUnixMs > 0 ? "\n  confirmed by \(o.confirmedBy) at \(iso(o.confirmedAtUnixMs))" : "")
            + (o.completedAtUnixMs > 0 ? "\n  completed \(iso(o.completedAtUnixMs)); certificate issued" : "")
            + (o.lastError.isEmpty ? "" : "\n  retrying: \(o.lastError)")
    }

    static func write(_ o: Calltrace_Compliance_V1_Offboarding, to path: String?) throws {
        guard let path, !o.certificate.isEmpty else { return }
        guard FileManager.default.createFile(atPath: path, contents: Data(o.certificate.utf8), attributes: [.posixPermissions: 0o644]) else {
            throw ValidationError("\(path) cannot be written")
        }
        FileHandle.standardError.write(Data("wrote the deletion certificate to \(path)\n".utf8))
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "start", abstract: "Start offboarding: the full export bundle is built.")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_OffboardingServiceClient(client).startOffboarding(.with { $0.orgID = org }, options: try options.callOptions)
            }
            try options.print(response) { OffboardingCommand.describe(response.offboarding) }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Where offboarding stands (after completion, operators may read it too).")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(name: .customLong("certificate-out"), help: "Write the certificate here when there is one.") var certificateOut: String?

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_OffboardingServiceClient(client).getOffboarding(.with { $0.orgID = org }, options: try options.callOptions)
            }
            try OffboardingCommand.write(response.offboarding, to: certificateOut)
            try options.print(response) { OffboardingCommand.describe(response.offboarding) }
        }
    }

    struct Confirm: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "confirm", abstract: "Confirm: every service purges the organisation and destroys its keys. Not reversible.")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "The offboarding id (off_…).") var id: String
        @Option(name: .customLong("confirm-org"), help: "The organisation id again.") var confirmOrg: String
        @Option(name: .customLong("certificate-out"), help: "Write the certificate here.") var certificateOut: String?

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_OffboardingServiceClient(client).confirmOffboarding(.with {
                    $0.orgID = org; $0.offboardingID = id; $0.confirmOrgID = confirmOrg
                }, options: try options.callOptions)
            }
            try OffboardingCommand.write(response.offboarding, to: certificateOut)
            try options.print(response) { OffboardingCommand.describe(response.offboarding) }
        }
    }

    struct SigningKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "signing-key", abstract: "The compliance service's signing public key (base64; certificates and audit checkpoints), to publish and pin.")
        @OptionGroup var options: ComplianceOptions

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_OffboardingServiceClient(client).getSigningKey(.init(), options: try options.callOptions)
            }
            let stored = try PinnedSigningKey.remember(response.publicKey)
            try options.print(response) { "\(response.publicKey)  (key id \(response.keyID))\n\(stored)" }
        }
    }
}

/// The deployment's signing key (deletion certificates and audit checkpoints) as this machine
/// first saw it (trust on first use): `offboarding signing-key` stores it, `verify-certificate`,
/// `audit checkpoint` and `audit verify --checkpoint` check against it when no `--public-key` is given. A later fetch of a different key is refused, never stored over it.
enum PinnedSigningKey {
    /// `$CALLTRACE_SIGNING_KEY`, else `$XDG_CONFIG_HOME/calltrace/signing-key.pub` (default `~/.config`).
    static var path: String {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["CALLTRACE_SIGNING_KEY"], !path.isEmpty { return path }
        let config = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.config")
        return config + "/calltrace/signing-key.pub"
    }

    static func stored() -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    /// Stores `key` if nothing is stored yet; says where, or throws when another key is stored.
    static func remember(_ key: String) throws -> String {
        if let stored = stored() {
            guard stored == key else {
                throw ValidationError("""
                    the deployment's signing key differs from the one pinned in \(path) on first use: certificates signed by \
                    the new key will not verify. If the operator rotated the key, check the new one with them, then remove \(path) and fetch it again
                    """)
            }
            return "pinned in \(path)"
        }
        let folder = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        guard FileManager.default.createFile(atPath: path, contents: Data((key + "\n").utf8), attributes: [.posixPermissions: 0o644]) else {
            throw ValidationError("cannot write \(path)")
        }
        return "pinned in \(path) (first use): verify-certificate checks against it"
    }

    /// The key to require: `option` (base64, or a file holding it) when given, else the pinned
    /// key; nil when there is neither.
    static func required(_ option: String?) throws -> Data? {
        let given = option.map { FileManager.default.contents(atPath: $0).map { String(decoding: $0, as: UTF8.self) } ?? $0 }
        guard let text = given ?? stored() else { return nil }
        let first = text.split(whereSeparator: { $0 == " " || $0.isNewline }).first.map(String.init) ?? ""
        guard let key = Data(base64Encoded: first), key.count == 32 else {
            throw ValidationError("\(option == nil ? path : "--public-key") does not hold a base64 Ed25519 public key")
        }
        return key
    }

    /// What to print when there is no key to check against.
    static var missing: String {
        "no pinned signing key: give --public-key (from the operator, or `calltrace offboarding signing-key`, which also pins it in \(path))"
    }
}

struct VerifyCertificate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-certificate", abstract: "Check a deletion certificate's Ed25519 signature, offline. Exit 0 valid, 1 not.")
    @Argument(help: "The certificate file.") var file: String
    @Option(name: .customLong("public-key"), help: "The signing key to require: base64, or a file holding it (default: the key `offboarding signing-key` pinned on first use).")
    var publicKey: String?

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("\(file) cannot be read") }
        guard let pinned = try PinnedSigningKey.required(publicKey) else {
            print("INVALID: \(PinnedSigningKey.missing)")
            throw ExitCode(1)
        }
        let verdict = DeletionCertificate.verify(String(decoding: data, as: UTF8.self), pinned: pinned)
        if verdict.valid {
            print("VALID: deletion certificate of organisation \(verdict.organisation); \(verdict.reason)")
        } else {
            print("INVALID: \(verdict.reason)")
            throw ExitCode(1)
        }
    }
}

struct NoticesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notices", abstract: "Recording notices and template wording with the firm's details (settings.manage).",
        discussion: "Kinds: website-recording, callback-greeting, inbound-greeting, privacy-notice-clause, client-care.",
        subcommands: [Show.self, Settings.self, Set.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "A notice's text for the firm (a gateway without a token may fetch the greetings).")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "The kind of notice.") var kind: String

        func run() async throws {
            let kind = try parseEnum(kind, Calltrace_Compliance_V1_NoticeKind.self, option: "--kind")
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_NoticeServiceClient(client).getNotice(.with { $0.orgID = org; $0.kind = kind }, options: try options.callOptions)
            }
            try options.print(response) { response.text.isEmpty ? "(none: the inbound greeting is switched off)" : response.text }
        }
    }

    static func describe(_ s: Calltrace_Compliance_V1_NoticeSettings) -> String {
        "firm: \(s.firmName.isEmpty ? "(not set)" : s.firmName)  phone: \(s.firmPhone.isEmpty ? "(not set)" : s.firmPhone)  inbound greeting: \(s.inboundGreeting ? "on" : "off")"
            + s.overrides.map { "\n  own wording for \(dashed($0.kind)): \($0.text)" }.joined()
    }

    struct Settings: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "settings", abstract: "The firm's notice settings.")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_NoticeServiceClient(client).getNoticeSettings(.with { $0.orgID = org }, options: try options.callOptions)
            }
            try options.print(response) { NoticesCommand.describe(response.settings) }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set", abstract: "Set the firm's name, number, inbound-greeting switch and own wording (replaces all).")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(name: .customLong("firm-name")) var firmName = ""
        @Option(name: .customLong("firm-phone")) var firmPhone = ""
        @Flag(name: .customLong("inbound-greeting"), help: "Announce recording on inbound calls too.") var inboundGreeting = false
        @Option(name: .customLong("own"), help: "kind=text: the firm's wording for a kind ({firm}, {phone}, {retention} filled in); repeatable.")
        var own: [String] = []

        func run() async throws {
            let overrides = try own.map { item -> Calltrace_Compliance_V1_NoticeOverride in
                guard let equals = item.firstIndex(of: "=") else { throw ValidationError("--own must be kind=text") }
                let kind = try parseEnum(String(item[..<equals]), Calltrace_Compliance_V1_NoticeKind.self, option: "--own")
                return .with { $0.kind = kind; $0.text = String(item[item.index(after: equals)...]) }
            }
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_NoticeServiceClient(client).setNoticeSettings(.with {
                    $0.orgID = org
                    $0.settings = .with { $0.firmName = firmName; $0.firmPhone = firmPhone; $0.inboundGreeting = inboundGreeting; $0.overrides = overrides }
                }, options: try options.callOptions)
            }
            try options.print(response) { NoticesCommand.describe(response.settings) }
        }
    }
}

struct RegisterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "register", abstract: "The sub-processor register, a firm's record of processing and its processing agreement.",
        subcommands: [SubProcessors.self, RecordOfProcessing.self, Agreement.self, Accept.self])

    struct SubProcessors: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "sub-processors", abstract: "The sub-processors, their locations and transfer safeguards.")
        @OptionGroup var options: ComplianceOptions

        func run() async throws {
            let r = try await options.run { client in
                try await Calltrace_Compliance_V1_RegisterServiceClient(client).listSubProcessors(.init(), options: try options.callOptions)
            }
            try options.print(r) {
                "register \(r.registerVersion) (\(r.source)); processor \(r.processorName), \(r.processorContact)\n" + r.subProcessors.map {
                    "\($0.name): \($0.purpose)\n  data: \($0.dataCategories.joined(separator: ", "))\n  location: \($0.location); transfers: \($0.transferMechanism); "
                        + "DPA \($0.dpaDate); no training on the data: \($0.trainingOptOut ? "yes" : "no")"
                }.joined(separator: "\n")
            }
        }
    }

    struct RecordOfProcessing: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "record-of-processing", abstract: "The organisation's Article 30(2) record (audit.read).")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_RegisterServiceClient(client).getRecordOfProcessing(.with { $0.orgID = org }, options: try options.callOptions)
            }
            print(options.json ? response.json : response.text)
        }
    }

    struct Agreement: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "agreement", abstract: "The organisation's data processing agreement and whether it is accepted (settings.manage).")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_RegisterServiceClient(client).getProcessingAgreement(.with { $0.orgID = org }, options: try options.callOptions)
            }
            try options.print(response) { RegisterCommand.describe(response.agreement) }
        }
    }

    static func describe(_ a: Calltrace_Compliance_V1_ProcessingAgreement) -> String {
        a.text + "\n" + (a.acceptedBy.isEmpty ? "NOT ACCEPTED: calltrace register accept --template \(a.templateVersion) --register-version \(a.registerVersion)"
            : "accepted by \(a.acceptedBy) at \(iso(a.acceptedAtUnixMs)) (template \(a.acceptedTemplateVersion), register \(a.acceptedRegisterVersion))"
            + (a.needsNotice ? "\nNOTICE OWED: the agreement or the sub-processor list changed since it was accepted" : ""))
    }

    struct Accept: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "accept", abstract: "Accept the agreement as shown by `agreement` (audited).")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "The template version shown.") var template: String
        @Option(name: .customLong("register-version"), help: "The register version shown.") var registerVersion: String

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_RegisterServiceClient(client).acceptProcessingAgreement(.with {
                    $0.orgID = org; $0.templateVersion = template; $0.registerVersion = registerVersion
                }, options: try options.callOptions)
            }
            try options.print(response) { "accepted by \(response.agreement.acceptedBy) at \(iso(response.agreement.acceptedAtUnixMs))" }
        }
    }
}
