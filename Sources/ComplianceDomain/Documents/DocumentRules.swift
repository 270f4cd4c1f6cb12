import CallTraceAPI
import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import ComplianceDeadlines
import Foundation

/// The sub-processor register (P5): maintained by the operator as a JSON file
/// (`subprocessors_file`), or the list shipped with the trust page. Its version is a digest of
/// its content, so any change to the list changes it — and every agreement accepted under
/// another version then owes the firm notice.
public struct SubProcessorRegister: Codable, Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable {
        public var name: String
        public var purpose: String
        public var dataCategories: [String]
        public var location: String
        public var transferMechanism: String
        public var dpaDate: String
        public var trainingOptOut: Bool
        /// How long it holds what it holds ("until CallTrace fetches the recording, then deleted").
        public var retention: String

        public init(name: String, purpose: String, dataCategories: [String], location: String, transferMechanism: String, dpaDate: String,
                    trainingOptOut: Bool, retention: String = "") {
            (self.name, self.purpose, self.dataCategories, self.location) = (name, purpose, dataCategories, location)
            (self.transferMechanism, self.dpaDate, self.trainingOptOut, self.retention) = (transferMechanism, dpaDate, trainingOptOut, retention)
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(name: try c.decode(String.self, forKey: .name), purpose: try c.decode(String.self, forKey: .purpose),
                      dataCategories: try c.decode([String].self, forKey: .dataCategories), location: try c.decode(String.self, forKey: .location),
                      transferMechanism: try c.decode(String.self, forKey: .transferMechanism), dpaDate: try c.decode(String.self, forKey: .dpaDate),
                      trainingOptOut: try c.decode(Bool.self, forKey: .trainingOptOut),
                      retention: try c.decodeIfPresent(String.self, forKey: .retention) ?? "")
        }

        enum CodingKeys: String, CodingKey {
            case name, purpose, location, retention
            case dataCategories = "data_categories", transferMechanism = "transfer_mechanism", dpaDate = "dpa_date", trainingOptOut = "training_opt_out"
        }
    }

    public var processorName: String
    public var processorContact: String
    /// The operator's hosting provider, where the services run and every store lives (recordings,
    /// transcripts, summaries, call records): named by the operator in `subprocessors_file`.
    public var hosting: Entry?
    public var subProcessors: [Entry]

    enum CodingKeys: String, CodingKey {
        case processorName = "processor_name", processorContact = "processor_contact", hosting, subProcessors = "sub_processors"
    }

    public init(processorName: String, processorContact: String, hosting: Entry? = nil, subProcessors: [Entry]) {
        (self.processorName, self.processorContact, self.hosting, self.subProcessors) = (processorName, processorContact, hosting, subProcessors)
    }

    /// Where it came from: "subprocessors_file" (the operator's) or "shipped". Never a path on
    /// the server: the firm reads this.
    public internal(set) var source = "shipped"

    /// Everyone who processes the firm's data for CallTrace, the hosting provider first (or, until
    /// the operator names it, a line saying it is not named).
    public var everyone: [Entry] { [hosting ?? Self.unnamedHosting] + subProcessors }

    static let unnamedHosting = Entry(
        name: "Hosting provider (not named by the operator: set hosting in subprocessors_file)",
        purpose: "The servers CallTrace's services run on: every recording, transcript, AI summary and call record is stored there, "
            + "encrypted at rest with per-organisation keys",
        dataCategories: ["call audio", "transcripts", "AI summaries", "call metadata", "caller phone numbers (sealed)", "users' names and e-mail addresses (sealed)"],
        location: "not stated", transferMechanism: "not stated", dpaDate: "", trainingOptOut: true,
        retention: "as the firm's retention policy sets; deleted on request and on offboarding")

    public var version: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let digest = try! SHA256Stream()
        digest.update((try? encoder.encode(self)) ?? Data())
        return String(digest.finish().hexString.prefix(16))
    }

    /// Reads and checks the operator's file; the error names what is wrong.
    public static func load(from path: String) throws -> SubProcessorRegister {
        guard let data = FileManager.default.contents(atPath: path) else { throw ConfigurationError("subprocessors_file \(path) cannot be read") }
        var register: SubProcessorRegister
        do { register = try JSONDecoder().decode(SubProcessorRegister.self, from: data) } catch {
            throw ConfigurationError("subprocessors_file \(path) is not a sub-processor register (processor_name, processor_contact, sub_processors: "
                                     + "name, purpose, data_categories, location, transfer_mechanism, dpa_date, training_opt_out): \(error)")
        }
        guard !register.processorName.isEmpty, !register.subProcessors.isEmpty,
              (register.subProcessors + (register.hosting.map { [$0] } ?? [])).allSatisfy({
                  !$0.name.isEmpty && !$0.transferMechanism.isEmpty && ($0.dpaDate.isEmpty || Day($0.dpaDate) != nil)
              })
        else {
            throw ConfigurationError("subprocessors_file \(path) needs a processor_name and sub-processors (and hosting, when given) each with a name, "
                                     + "a transfer_mechanism and a dpa_date (YYYY-MM-DD)")
        }
        register.source = "subprocessors_file"
        return register
    }

    /// The trust page's list, as this system uses each sub-processor. Operators keep their own
    /// file (`subprocessors_file`) current and name their hosting provider in it: the DPA dates
    /// below are the ones the shipped agreements were signed on.
    public static let shipped = SubProcessorRegister(processorName: "CallTrace", processorContact: "privacy@calltrace.example", subProcessors: [
        Entry(name: "Twilio", purpose: "Telephony: carries calls to the firm's tracking numbers and the calls it returns, and plays the recording "
                  + "notices; it holds each call's recording only until CallTrace has fetched it into its own encrypted store, then deletes it",
              dataCategories: ["caller and called phone numbers", "call audio (in transit; the recording until fetched)", "call times"],
              location: "United States", transferMechanism: "UK IDTA", dpaDate: "2025-01-15", trainingOptOut: true,
              retention: "the recording until fetched and deleted (minutes); call logs as Twilio's terms keep them"),
        Entry(name: "Deepgram", purpose: "Speech-to-text transcription of call audio, when the firm turns transcription on",
              dataCategories: ["call audio", "transcripts"], location: "United States", transferMechanism: "EU SCCs with the UK Addendum",
              dpaDate: "2025-02-03", trainingOptOut: true, retention: "only while it answers the request; not used to train its models"),
        Entry(name: "Anthropic", purpose: "AI analysis: call summaries and classification", dataCategories: ["transcripts (card and bank details removed)"],
              location: "United States", transferMechanism: "EU SCCs with the UK Addendum", dpaDate: "2025-02-03", trainingOptOut: true,
              retention: "not used for training; deleted within 30 days under its commercial terms"),
        Entry(name: "Stripe", purpose: "Billing the firm: payment cards are handled entirely by Stripe", dataCategories: ["the firm's billing contact and payment details"],
              location: "United States", transferMechanism: "UK IDTA", dpaDate: "2025-01-15", trainingOptOut: true,
              retention: "as long as payment records must be kept"),
    ])
}

/// A firm's notice settings: its name and number, the inbound-greeting switch, its own wording.
struct NoticeSettingsRow: Sendable, Codable {
    var firmName = ""
    var firmPhone = ""
    var inboundGreeting = false
    /// Notice kind (raw value) → the firm's wording.
    var overrides: [Int: String] = [:]
    var updatedAt: Int64 = 0
    var updatedBy = ""
}

/// The notice settings a firm asks for, as given (`DocumentRules.setSettings` checks them).
struct NoticeSettingsChange: Sendable {
    var firmName = ""
    var firmPhone = ""
    var inboundGreeting = false
    /// The firm's own wording, in the order given.
    var overrides: [(kind: DocumentRules.Kind, text: String)] = []
}

/// The agreement an organisation accepted, and when.
struct AgreementAcceptance: Sendable {
    let templateVersion: String
    let registerVersion: String
    let acceptedBy: String
    let acceptedAt: Int64
}

/// Notices (P3), the record of processing and the processing agreement (P12), rendered from
/// versioned templates with the firm's details, the register and the retention policy.
struct DocumentRules: Sendable {
    typealias Kind = Calltrace_Compliance_V1_NoticeKind
    static let noticeTemplates = "notices-2026-11"
    static let agreementTemplate = "dpa-2026-12"

    let repository: any ComplianceRepository
    let register: SubProcessorRegister
    let retention: RetentionRules
    /// Transcript, asked whether the firm's calls are transcribed.
    let services: any CallDataServices
    let outbox: AuditOutbox
    let clock: any WallClock

    // MARK: Notices

    func settings(org: String) async throws -> NoticeSettingsRow {
        try OrganizationID.validate(org)
        return try await repository.read { tx in try tx.noticeSettings(org: org) } ?? NoticeSettingsRow()
    }

    func setSettings(_ requested: NoticeSettingsChange, org: String, by actor: String) async throws -> NoticeSettingsRow {
        try OrganizationID.validate(org)
        var row = NoticeSettingsRow(firmName: try DomainText.line(requested.firmName, "firm_name", max: 200),
                                    firmPhone: try DomainText.line(requested.firmPhone, "firm_phone", max: 40), inboundGreeting: requested.inboundGreeting,
                                    updatedAt: clock.nowUnixMs, updatedBy: actor)
        for override in requested.overrides {
            guard Kind.allCases.contains(override.kind), override.kind != .unspecified else { throw DomainError.invalid("an override names no notice kind") }
            let text = try DomainText.paragraph(override.text, "override text", max: 2000)
            if !text.isEmpty { row.overrides[override.kind.rawValue] = text }
        }
        try await repository.write { [outbox, row] tx in
            try tx.put(row, org: org)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .noticesSettingsChanged, resource: .organisation(org), outcome: .success,
                                          detail: "inbound_greeting=\(row.inboundGreeting); own wording for \(row.overrides.count) kinds"), in: tx.connection)
        }
        return row
    }

    /// What a call starting now may do (P5, P3): record only once the organisation has accepted
    /// the current processing agreement (the register may have changed since: that owes the
    /// firm notice, it does not stop its calls), and the notice for `kind`, claiming
    /// transcription only when it is on.
    func callNotice(_ kind: Kind, org: String, transcribed: Bool) async throws -> (mayRecord: Bool, reason: String, text: String, version: String) {
        try OrganizationID.validate(org)
        guard kind == .inboundGreeting || kind == .callbackGreeting else {
            throw DomainError.invalid("a call's notice is INBOUND_GREETING or CALLBACK_GREETING")
        }
        let accepted = try await repository.read { tx in try tx.acceptance(org: org) }
        guard accepted?.templateVersion == Self.agreementTemplate else {
            let reason = accepted == nil
                ? "the organisation has not accepted the processing agreement: nothing is recorded until an admin accepts it"
                : "the organisation accepted processing agreement \(accepted!.templateVersion), not the current \(Self.agreementTemplate): nothing is recorded until an admin accepts it"
            return (false, reason, "", Self.noticeTemplates)
        }
        let notice = try await self.notice(kind, org: org, transcribed: transcribed)
        return (true, "", notice.text, notice.version)
    }

    /// The notice's text for the firm; INBOUND_GREETING is empty unless switched on.
    /// `transcribed`: whether the shipped wording may say calls are transcribed (the firm's own
    /// wording is the firm's); nil asks transcript.
    func notice(_ kind: Kind, org: String, transcribed known: Bool? = nil) async throws -> (text: String, version: String) {
        let settings = try await self.settings(org: org)
        if kind == .inboundGreeting && !settings.inboundGreeting { return ("", Self.noticeTemplates) }
        let policy = try await retention.policy(org: org)
        let transcribed: Bool
        if let known { transcribed = known } else {
            do { transcribed = try await services.transcriptionEnabled(org: org) } catch {
                throw DomainError.unavailable("transcript cannot say now whether this firm's calls are transcribed, so the notice cannot say it either: try again")
            }
        }
        let template: String
        let version: String
        if let own = settings.overrides[kind.rawValue] {
            (template, version) = (own, "firm")
        } else {
            guard let shipped = (transcribed ? Self.templates[kind] : Self.untranscribedTemplates[kind] ?? Self.templates[kind]) else {
                throw DomainError.invalid("name a notice kind")
            }
            (template, version) = (shipped, Self.noticeTemplates)
        }
        return (Self.fill(template, settings, retention: Self.describe(policy, transcribed: transcribed)), version)
    }

    static func fill(_ template: String, _ settings: NoticeSettingsRow, retention: String) -> String {
        template.replacingOccurrences(of: "{firm}", with: settings.firmName.isEmpty ? "this firm" : settings.firmName)
            .replacingOccurrences(of: "{phone}", with: settings.firmPhone.isEmpty ? "the number on our website" : settings.firmPhone)
            .replacingOccurrences(of: "{retention}", with: retention)
    }

    /// The retention sentence; without transcription it names no transcripts or summaries.
    static func describe(_ policy: RetentionPolicyRow, transcribed: Bool = true) -> String {
        func months(_ n: Int) -> String { n == 0 ? "while our account with CallTrace is active" : "for \(n) months" }
        guard transcribed else {
            return "recordings are kept \(months(policy.recordingsMonths)), and call records \(months(policy.callRecordsMonths))"
        }
        return "recordings are kept \(months(policy.recordingsMonths)), transcripts and summaries \(months(policy.transcriptsMonths)), "
            + "and call records \(months(policy.callRecordsMonths))"
    }

    /// The call greetings for a firm whose transcription is off: they never claim it.
    static let untranscribedTemplates: [Kind: String] = [
        .websiteAttribution: """
            Call tracking (analytics and advertising cookies). If you agree, our website shows you a phone number of your \
            own while you visit, and keeps a random identifier in your browser, so that when you call us we know which page, \
            search or advert brought you, and can tell Google Ads which of its adverts led to an enquiry. The number and the \
            page you landed on, the site that sent you and the advert's click identifier are kept by our call-tracking \
            provider, CallTrace, for us, and deleted with our call records: {retention}. If you do not agree, nothing is \
            stored on your device and you see our usual number. You can withdraw your consent in our cookie settings at any \
            time, or contact {firm} on {phone}.
            """,
        .inboundGreeting: "Thank you for calling {firm}. Calls are recorded to help us deal with your enquiry.",
        .websiteRecording: """
            Calls to {firm} are recorded. We use recordings to deal with your enquiry, to look after the quality of our \
            service and to understand how people find us. They are stored encrypted, heard only by our staff, and {retention}. \
            Our privacy notice explains your rights, including to a copy of your call or to its deletion; or call us on {phone}.
            """,
        .privacyNoticeClause: """
            Call recording. When you call us, or we return your call, the call is recorded, so that we can deal with your \
            enquiry and understand which of our advertising works. Our lawful basis is our legitimate interests. Our \
            call-tracking provider, CallTrace, processes the recordings for us under a data processing agreement; it connects \
            calls through its telephony provider, which processes data in the United States under the UK International Data \
            Transfer Agreement. In our call records, {retention}. You may ask for a copy of your recordings, ask us to delete \
            them, or object to our recording your calls, by contacting {firm} on {phone}.
            """,
        .clientCare: """
            Telephone calls. Calls to and from our enquiry lines are recorded, to help us deal with enquiries and to keep a \
            record of what was said. If your enquiry becomes a matter, the recording may be kept on your matter file; \
            otherwise {retention}. Please tell us if you would rather your calls were not recorded.
            """,
    ]

    static let templates: [Kind: String] = [
        .websiteAttribution: """
            Call tracking (analytics and advertising cookies). If you agree, our website shows you a phone number of your \
            own while you visit, and keeps a random identifier in your browser, so that when you call us we know which page, \
            search or advert brought you, and can tell Google Ads which of its adverts led to an enquiry. The number and the \
            page you landed on, the site that sent you and the advert's click identifier are kept by our call-tracking \
            provider, CallTrace, for us, and deleted with our call records: {retention}. If you do not agree, nothing is \
            stored on your device and you see our usual number. You can withdraw your consent in our cookie settings at any \
            time, or contact {firm} on {phone}.
            """,
        .websiteRecording: """
            Calls to {firm} are recorded and transcribed. We use recordings and transcripts to deal with your enquiry, to look \
            after the quality of our service and to understand how people find us. They are stored encrypted, seen only by \
            our staff, and {retention}. Our privacy notice explains your rights, including to a copy of your call or to its \
            deletion; or call us on {phone}.
            """,
        .callbackGreeting: "This is {firm} returning your call. This call is recorded.",
        .inboundGreeting: "Thank you for calling {firm}. Calls are recorded and transcribed to help us deal with your enquiry.",
        .privacyNoticeClause: """
            Call recording. When you call us, or we return your call, the call is recorded and transcribed, and a summary is \
            made, so that we can deal with your enquiry and understand which of our advertising works. Our lawful basis is \
            our legitimate interests. Our call-tracking provider, CallTrace, processes the recordings for us under a data \
            processing agreement; transcription and summaries are made by its sub-processors, which do not use them to train \
            their models, and some process data in the United States under the UK International Data Transfer Agreement or \
            standard contractual clauses with the UK Addendum. In our call records, {retention}. You may ask for a copy of \
            your recordings, ask us to delete them, or object to our recording your calls, by contacting {firm} on {phone}.
            """,
        .clientCare: """
            Telephone calls. Calls to and from our enquiry lines are recorded and transcribed, to help us deal with enquiries \
            and to keep a record of what was said. If your enquiry becomes a matter, the recording may be kept on your matter \
            file; otherwise {retention}. Please tell us if you would rather your calls were not recorded.
            """,
    ]

    // MARK: Record of processing (Article 30(2))

    func recordOfProcessing(org: String) async throws -> (json: String, text: String) {
        let settings = try await self.settings(org: org)
        let policy = try await retention.policy(org: org)
        let transfers = register.everyone.filter { !$0.location.contains("United Kingdom") && $0.location != "not stated" }
        let document: [String: Any] = [
            "record": "Article 30(2) UK GDPR — record of processing activities carried out on behalf of a controller",
            "processor": ["name": register.processorName, "contact": register.processorContact],
            "controller": ["organisation_id": org, "name": settings.firmName],
            "categories_of_processing": Self.processing,
            "categories_of_data_subjects": ["callers to the firm's tracking numbers and the people the firm calls back", "the firm's staff who use CallTrace",
                                            "visitors to the firm's websites who consent to call tracking"],
            "categories_of_personal_data": ["phone numbers", "call audio", "transcripts", "AI summaries and classifications", "call times and outcomes",
                                            "website visits: pseudonymous visitor identifiers (kept only as a keyed hash), landing pages, referrers, campaign parameters, ad click identifiers (encrypted)"],
            "sub_processors": register.everyone.map {
                ["name": $0.name, "purpose": $0.purpose, "location": $0.location, "data": $0.dataCategories, "retention": $0.retention]
            },
            "storage": Self.storage(register),
            "transfers": transfers.map { ["recipient": $0.name, "country": $0.location, "safeguard": $0.transferMechanism] },
            "security_measures": Self.security,
            "retention": ["recordings_months": policy.recordingsMonths, "transcripts_months": policy.transcriptsMonths,
                          "call_records_months": policy.callRecordsMonths, "note": "0: kept while the account is active, deleted on offboarding"],
            "register_version": register.version, "generated_at": iso(clock.nowUnixMs),
        ]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self)
        var text = """
            RECORD OF PROCESSING ACTIVITIES (Article 30(2) UK GDPR)
            Processor: \(register.processorName), \(register.processorContact)
            Controller: \(settings.firmName.isEmpty ? "(firm name not set)" : settings.firmName) (organisation \(org))

            Categories of processing carried out on behalf of the controller:
            \(Self.processing.map { "- \($0)" }.joined(separator: "\n"))

            Transfers to third countries and their safeguards:
            \(transfers.map { "- \($0.name), \($0.location): \($0.transferMechanism)" }.joined(separator: "\n"))

            Security measures:
            \(Self.security.map { "- \($0)" }.joined(separator: "\n"))

            Retention: \(Self.describe(policy)).

            """
        text += "Where the data is stored: \(Self.storage(register))\n\n"
        text += "Sub-processors (register \(register.version)):\n"
            + register.everyone.map { "- \($0.name): \($0.purpose) (\($0.location); holds \($0.dataCategories.joined(separator: ", "))"
                + ($0.retention.isEmpty ? "" : "; for \($0.retention)") + ")" }.joined(separator: "\n") + "\n"
        return (json, text)
    }

    /// Where the firm's data lives, in one sentence, for the record and the agreement.
    static func storage(_ register: SubProcessorRegister) -> String {
        let host = register.hosting.map { "hosts provided by \($0.name) (\($0.location))" } ?? "hosts of a provider the operator has not yet named"
        return "recordings, transcripts, AI summaries and call records are stored only in CallTrace's own services, encrypted at rest "
            + "with per-organisation keys, on \(host); the sub-processors listed receive only what each entry says, for as long as it says."
    }

    static let processing = [
        "recording calls to and from the controller's tracking numbers",
        "transcribing recordings, with card and bank details removed from text and muted in audio",
        "AI summaries and classification of transcripts",
        "attributing calls to marketing sources and reporting",
        "website attribution, only for visitors who consent: a tracking number shown per visit, the visit's landing page, referrer, campaign parameters and ad click identifiers, joined to the call that followed; conversions exported to the controller's ad account on its instructions",
        "e-mail alerts to the controller's staff who choose them (a missed call, a new enquiry with its AI summary, subject requests falling due, a weekly summary), each only to staff whose role may already see it, never with a caller's number",
        "storing, exporting and deleting the above on the controller's instructions",
    ]

    static let security = [
        "mutually authenticated TLS between every component; no plaintext port",
        "encryption at rest: AES-256-GCM under per-organisation keys wrapped by per-service master keys",
        "phone numbers sealed, searchable only through a keyed blind index",
        "per-organisation, role-based access; operator access only under a time-limited grant, visible to the firm",
        "signed, expiring share links",
        "a tamper-evident audit trail per organisation",
        "retention enforced daily; deletion on request across every service; key destruction on offboarding",
    ]

    // MARK: The processing agreement (Article 28)

    func agreement(org: String) async throws -> (text: String, accepted: AgreementAcceptance?) {
        let settings = try await self.settings(org: org)
        let policy = try await retention.policy(org: org)
        let accepted = try await repository.read { tx in try tx.acceptance(org: org) }
        return (Self.agreementText(org: org, settings: settings, policy: policy, register: register), accepted)
    }

    func accept(org: String, template: String, register version: String, by actor: String) async throws -> AgreementAcceptance {
        try OrganizationID.validate(org)
        guard template == Self.agreementTemplate, version == register.version else {
            throw DomainError.wrongState("the agreement changed: the current one is template \(Self.agreementTemplate), register \(register.version); read it again")
        }
        let acceptance = AgreementAcceptance(templateVersion: template, registerVersion: version, acceptedBy: actor, acceptedAt: clock.nowUnixMs)
        try await repository.write { [outbox] tx in
            try tx.insert(acceptance, org: org)
            try outbox.record(AuditRecord(org: org, actor: actor, action: .agreementAccepted, resource: .organisation(org), outcome: .success,
                                          detail: "template \(template); sub-processor register \(version)"), in: tx.connection)
        }
        return acceptance
    }

    static func agreementText(org: String, settings: NoticeSettingsRow, policy: RetentionPolicyRow, register: SubProcessorRegister) -> String {
        let controller = settings.firmName.isEmpty ? "the Controller (organisation \(org))" : "\(settings.firmName) (organisation \(org))"
        return """
            DATA PROCESSING AGREEMENT (template \(agreementTemplate); sub-processor register \(register.version))

            Between \(controller), the Controller, and \(register.processorName) (\(register.processorContact)), the Processor.

            1. Subject matter and duration. The Processor records, transcribes, analyses and stores calls to and from the
               Controller's tracking numbers, for as long as the Controller's account is active and until its data is deleted
               on offboarding. Nothing is recorded until the Controller has accepted this agreement.
            2. Nature and purpose. \(DocumentRules.processing.joined(separator: "; ")). Transcription is off until the
               Controller turns it on. Card and bank details spoken in a call are found only in calls that are transcribed:
               there they are removed from the transcript and muted in the recording. While transcription is off they cannot
               be found, and they stay in the recordings.
            3. Personal data and data subjects. Phone numbers, call audio, transcripts, AI summaries and call metadata of
               callers to the Controller and of people it calls back; the Controller's users' names and e-mail addresses.
            4. The Processor's obligations (Article 28(3) UK GDPR). The Processor:
               (a) processes the personal data only on the Controller's documented instructions, including as to transfers;
               (b) ensures that persons authorised to process it are bound by confidentiality;
               (c) takes the measures required by Article 32 (listed in clause 6);
               (d) engages sub-processors only as set out in clause 5, under written terms giving the same protection;
               (e) assists the Controller in responding to data subjects' requests (access, erasure, objection), within the
                   statutory timescale;
               (f) assists the Controller with security, breach notification, impact assessments and prior consultation;
               (g) at the Controller's choice deletes or returns all personal data at the end of the services (offboarding:
                   an export, then deletion with a signed certificate);
               (h) makes available all information necessary to demonstrate compliance, and allows for audits.
            5. Sub-processors. The Controller authorises the sub-processors below. The Processor gives notice of any change to
               this list; the Controller may object.
            \(register.everyone.map { "   - \($0.name): \($0.purpose). Data: \($0.dataCategories.joined(separator: ", ")). Held: \($0.retention.isEmpty ? "(not stated)" : $0.retention). Location: \($0.location). Transfer safeguard: \($0.transferMechanism). DPA of \($0.dpaDate.isEmpty ? "(date not recorded)" : $0.dpaDate). Does not train on the data: \($0.trainingOptOut ? "yes" : "no")." }.joined(separator: "\n"))
               Storage: \(DocumentRules.storage(register))
            6. Security measures.
            \(DocumentRules.security.map { "   - \($0)" }.joined(separator: "\n"))
            7. Retention. Under the Controller's settings \(describe(policy)).
            8. International transfers are made only with the safeguards listed in clause 5 (Articles 44–49 UK GDPR).

            """
    }
}
