import CallTraceProto
import CallTraceRPC
import Foundation
import Hummingbird

/// Settings about the firm's relationship with CallTrace: the recording notices in the firm's
/// wording (compliance, settings.manage), support access for CallTrace's operators (identity's
/// support grants, grants.manage: P8), and leaving (compliance offboarding, org.offboard: P11),
/// confirmed by typing the firm's name.
struct FirmSettingsPages: Sendable {
    let app: WebApp
    var settings: SettingsPages { SettingsPages(app: app) }

    func register(on router: Router<WebContext>) {
        router.get("/settings/notices") { request, context in try await notices(request, context) }
        router.post("/settings/notices") { request, context in try await setNotices(request, context) }
        router.get("/settings/support") { request, context in try await grants(request, context) }
        router.post("/settings/support") { request, context in try await createGrant(request, context) }
        router.post("/settings/support/:grant/revoke") { request, context in try await revokeGrant(request, context) }
        router.get("/settings/offboarding") { request, context in try await offboarding(request, context) }
        router.post("/settings/offboarding/start") { request, context in try await startOffboarding(request, context) }
        router.post("/settings/offboarding/confirm") { request, context in try await confirmOffboarding(request, context) }
    }

    // MARK: Notices

    static let noticeKinds: [(Calltrace_Compliance_V1_NoticeKind, String, String)] = [
        (.websiteRecording, "website", "For your website"), (.callbackGreeting, "callback", "Greeting on returned calls"),
        (.inboundGreeting, "inbound", "Greeting on inbound calls"), (.privacyNoticeClause, "privacy", "Clause for your privacy notice"),
        (.clientCare, "client-care", "Wording for client-care letters"),
        (.websiteAttribution, "website-attribution", "For your cookie banner, where the website tag shows visitors numbers of their own"),
    ]

    private func notices(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let options = context.caller.options
        let current = try await app.backend.notices.getNoticeSettings(.with { $0.orgID = session.orgID }, options: options).settings
        var kinds: [[String: Any]] = []
        for (kind, field, label) in Self.noticeKinds {
            let notice = try await app.backend.notices.getNotice(.with { $0.orgID = session.orgID; $0.kind = kind }, options: options)
            var row: [String: Any] = ["field": field, "label": label, "own": current.overrides.first { $0.kind == kind }?.text ?? ""]
            if !notice.text.isEmpty { row["text"] = notice.text }
            row["source"] = notice.templateVersion == "firm" ? "your own wording" : "CallTrace's wording (\(notice.templateVersion))"
            kinds.append(row)
        }
        let data: [String: Any] = ["firmName": current.firmName, "firmPhone": current.firmPhone, "inbound": current.inboundGreeting, "kinds": kinds]
        return try await settings.page("settings-notices", "/settings/notices", title: "Notices", data: data, context: context,
                                       notice: request.query["done"] == "saved" ? "Saved. Calls from now on use this wording." : nil)
    }

    private func setNotices(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        guard form["firmName"].count <= 200, form["firmPhone"].count <= 200 else { throw PageError.invalid("The firm's name and number are at most 200 characters each.") }
        let overrides = try Self.noticeKinds.compactMap { kind, field, label -> Calltrace_Compliance_V1_NoticeOverride? in
            let text = form[field]
            guard text.count <= 2000 else { throw PageError.invalid("\(label): at most 2,000 characters.") }
            return text.isEmpty ? nil : .with { $0.kind = kind; $0.text = text }
        }
        _ = try await app.backend.notices.setNoticeSettings(.with {
            $0.orgID = session.orgID
            $0.settings = .with {
                $0.firmName = form["firmName"]
                $0.firmPhone = form["firmPhone"]
                $0.inboundGreeting = form["inbound"] == "on"
                $0.overrides = overrides
            }
        }, options: context.caller.options)
        return WebApp.seeOther("/settings/notices?done=saved")
    }

    // MARK: Support access

    /// What a support grant can give an operator, in the firm's words.
    static let grantable: [(Calltrace_Identity_V1_Permission, String, String)] = [
        (.auditRead, "audit", "Read the audit trail"), (.transcriptsRead, "transcripts", "Read calls and transcripts"),
        (.recordingsPlay, "recordings", "Play recordings"), (.settingsManage, "settings", "See and change settings"),
    ]

    private func grants(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let grants = try await app.backend.identity.listSupportGrants(.with { $0.orgID = session.orgID }, options: context.caller.options).grants
        let now = app.clock.nowUnixMs
        let data: [String: Any] = [
            "grantable": Self.grantable.map { ["value": $0.1, "label": $0.2] },
            "hasGrants": !grants.isEmpty,
            "grants": grants.sorted { $0.createdAtUnixMs > $1.createdAtUnixMs }.map { grant -> [String: Any] in
                let state = grant.revokedAtUnixMs > 0 ? "Revoked" : grant.expiresAtUnixMs <= now ? "Expired" : "Active"
                return [
                    "id": grant.grantID, "reason": grant.reason, "created": Formats.dateTime(unixMs: grant.createdAtUnixMs),
                    "expires": Formats.dateTime(unixMs: grant.expiresAtUnixMs), "state": state, "active": state == "Active",
                    "what": grant.permissions.map { permission in Self.grantable.first { $0.0 == permission }?.2 ?? "\(permission)" }.joined(separator: ", "),
                ]
            },
        ]
        let notice: String? = switch request.query["done"] {
        case "granted": "Support access given. Every access under it is in your audit trail, marked as an operator's."
        case "revoked": "Support access revoked: it opens nothing from now on."
        default: nil
        }
        return try await settings.page("settings-support", "/settings/support", title: "Support access", data: data, context: context, notice: notice)
    }

    private func createGrant(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        let permissions = Self.grantable.filter { form["allow-\($0.1)"] == "yes" }.map(\.0)
        guard !permissions.isEmpty else { throw PageError.invalid("Choose what CallTrace's support may do.") }
        guard let days = UInt32(form["days"]), (1...14).contains(days) else { throw PageError.invalid("Support access lasts from 1 to 14 days.") }
        guard !form["reason"].isEmpty, form["reason"].count <= 200 else { throw PageError.invalid("Say why (a ticket reference will do), at most 200 characters.") }
        _ = try await app.backend.identity.createSupportGrant(.with {
            $0.orgID = session.orgID
            $0.permissions = permissions
            $0.durationSeconds = days * 86_400
            $0.reason = form["reason"]
        }, options: context.caller.options)
        return WebApp.seeOther("/settings/support?done=granted")
    }

    private func revokeGrant(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let grant = try context.parameters.require("grant")
        _ = try await Form.read(request, context: context)
        _ = try await app.backend.identity.revokeSupportGrant(.with { $0.orgID = session.orgID; $0.grantID = grant }, options: context.caller.options)
        return WebApp.seeOther("/settings/support?done=revoked")
    }

    // MARK: Leaving

    /// What the admin types to confirm: the firm's name as its notices give it, else its organisation id.
    private func confirmationWord(_ context: WebContext) async -> String {
        guard let session = context.session else { return "" }
        let name = try? await app.backend.notices.getNoticeSettings(.with { $0.orgID = session.orgID }, options: context.caller.options).settings.firmName
        return name.flatMap { $0.isEmpty ? nil : $0 } ?? session.orgID
    }

    private func current(_ context: WebContext) async throws -> Calltrace_Compliance_V1_Offboarding? {
        let session = try app.session(context)
        do {
            return try await app.backend.offboarding.getOffboarding(.with { $0.orgID = session.orgID }, options: context.caller.options).offboarding
        } catch let error as RPCError where error.code == .notFound {
            return nil
        }
    }

    private func offboarding(_ request: Request, _ context: WebContext) async throws -> Response {
        var data: [String: Any] = ["word": await confirmationWord(context)]
        if let offboarding = try await current(context) {
            data["started"] = [
                "at": Formats.dateTime(unixMs: offboarding.startedAtUnixMs), "bundle": offboarding.exportBundleID,
                "exporting": offboarding.state == .exporting, "awaiting": offboarding.state == .awaitingConfirmation,
                "purging": offboarding.state == .purging, "id": offboarding.offboardingID,
            ]
        } else {
            data["notStarted"] = true
        }
        return try await settings.page("settings-offboarding", "/settings/offboarding", title: "Leaving CallTrace", data: data, context: context,
                                       notice: request.query["done"] == "started" ? "The full export is being built." : nil)
    }

    private func startOffboarding(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        guard form["confirm"] == "yes" else { throw PageError.invalid("Tick the box to start leaving CallTrace.") }
        _ = try await app.backend.offboarding.startOffboarding(.with { $0.orgID = session.orgID }, options: context.caller.options)
        return WebApp.seeOther("/settings/offboarding?done=started")
    }

    /// The strong confirmation: the firm's name typed exactly, then compliance's own (the
    /// organisation id, which the gateway sends only when the name matched).
    private func confirmOffboarding(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        let word = await confirmationWord(context)
        guard form["typed"] == word else { throw PageError.invalid("Type \(word) exactly as shown to confirm.") }
        let done = try await app.backend.offboarding.confirmOffboarding(.with {
            $0.orgID = session.orgID
            $0.offboardingID = form["offboarding"]
            $0.confirmOrgID = session.orgID
        }, options: context.caller.options).offboarding
        let text = done.state == .completed
            ? "Every call, recording and transcript of the firm is deleted and its keys destroyed. CallTrace's operators hold the signed deletion certificate for you."
            : "The deletion is under way and finishes on its own; CallTrace's operators hand you the signed deletion certificate when it completes."
        return app.renderer.message(title: "The firm's data is being deleted", text: text, chrome: nil, status: .ok)
    }
}
