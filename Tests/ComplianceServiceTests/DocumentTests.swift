import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import ComplianceDomain
import IdentityDomain
import Foundation
import Testing

typealias Notices = Calltrace_Compliance_V1_NoticeServiceClient
typealias Registers = Calltrace_Compliance_V1_RegisterServiceClient

@Suite("Compliance: notices, the sub-processor register, records of processing, processing agreements (P3, P5, P12)", .serialized)
struct DocumentTests {
    @Test("Notices carry the firm's name, number and retention; the gateway fetches its greetings as itself; the inbound greeting only when switched on; the firm's own wording wins")
    func notices() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let gateway = Notices(try deployment.compliance.client(identity: TemporaryPKI.identity("gateway", "telephony")))
        let web = Notices(try deployment.compliance.client())

        #expect(try await gateway.getNotice(.with { $0.orgID = org; $0.kind = .callbackGreeting }).text == "This is this firm returning your call. This call is recorded.")
        #expect(try await gateway.getNotice(.with { $0.orgID = org; $0.kind = .inboundGreeting }).text.isEmpty, "off until the firm switches it on")
        #expect(await code { _ = try await gateway.getNotice(.with { $0.orgID = org; $0.kind = .websiteRecording }) } == .unauthenticated,
                "other notices are for the firm's staff")
        _ = try await deployment.retention().setRetentionPolicy(.with {
            $0.orgID = org; $0.policy = .with { $0.recordingsMonths = 12; $0.transcriptsMonths = 12; $0.callRecordsMonths = 24 }
        }, options: try bearer(admin))
        let set = try await web.setNoticeSettings(.with {
            $0.orgID = org
            $0.settings = .with {
                $0.firmName = "Smith & Co Solicitors"; $0.firmPhone = "0118 230 4651"; $0.inboundGreeting = true
                $0.overrides = [.with { $0.kind = .clientCare; $0.text = "Our calls are recorded ({firm}, {phone})." }]
            }
        }, options: try bearer(admin)).settings
        #expect(set.updatedBy.hasPrefix("user:") && set.overrides.count == 1)

        #expect(try await gateway.getNotice(.with { $0.orgID = org; $0.kind = .callbackGreeting }).text
                == "This is Smith & Co Solicitors returning your call. This call is recorded.")
        #expect(try await gateway.getNotice(.with { $0.orgID = org; $0.kind = .inboundGreeting }).text.contains("Thank you for calling Smith & Co Solicitors"))
        let privacy = try await web.getNotice(.with { $0.orgID = org; $0.kind = .privacyNoticeClause }, options: try bearer(admin))
        #expect(privacy.text.contains("recordings are kept for 12 months") && privacy.text.contains("0118 230 4651") && privacy.templateVersion.hasPrefix("notices-"))
        let own = try await web.getNotice(.with { $0.orgID = org; $0.kind = .clientCare }, options: try bearer(admin))
        #expect(own.text == "Our calls are recorded (Smith & Co Solicitors, 0118 230 4651)." && own.templateVersion == "firm")
        #expect(await code {
            _ = try await web.setNoticeSettings(.with { $0.orgID = org; $0.settings = .with { $0.firmName = String(repeating: "x", count: 201) } },
                                                options: try bearer(admin))
        } == .invalidArgument)
        let member = try await deployment.user(.member, in: org, admin: admin)
        #expect(await code { _ = try await web.getNoticeSettings(.with { $0.orgID = org }, options: try bearer(member)) } == .permissionDenied)
        // Transcript alone asks, as a call starts, whether the firm may record and what it plays.
        for peer in [CallDataDeployment.web, TemporaryPKI.telephony, TemporaryPKI.identity("operator", "ops"), TemporaryPKI.identity("service", "media")] {
            #expect(await code {
                _ = try await Notices(try deployment.compliance.client(identity: peer)).getCallNotice(.with { $0.orgID = org; $0.kind = .inboundGreeting },
                                                                                                  options: try bearer(admin))
            } == .permissionDenied, "GetCallNotice from \(peer)")
        }
        let asked = try await Notices(try deployment.compliance.client(identity: TemporaryPKI.identity("service", "transcript")))
            .getCallNotice(.with { $0.orgID = org; $0.kind = .inboundGreeting; $0.transcribed = true })
        #expect(asked.mayRecord && asked.text.contains("Thank you for calling Smith & Co Solicitors"), "\(asked)")
    }

    @Test("With transcription off, nothing the firm is given claims it: notices, the greeting a call plays, and the settings and agreement say card details then stay in the recordings (issues 27.3, 27.14)")
    func transcriptionOff() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")  // transcribed by hand
        let web = Notices(try deployment.compliance.client())
        let transcripts = Calltrace_Transcript_V1_TranscriptServiceClient(try deployment.transcript.client())
        _ = try await web.setNoticeSettings(.with { $0.orgID = org; $0.settings = .with { $0.firmName = "Smith & Co"; $0.inboundGreeting = true } },
                                            options: try bearer(admin))
        let on = try await transcripts.getTranscriptionSettings(.with { $0.orgID = org }, options: try bearer(admin)).settings
        #expect(on.enabled && on.cardDetails.contains("muted in the recording"), "\(on.cardDetails)")
        for kind: Calltrace_Compliance_V1_NoticeKind in [.websiteRecording, .privacyNoticeClause, .clientCare, .inboundGreeting] {
            #expect(try await web.getNotice(.with { $0.orgID = org; $0.kind = kind }, options: try bearer(admin)).text.contains("transcribed"), "\(kind)")
        }

        var off = on
        off.enabled = false
        let set = try await transcripts.setTranscriptionSettings(.with { $0.orgID = org; $0.settings = off }, options: try bearer(admin)).settings
        #expect(set.cardDetails.contains("cannot be found") && set.cardDetails.contains("stay in the recordings"), "\(set.cardDetails)")
        for kind: Calltrace_Compliance_V1_NoticeKind in [.websiteRecording, .privacyNoticeClause, .clientCare, .inboundGreeting, .callbackGreeting,
                                                         .websiteAttribution] {
            let text = try await web.getNotice(.with { $0.orgID = org; $0.kind = kind }, options: try bearer(admin)).text
            #expect(!text.isEmpty && !text.contains("transcri"), "\(kind): \(text)")
        }
        let cookies = try await web.getNotice(.with { $0.orgID = org; $0.kind = .websiteAttribution }, options: try bearer(admin)).text
        #expect(cookies.contains("If you agree") && cookies.contains("If you do not agree, nothing is stored on your device") && cookies.contains("Smith & Co"),
                "the website tag's consent wording (issue 32): \(cookies)")
        let record = try await Registers(try deployment.compliance.client()).getRecordOfProcessing(.with { $0.orgID = org }, options: try bearer(admin))
        #expect(record.text.contains("website attribution, only for visitors who consent"), "the record of processing names the processing")
        let started = try await deployment.calls(as: TemporaryPKI.telephony).startCall(.with {
            $0.callID = "untranscribed"; $0.trackingNumber = "01184960000"; $0.callerNumber = "07700900123"; $0.direction = .inbound
        })
        #expect(started.record && started.notice == "Thank you for calling Smith & Co. Calls are recorded to help us deal with your enquiry.", "\(started.notice)")
        let agreement = try await Registers(try deployment.compliance.client()).getProcessingAgreement(.with { $0.orgID = org }, options: try bearer(admin))
        let words = agreement.agreement.text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(words.contains("While transcription is off they cannot be found, and they stay in the recordings"), "\(words)")
    }

    @Test("The register lists the trust page's sub-processors; the record of processing and the agreement are built from it, the firm and its retention; accepting is recorded, and a changed register owes notice")
    func registerRecordAndAgreement() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000", acceptingAgreement: false)
        _ = try await Notices(try deployment.compliance.client()).setNoticeSettings(.with {
            $0.orgID = org; $0.settings = .with { $0.firmName = "Smith & Co Solicitors" }
        }, options: try bearer(admin))
        let registers = Registers(try deployment.compliance.client())

        let register = try await Registers(try deployment.compliance.client(identity: TemporaryPKI.identity("service", "media"))).listSubProcessors(.init())
        #expect(register.subProcessors.map(\.name) == ["Hosting provider (not named by the operator: set hosting in subprocessors_file)",
                                                         "Twilio", "Deepgram", "Anthropic", "Stripe"] && register.source == "shipped")
        #expect(register.subProcessors.dropFirst().allSatisfy { $0.trainingOptOut && !$0.transferMechanism.isEmpty && !$0.dpaDate.isEmpty && !$0.retention.isEmpty })
        #expect(register.subProcessors.first { $0.name == "Deepgram" }?.transferMechanism == "EU SCCs with the UK Addendum")
        // What each really holds: Twilio a recording only until it is fetched; nobody but the hosts stores transcripts.
        let twilio = try #require(register.subProcessors.first { $0.name == "Twilio" })
        #expect(twilio.purpose.contains("only until CallTrace has fetched it") && twilio.retention.contains("until fetched and deleted"))
        #expect(!register.subProcessors.contains { $0.name == "Upstash" })

        let record = try await registers.getRecordOfProcessing(.with { $0.orgID = org }, options: try bearer(admin))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(record.json.utf8)) as? [String: Any])
        #expect((json["controller"] as? [String: Any])?["name"] as? String == "Smith & Co Solicitors")
        let transfers = (json["transfers"] as? [[String: Any]] ?? []).compactMap { $0["recipient"] as? String }
        #expect(Set(transfers) == ["Twilio", "Deepgram", "Anthropic", "Stripe"])
        #expect(record.text.contains("Article 30(2)") && record.text.contains("Security measures"))
        #expect(record.text.contains("a provider the operator has not yet named"), "\(record.text)")

        let agreement = try await registers.getProcessingAgreement(.with { $0.orgID = org }, options: try bearer(admin)).agreement
        #expect(agreement.text.contains("Smith & Co Solicitors") && agreement.text.contains("Article 28(3)") && agreement.text.contains("Anthropic")
                && agreement.text.contains("kept while our account"), "\(agreement.text)")
        #expect(agreement.acceptedBy.isEmpty)
        // Until the agreement is accepted, no call is recorded, and the gateway is told why (P12).
        let before = try await deployment.calls(as: TemporaryPKI.telephony).startCall(.with {
            $0.callID = "before-dpa"; $0.trackingNumber = "01184960000"; $0.callerNumber = "07700900123"; $0.direction = .inbound
        })
        #expect(!before.record && before.notice.isEmpty && before.reason.contains("has not accepted the processing agreement"), "\(before)")
        // Nor does such a call take a transcript (which would go on to analysis).
        #expect(await code {
            _ = try await Calltrace_Transcript_V1_TranscriptServiceClient(try deployment.transcript.client(identity: TemporaryPKI.telephony)).submitTranscript(.with {
                $0.orgID = org; $0.callID = "before-dpa"; $0.segments = [.with { $0.speaker = "caller"; $0.text = "Hello" }]
            })
        } == .failedPrecondition)
        #expect(await code {
            _ = try await registers.acceptProcessingAgreement(.with { $0.orgID = org; $0.templateVersion = agreement.templateVersion; $0.registerVersion = "stale" },
                                                              options: try bearer(admin))
        } == .failedPrecondition)
        let accepted = try await registers.acceptProcessingAgreement(.with {
            $0.orgID = org; $0.templateVersion = agreement.templateVersion; $0.registerVersion = agreement.registerVersion
        }, options: try bearer(admin)).agreement
        #expect(accepted.acceptedBy.hasPrefix("user:") && accepted.acceptedRegisterVersion == register.registerVersion && !accepted.needsNotice)
        let after = try await deployment.calls(as: TemporaryPKI.telephony).startCall(.with {
            $0.callID = "after-dpa"; $0.trackingNumber = "01184960000"; $0.callerNumber = "07700900123"; $0.direction = .inbound
        })
        #expect(after.record && after.reason.isEmpty, "\(after)")
        #expect(try await eventually {
            try await Calltrace_Compliance_V1_AuditServiceClient(try deployment.compliance.client())
                .listAuditEvents(.with { $0.orgID = org; $0.action = "agreement.accepted" }, options: try bearer(admin)).events.count == 1
        }, "accepting is audited")

        // The operator names its hosting provider and adds a sub-processor: the register's version
        // changes, the documents name the hosts, and the agreement owes notice.
        let file = deployment.pki.directory.appendingPathComponent("subprocessors.json").path
        var entries = SubProcessorRegister.shipped
        entries.hosting = .init(name: "Hetzner Online", purpose: "The servers CallTrace runs on and where its stores live", dataCategories: ["everything CallTrace stores, encrypted"],
                                location: "Germany (Falkenstein)", transferMechanism: "UK adequacy regulations (EEA)", dpaDate: "2026-10-01", trainingOptOut: true,
                                retention: "as the firm's retention policy sets")
        entries.subProcessors.append(.init(name: "Postmark", purpose: "E-mail delivery", dataCategories: ["users' e-mail addresses"],
                                           location: "United States", transferMechanism: "UK IDTA", dpaDate: "2026-11-20", trainingOptOut: true))
        try JSONEncoder().encode(entries).write(to: URL(fileURLWithPath: file))
        await deployment.stop("compliance")
        try await deployment.restart("compliance") { $0[ComplianceSettings.self].subprocessorsFile = file }
        let changed = try await Registers(try deployment.compliance.client()).listSubProcessors(.init())
        #expect(changed.source == "subprocessors_file" && !changed.source.contains("/"), "no server path reaches the firm")
        #expect(changed.registerVersion != register.registerVersion && changed.subProcessors.first?.name == "Hetzner Online" && changed.subProcessors.count == 6)
        let owed = try await Registers(try deployment.compliance.client()).getProcessingAgreement(.with { $0.orgID = org }, options: try bearer(admin)).agreement
        #expect(owed.needsNotice && owed.text.contains("Postmark") && owed.text.contains("hosts provided by Hetzner Online (Germany (Falkenstein))"))

        // A malformed register refuses start-up, naming the file.
        try Data("{\"sub_processors\": 3}".utf8).write(to: URL(fileURLWithPath: file))
        await deployment.stop("compliance")
        var message = ""
        do { try await deployment.restart("compliance") { $0[ComplianceSettings.self].subprocessorsFile = file } } catch { message = "\(error)" }
        #expect(message.contains("subprocessors_file \(file)"), "\(message)")
        try await deployment.restart("compliance") { $0[ComplianceSettings.self].subprocessorsFile = nil }  // as it was, for the deployment to stop cleanly
    }
}

@Suite("Compliance: a newer bank-holiday file", .serialized)
struct BankHolidayFileTests {
    @Test("bank_holidays_file replaces the shipped calendar for due dates; a malformed one refuses start-up, naming it")
    func holidaysFromAFile() async throws {
        let pki = try TemporaryPKI()
        let identity = try await InProcessService.start(IdentityService.self, pki: pki)
        defer { Task { await identity.stop() } }
        let file = pki.directory.appendingPathComponent("bank-holidays.json").path
        let events = #"{"events":[{"date":"2024-01-01"},{"date":"2026-12-02"},{"date":"2027-12-27"}]}"#
        try Data(#"{"england-and-wales":\#(events),"scotland":\#(events),"northern-ireland":\#(events)}"#.utf8).write(to: URL(fileURLWithPath: file))
        let compliance = try await InProcessService.start(ComplianceService.self, clock: TestClock(unixMs: CallDataDeployment.start),
                                                          peers: ["identity": identity.instance.port], pki: pki) { $0[ComplianceSettings.self].bankHolidaysFile = file }
        let (org, _, admin) = try await identity.newOrganisation()
        let opened = try await SubjectRequestTests.open(SubjectRequests(try compliance.client()), org: org, admin: admin)
        #expect(opened.dueOn == "2026-12-03", "Wednesday 2 December is a holiday in the file: the next working day")
        await compliance.stop()

        try Data("{}".utf8).write(to: URL(fileURLWithPath: file))
        var message = ""
        do { _ = try await compliance.restarted() } catch { message = "\(error)" }
        #expect(message.contains("bank_holidays_file \(file)"), "\(message)")
    }
}
