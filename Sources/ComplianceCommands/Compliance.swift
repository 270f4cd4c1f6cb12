import ArgumentParser
import CallTraceAPI
import CallTraceCLI
import CallTraceProto
import CallTraceRPC
import ComplianceDocuments
import ComplianceDeadlines
import Foundation

/// The compliance service from the command line: the audit trail, and the deadline engine offline.
typealias ComplianceOptions = ServiceCallOptions<ComplianceTarget>

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "The organisation's audit trail: list, verify, export, signed checkpoints (audit.read).",
        discussion: """
            A checkpoint is compliance's Ed25519 signature (the deployment's key, as for deletion certificates) over where the
            chain stood: its head's index and link. Keep one (`checkpoint --out FILE`) outside CallTrace; `verify --checkpoint FILE`
            checks its signature here against the pinned key, then has compliance hold the chain against it: events removed since,
            even the newest or all of them, are named.
            """,
        subcommands: [List.self, Verify.self, Export.self, Checkpoint.self, Checkpoints.self])

    static func describe(_ c: Calltrace_Compliance_V1_AuditCheckpoint) -> String {
        "\(c.checkpointID)  event \(c.chainIndex)  signed \(iso(c.signedAtUnixMs))  \(dashed(c.reason))  key \(c.keyID)"
    }

    static func describe(_ check: Calltrace_Compliance_V1_AuditCheckpointCheck) -> String {
        let whose = "checkpoint \(check.source == .given ? "given" : "of compliance's") (event \(check.checkpoint.chainIndex), signed \(iso(check.checkpoint.signedAtUnixMs)))"
        switch check.finding {
        case .holds: return "\(whose): holds"
        case .eventsMissing: return "\(whose): EVENTS \(check.fromIndex)–\(check.throughIndex) MISSING: \(check.reason)"
        case .eventsAltered: return "\(whose): EVENTS \(check.fromIndex)–\(check.throughIndex) ALTERED: \(check.reason)"
        default: return "\(whose): NOT AS SIGNED: \(check.reason)"
        }
    }

    /// The checkpoint's signature checked against the key to require (see `PinnedSigningKey.required`).
    static func checkSignature(_ document: String, publicKey: String?) throws -> AuditCheckpointDocument.Verdict? {
        try PinnedSigningKey.required(publicKey).map { AuditCheckpointDocument.verify(document, pinned: $0) }
    }

    static func write(checkpoint document: String, to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(document.utf8), attributes: [.posixPermissions: 0o644]) else {
            throw ValidationError("\(path) cannot be written")
        }
    }

    /// One event on one line; `people` names a user actor (`Name <e-mail> (user:…)`) where the viewer may see them.
    static func describe(_ e: Calltrace_Compliance_V1_ChainedAuditEvent, people: [String: String] = [:]) -> String {
        let actor = people[e.event.actor].map { "\($0) (\(e.event.actor))" } ?? e.event.actor
        return "#\(e.chainIndex)  \(iso(e.event.occurredAtUnixMs))  \(actor)\(e.operatorAccess ? " (operator)" : "")  \(e.event.action)  "
            + "\(e.event.resource)  \(e.event.outcome)\(e.event.detail.isEmpty ? "" : "  \(e.event.detail)")"
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Events, newest first.")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "Only this actor, e.g. operator:ops.") var actor = ""
        @Option(help: ArgumentHelp("Only this action, e.g. recording.played or organisation.purged.",
                                   discussion: "Every service's actions are listed in services/compliance/README.md. Events recorded as organization.… before the trail settled on one spelling are found either way."))
        var action = ""
        @Option(help: "Only this resource, e.g. recording:rec_… or organisation:org_… (either spelling finds both).") var resource = ""
        @Option(help: "From (2026-11-01 or an ISO 8601 time).") var from: String?
        @Option(help: "Before.") var before: String?
        @Flag(help: "Only operators' accesses under support grants.") var operators = false
        @Option(help: "At most this many (500 at most).") var limit: UInt32 = 100
        @Option(help: "The next page, from a previous answer.") var page: String?

        func run() async throws {
            let from = try self.from.map { try unixMs($0, option: "--from") } ?? 0
            let before = try self.before.map { try unixMs($0, option: "--before") } ?? 0
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_AuditServiceClient(client).listAuditEvents(.with {
                    $0.orgID = org; $0.actor = actor; $0.action = action; $0.resource = resource; $0.fromUnixMs = from; $0.beforeUnixMs = before
                    $0.operatorAccessOnly = operators; $0.pageSize = limit; $0.pageToken = page ?? ""
                }, options: try options.callOptions)
            }
            let people = options.json ? [:] : await options.people(org: org)
            try options.print(response) {
                (response.events.isEmpty ? ["no events"] : response.events.map { AuditCommand.describe($0, people: people) }).joined(separator: "\n")
                    + (response.nextPageToken.isEmpty ? "" : "\nmore: --page \(response.nextPageToken)")
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify", abstract: "Walk the chain and hold it against checkpoints; exit 1 naming the first broken link or the events missing.")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "A checkpoint kept from `audit checkpoint`: its signature is checked here against the pinned key, then the chain against it.")
        var checkpoint: String?
        @Option(name: .customLong("public-key"), help: "With --checkpoint, the signing key to require: base64, or a file holding it (default: the key pinned on first use).")
        var publicKey: String?

        func run() async throws {
            var document = ""
            if let checkpoint {
                guard let data = FileManager.default.contents(atPath: checkpoint) else { throw ValidationError("\(checkpoint) cannot be read") }
                document = String(decoding: data, as: UTF8.self)
                // Never on compliance's word alone: a checkpoint the deployment's pinned key did not sign proves nothing.
                guard let verdict = try AuditCommand.checkSignature(document, publicKey: publicKey) else {
                    print("INVALID: \(PinnedSigningKey.missing)")
                    throw ExitCode(1)
                }
                guard verdict.valid else {
                    print("INVALID checkpoint: \(verdict.reason)")
                    throw ExitCode(1)
                }
                guard verdict.organisation == org else {
                    print("INVALID checkpoint: it is organisation \(verdict.organisation)'s, not \(org)'s")
                    throw ExitCode(1)
                }
            }
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_AuditServiceClient(client).verifyAuditChain(.with {
                    $0.orgID = org; $0.checkpointDocument = document
                }, options: try options.callOptions)
            }
            try options.print(response) {
                ([response.intact ? "intact: \(response.eventsChecked) events, head \(response.head)"
                    : "BROKEN at event \(response.firstBrokenIndex) (\(response.eventsChecked) intact before it): \(response.reason)"]
                    + response.checkpointChecks.map(AuditCommand.describe)).joined(separator: "\n")
            }
            if !response.intact { throw ExitCode(1) }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "export", abstract: "Events, oldest first, as JSON lines (to --out, or standard output).")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "From.") var from: String?
        @Option(help: "Before.") var before: String?
        @Option(help: "File to write (created 0600).") var out: String?
        @Option(name: .customLong("checkpoint-out"), help: "Write the signed checkpoint of the head the export runs through here.")
        var checkpointOut: String?

        func run() async throws {
            let from = try self.from.map { try unixMs($0, option: "--from") } ?? 0
            let before = try self.before.map { try unixMs($0, option: "--before") } ?? 0
            let handle: FileHandle
            if let out {
                guard FileManager.default.createFile(atPath: out, contents: nil, attributes: [.posixPermissions: 0o600]),
                      let file = FileHandle(forWritingAtPath: out) else { throw ValidationError("\(out) cannot be written") }
                handle = file
            } else {
                handle = .standardOutput
            }
            var count = 0
            var checkpoint = ""
            try await options.run { client in
                // On a terminal, a progress bar counts events against the chain's length.
                let progress = out == nil || isatty(STDERR_FILENO) != 1 ? nil
                    : ProgressBar(total: Int(try await Calltrace_Compliance_V1_AuditServiceClient(client).verifyAuditChain(.with { $0.orgID = org },
                                                                                                                           options: try options.callOptions)
                            .eventsChecked), label: "export", unit: "events")
                defer { progress?.finish() }
                try await Calltrace_Compliance_V1_AuditServiceClient(client).exportAuditEvents(.with {
                    $0.orgID = org; $0.fromUnixMs = from; $0.beforeUnixMs = before
                }, options: try options.callOptions) { stream in
                    for try await piece in stream {
                        if piece.hasCheckpoint { checkpoint = piece.checkpoint.document }
                        try handle.write(contentsOf: piece.lines)
                        let lines = piece.lines.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
                        count += lines
                        progress?.advance(by: lines)
                    }
                }
            }
            if let out {
                try handle.close()
                FileHandle.standardError.write(Data("exported \(count) events to \(out)\n".utf8))
            }
            if let checkpointOut, !checkpoint.isEmpty {
                try AuditCommand.write(checkpoint: checkpoint, to: checkpointOut)
                FileHandle.standardError.write(Data("wrote the export's checkpoint to \(checkpointOut)\n".utf8))
            }
        }
    }

    struct Checkpoint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "checkpoint", abstract: "Download a signed checkpoint of the chain as it stands, to keep outside CallTrace.",
            discussion: """
                The document goes to --out (or standard output; --json prints the whole answer). Its signature is checked against the
                pinned key first: a checkpoint another key signed is refused (exit 1) and not written.
                """)
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "File to write the checkpoint to.") var out: String?
        @Option(name: .customLong("public-key"), help: "The signing key to require: base64, or a file holding it (default: the key pinned on first use).")
        var publicKey: String?

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_AuditServiceClient(client).getAuditCheckpoint(.with { $0.orgID = org }, options: try options.callOptions)
            }
            let checkpoint = response.checkpoint
            let note: String
            switch try AuditCommand.checkSignature(checkpoint.document, publicKey: publicKey) {
            case nil:
                note = "signature not checked: \(PinnedSigningKey.missing)"
            case let verdict? where !verdict.valid:
                FileHandle.standardError.write(Data("calltrace: INVALID checkpoint, not kept: \(verdict.reason)\n".utf8))
                throw ExitCode(1)
            case let verdict?:
                note = verdict.reason
            }
            if let out {
                try AuditCommand.write(checkpoint: checkpoint.document, to: out)
                try options.print(response) { "\(AuditCommand.describe(checkpoint))\n\(note)\nwrote the checkpoint to \(out)" }
            } else {
                try options.print(response) { checkpoint.document.hasSuffix("\n") ? String(checkpoint.document.dropLast()) : checkpoint.document }
                FileHandle.standardError.write(Data("\(note)\n".utf8))
            }
        }
    }

    struct Checkpoints: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "checkpoints", abstract: "Every checkpoint compliance signed, newest first.")
        @OptionGroup var options: ComplianceOptions
        @Option(help: "Organisation id (default: $CALLTRACE_ORG, or \"org\" in the CLI config file).") var org: String = CLIDefaults.org
        @Option(help: "At most this many (500 at most).") var limit: UInt32 = 100
        @Option(help: "The next page, from a previous answer.") var page: String?

        func run() async throws {
            let response = try await options.run { client in
                try await Calltrace_Compliance_V1_AuditServiceClient(client).listAuditCheckpoints(.with {
                    $0.orgID = org; $0.pageSize = limit; $0.pageToken = page ?? ""
                }, options: try options.callOptions)
            }
            try options.print(response) {
                (response.checkpoints.isEmpty ? ["no checkpoints"] : response.checkpoints.map(AuditCommand.describe)).joined(separator: "\n")
                    + (response.nextPageToken.isEmpty ? "" : "\nmore: --page \(response.nextPageToken)")
            }
        }
    }
}

struct ComplianceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compliance", abstract: "Compliance tools that run offline.", subcommands: [DueDate.self])

    struct DueDate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "due-date",
            abstract: "When a subject request received on a day must be answered (the ICO's rules), as YYYY-MM-DD.",
            discussion: """
                The corresponding date next month (or that month's last day), three months with --extended, plus paused days,
                moved past weekends and the nation's bank holidays: GOV.UK's list for the years it covers (its one-off
                proclamations count), the statutory and customary rules for any other year. The same engine the compliance service uses.
                """)
        @Option(help: "The day the request (or the identity proof or clarification it waited for) arrived, YYYY-MM-DD.") var received: String
        @Option(help: "england-and-wales, scotland or northern-ireland.") var nation: String
        @Flag(help: "Extended by two months (complex or numerous requests).") var extended = false
        @Option(name: .customLong("paused-days"), help: "Days the clock was paused.") var pausedDays = 0
        @Option(help: "A newer bank-holiday file (GOV.UK's bank-holidays.json).") var holidays: String?
        @Flag(name: .shortAndLong, help: "Also say which bank holidays decided it (GOV.UK's list, or the rules for a year it lacks).") var verbose = false

        func run() throws {
            guard let day = Day(received) else { throw ValidationError("--received must be a date, YYYY-MM-DD") }
            guard let nation = Nation(rawValue: nation) else { throw ValidationError("--nation must be england-and-wales, scotland or northern-ireland") }
            let calendar = try holidays.map { try BankHolidays.load(from: $0) } ?? .shipped
            do {
                let due = try DeadlineEngine.due(received: day, nation: nation, extended: extended, pausedDays: pausedDays, holidays: calendar)
                print(due.day)
                if verbose { print("bank holidays from \(due.decidedBy)") }
            } catch let error as DeadlineError {
                FileHandle.standardError.write(Data("calltrace: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
    }
}
