import CallTraceProto
import CallTraceRPC
import Foundation
import Hummingbird

/// Settings beyond users (`UserPages`), each page for the permission its service requires (the
/// service refuses anyone else; the sub-navigation shows each only to those who may use it):
/// the security policy (identity), retention and its receipts, the processing agreement and the
/// sub-processor register (compliance), transcription on or off (transcript).
struct SettingsPages: Sendable {
    let app: WebApp

    /// The settings pages, in the order of the sub-navigation, with the permission each needs.
    static let pages: [(path: String, name: String, permission: Calltrace_Identity_V1_Permission)] = [
        ("/settings/users", "Users", .usersManage),
        ("/settings/security", "Security", .settingsManage),
        ("/settings/retention", "Retention", .settingsManage),
        ("/settings/transcription", "Transcription", .settingsManage),
        ("/settings/agreement", "Processing agreement", .settingsManage),
        ("/settings/sub-processors", "Sub-processors", .settingsManage),
        ("/settings/notices", "Notices", .settingsManage),
        ("/settings/webhooks", "Webhooks", .settingsManage),
        ("/settings/support", "Support access", .grantsManage),
        ("/settings/offboarding", "Leaving CallTrace", .orgOffboard),
    ]

    /// Where "Settings" in the main navigation goes: the first settings page the person may use.
    static func entry(_ permissions: Set<Calltrace_Identity_V1_Permission>) -> String? {
        pages.first { permissions.contains($0.permission) }?.path
    }

    /// The sub-navigation's values (`settings-nav` partial), `current` marked.
    static func navigation(_ permissions: Set<Calltrace_Identity_V1_Permission>, current: String) -> [[String: Any]] {
        pages.filter { permissions.contains($0.permission) }.map { ["href": $0.path, "name": $0.name, "current": $0.path == current] }
    }

    func register(on router: Router<WebContext>) {
        router.get("/settings") { _, context in
            let (_, permissions) = try await app.chrome(context, current: "Settings")
            guard let entry = Self.entry(permissions) else { throw RPCError(.permissionDenied, "no settings permission") }
            return Response.redirect(to: entry, type: .found)
        }
        router.get("/settings/security") { request, context in try await security(request, context) }
        router.post("/settings/security") { request, context in try await setSecurity(request, context) }
        router.get("/settings/retention") { request, context in try await retention(request, context) }
        router.post("/settings/retention") { request, context in try await setRetention(request, context) }
        router.post("/settings/retention/run") { request, context in try await runRetention(request, context) }
        router.get("/settings/transcription") { request, context in try await transcription(request, context) }
        router.post("/settings/transcription") { request, context in try await setTranscription(request, context) }
        router.get("/settings/agreement") { request, context in try await agreement(request, context) }
        router.get("/settings/agreement/download") { _, context in try await downloadAgreement(context) }
        router.post("/settings/agreement/accept") { request, context in try await acceptAgreement(request, context) }
        router.get("/settings/sub-processors") { _, context in try await subProcessors(context) }
    }

    /// A settings page: its template inside the layout, with the sub-navigation and a notice.
    func page(_ template: String, _ path: String, title: String, data: [String: Any], context: WebContext,
              notice: String? = nil) async throws -> Response {
        let (chrome, permissions) = try await app.chrome(context, current: "Settings")
        var data = data
        data["settingsNav"] = Self.navigation(permissions, current: path)
        data["csrf"] = try app.session(context).csrf
        if let notice { data["notice"] = notice }
        return app.renderer.page(template, title: title, data: data, chrome: chrome)
    }

    private static func saved(_ request: Request) -> String? { request.query["done"] == "saved" ? "Saved." : nil }

    // MARK: Security policy

    private func security(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let policy = try await app.backend.identity.getSecurityPolicy(.with { $0.orgID = session.orgID }, options: context.caller.options).policy
        let data: [String: Any] = [
            "ranges": policy.allowedClientRanges.joined(separator: "\n"), "anywhere": policy.allowedClientRanges.isEmpty,
            "idleMinutes": Self.idleMinutes(policy), "maxHours": Self.maxHours(policy),
            "twoFactor": policy.requireTwoFactor,
        ]
        return try await page("settings-security", "/settings/security", title: "Security policy", data: data, context: context,
                              notice: Self.saved(request))
    }

    /// The session times as shown (0 is identity's default: 30 minutes idle, 12 hours in all).
    static func idleMinutes(_ policy: Calltrace_Identity_V1_SecurityPolicy) -> UInt32 { policy.sessionIdleSeconds == 0 ? 30 : policy.sessionIdleSeconds / 60 }
    static func maxHours(_ policy: Calltrace_Identity_V1_SecurityPolicy) -> UInt32 { policy.sessionMaxSeconds == 0 ? 12 : policy.sessionMaxSeconds / 3600 }

    /// Changes only the fields edited: the policy is read again and each field the form changed
    /// replaces its value (identity's call replaces the whole policy).
    private func setSecurity(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        let options = context.caller.options
        var policy = try await app.backend.identity.getSecurityPolicy(.with { $0.orgID = session.orgID }, options: options).policy
        let ranges = form["ranges"].split(whereSeparator: { $0.isNewline || $0 == "," }).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard ranges.count <= 100, ranges.allSatisfy({ $0.count <= 64 }) else { throw PageError.invalid("At most 100 address ranges, one a line.") }
        if ranges != policy.allowedClientRanges { policy.allowedClientRanges = ranges }
        guard let idle = UInt32(form["idle"]), let max = UInt32(form["max"]), (1...10_080).contains(idle), (1...8_760).contains(max) else {
            throw PageError.invalid("Enter the session times as whole numbers of minutes and hours.")
        }
        if idle != Self.idleMinutes(policy) { policy.sessionIdleSeconds = idle * 60 }
        if max != Self.maxHours(policy) { policy.sessionMaxSeconds = max * 3600 }
        policy.requireTwoFactor = form["twoFactor"] == "yes"
        _ = try await app.backend.identity.setSecurityPolicy(.with {
            $0.orgID = session.orgID
            $0.allowedClientRanges = policy.allowedClientRanges
            $0.sessionIdleSeconds = policy.sessionIdleSeconds
            $0.sessionMaxSeconds = policy.sessionMaxSeconds
            $0.requireTwoFactor = policy.requireTwoFactor
        }, options: options)
        return WebApp.seeOther("/settings/security?done=saved")
    }

    // MARK: Retention

    private func retention(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let options = context.caller.options
        let policy = try await app.backend.retention.getRetentionPolicy(.with { $0.orgID = session.orgID }, options: options).policy
        let runs = try await app.backend.retention.listRetentionRuns(.with { $0.orgID = session.orgID; $0.limit = 20 }, options: options).runs
        func cutoff(_ ms: Int64) -> String { ms == 0 ? "kept" : "before \(Formats.date(unixMs: ms))" }
        var data: [String: Any] = [
            "recordings": policy.recordingsMonths, "transcripts": policy.transcriptsMonths, "callRecords": policy.callRecordsMonths,
            "runs": runs.map { run -> [String: Any] in
                var row: [String: Any] = [
                    "started": Formats.dateTime(unixMs: run.startedAtUnixMs),
                    "finished": run.state == .finished ? Formats.dateTime(unixMs: run.finishedAtUnixMs) : "Still running",
                    "by": run.requestedBy == "schedule" ? "Daily schedule" : "Asked for by \(run.requestedBy)",
                    "recordings": "\(run.recordingsPurged) (\(Formats.size(bytes: run.recordingBytesPurged))), \(cutoff(run.recordingsBeforeUnixMs))",
                    "transcripts": "\(run.transcriptsPurged), \(cutoff(run.transcriptsBeforeUnixMs))",
                    "callRecords": "\(run.callRecordsPurged), \(cutoff(run.callRecordsBeforeUnixMs))",
                ]
                if !run.lastError.isEmpty { row["error"] = run.lastError }
                return row
            },
            "hasRuns": !runs.isEmpty,
        ]
        if policy.updatedAtUnixMs > 0 { data["updated"] = Formats.dateTime(unixMs: policy.updatedAtUnixMs) }
        let notice: String? = request.query["done"] == "run" ? "A run is under way: its receipt appears below when it finishes." : Self.saved(request)
        return try await page("settings-retention", "/settings/retention", title: "Retention", data: data, context: context, notice: notice)
    }

    private func setRetention(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        func months(_ name: String) throws -> UInt32 {
            guard let value = UInt32(form[name].isEmpty ? "0" : form[name]), value <= 240 else {
                throw PageError.invalid("Enter months from 1 to 240, or 0 to keep while the account is active.")
            }
            return value
        }
        let recordings = try months("recordings"), transcripts = try months("transcripts"), callRecords = try months("callRecords")
        let policy = Calltrace_Compliance_V1_RetentionPolicy.with {
            $0.recordingsMonths = recordings
            $0.transcriptsMonths = transcripts
            $0.callRecordsMonths = callRecords
        }
        _ = try await app.backend.retention.setRetentionPolicy(.with {
            $0.orgID = session.orgID
            $0.policy = policy
        }, options: context.caller.options)
        return WebApp.seeOther("/settings/retention?done=saved")
    }

    private func runRetention(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        _ = try await Form.read(request, context: context)
        _ = try await app.backend.retention.runRetention(.with { $0.orgID = session.orgID }, options: context.caller.options)
        return WebApp.seeOther("/settings/retention?done=run")
    }

    // MARK: Transcription

    private func transcription(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let settings = try await app.backend.transcripts.getTranscriptionSettings(.with { $0.orgID = session.orgID }, options: context.caller.options).settings
        var data: [String: Any] = ["enabled": settings.enabled]
        if !settings.cardDetails.isEmpty { data["cardDetails"] = settings.cardDetails }
        return try await page("settings-transcription", "/settings/transcription", title: "Transcription", data: data, context: context,
                              notice: Self.saved(request))
    }

    /// On or off; the engines stay as they are.
    private func setTranscription(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        guard ["on", "off"].contains(form["transcription"]) else { throw PageError.invalid("Choose on or off.") }
        let options = context.caller.options
        var settings = try await app.backend.transcripts.getTranscriptionSettings(.with { $0.orgID = session.orgID }, options: options).settings
        settings.enabled = form["transcription"] == "on"
        settings.cardDetails = ""
        _ = try await app.backend.transcripts.setTranscriptionSettings(.with {
            $0.orgID = session.orgID
            $0.settings = settings
        }, options: options)
        return WebApp.seeOther("/settings/transcription?done=saved")
    }

    // MARK: The processing agreement and the register

    private func getAgreement(_ context: WebContext) async throws -> Calltrace_Compliance_V1_ProcessingAgreement {
        let session = try app.session(context)
        return try await app.backend.register.getProcessingAgreement(.with { $0.orgID = session.orgID }, options: context.caller.options).agreement
    }

    private func agreement(_ request: Request, _ context: WebContext) async throws -> Response {
        let agreement = try await getAgreement(context)
        let current = agreement.acceptedTemplateVersion == agreement.templateVersion && agreement.acceptedRegisterVersion == agreement.registerVersion
        var data: [String: Any] = [
            "text": agreement.text, "template": agreement.templateVersion, "register": agreement.registerVersion,
            "accepted": !agreement.acceptedTemplateVersion.isEmpty, "current": current, "needsNotice": agreement.needsNotice,
        ]
        if !agreement.acceptedTemplateVersion.isEmpty {
            data["acceptance"] = [
                "at": Formats.dateTime(unixMs: agreement.acceptedAtUnixMs), "by": agreement.acceptedBy,
                "template": agreement.acceptedTemplateVersion, "register": agreement.acceptedRegisterVersion,
            ]
        }
        let notice: String? = request.query["done"] == "accepted" ? "Accepted. Calls are recorded under this agreement." : nil
        return try await page("settings-agreement", "/settings/agreement", title: "Processing agreement", data: data, context: context, notice: notice)
    }

    private func downloadAgreement(_ context: WebContext) async throws -> Response {
        let agreement = try await getAgreement(context)
        return Response(status: .ok, headers: [
            .contentType: "text/plain; charset=utf-8",
            .contentDisposition: StreamedDownload.attachment("processing-agreement-\(agreement.templateVersion).txt"),
        ], body: .init(byteBuffer: ByteBuffer(string: agreement.text)))
    }

    /// Accepts the versions the page showed: if either changed meanwhile, compliance refuses.
    private func acceptAgreement(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        guard form["confirm"] == "yes" else { throw PageError.invalid("Tick the box to confirm you accept the agreement on the firm's behalf.") }
        _ = try await app.backend.register.acceptProcessingAgreement(.with {
            $0.orgID = session.orgID
            $0.templateVersion = String(form["template"].prefix(100))
            $0.registerVersion = String(form["register"].prefix(100))
        }, options: context.caller.options)
        return WebApp.seeOther("/settings/agreement?done=accepted")
    }

    private func subProcessors(_ context: WebContext) async throws -> Response {
        let register = try await app.backend.register.listSubProcessors(.init(), options: context.caller.options)
        var data: [String: Any] = [
            "version": register.registerVersion, "processor": register.processorName,
            "source": register.source == "shipped" ? "the list published with this release" : "the operator's register",
            "entries": register.subProcessors.map { entry -> [String: Any] in
                var row: [String: Any] = [
                    "name": entry.name, "purpose": entry.purpose, "data": entry.dataCategories.joined(separator: ", "),
                    "location": entry.location, "transfer": entry.transferMechanism, "optOut": entry.trainingOptOut ? "Yes" : "No",
                ]
                if !entry.dpaDate.isEmpty { row["dpa"] = RequestPages.day(entry.dpaDate) }
                if !entry.retention.isEmpty { row["retention"] = entry.retention }
                return row
            },
        ]
        if !register.processorContact.isEmpty { data["contact"] = register.processorContact }
        return try await page("settings-sub-processors", "/settings/sub-processors", title: "Sub-processors", data: data, context: context)
    }
}
