import CallTraceProto
import CallTraceRPC
import Foundation
import Hummingbird

/// Settings → Webhooks (settings.manage, which identity proves for every action): the firm's
/// outgoing webhooks to its CRM — add one (URL, events, fields; its signing secret shown once),
/// pause, resume, send a test event, delete, and each one's latest deliveries.
struct WebhookPages: Sendable {
    let app: WebApp
    var settings: SettingsPages { SettingsPages(app: app) }
    static let path = "/settings/webhooks"

    func register(on router: Router<WebContext>) {
        router.get(.init(stringLiteral: Self.path)) { request, context in try await list(request, context) }
        router.post(.init(stringLiteral: Self.path)) { request, context in try await create(request, context) }
        router.get("/settings/webhooks/:webhook") { request, context in try await show(request, context) }
        for action in ["pause", "resume", "test", "delete"] {
            router.post(.init(stringLiteral: "/settings/webhooks/:webhook/\(action)")) { request, context in try await act(action, request, context) }
        }
    }

    private func list(_ request: Request, _ context: WebContext, created: (view: WebhookRules.View, secret: String)? = nil) async throws -> Response {
        let session = try app.session(context)
        let views = try await app.webhooks.list(org: session.orgID, caller: context.caller)
        var data: [String: Any] = [
            "events": WebhookEvent.subscribable.map { ["value": $0.rawValue, "label": $0.label] },
            "fields": WebhookField.allCases.map { ["value": $0.rawValue, "label": $0.label, "checked": WebhookField.defaults.contains($0)] },
            "hasWebhooks": !views.isEmpty, "webhooks": views.map(Self.row), "limit": WebhookRules.perFirm,
        ]
        if let created { data["created"] = ["url": created.view.url, "secret": created.secret, "id": created.view.subscription.id] }
        let notice: String? = request.query["done"] == "deleted" ? "Webhook deleted, and its API token revoked." : nil
        return try await settings.page("settings-webhooks", Self.path, title: "Webhooks", data: data, context: context, notice: notice)
    }

    private func create(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        let events = Set(WebhookEvent.subscribable.filter { form["event-\($0.rawValue)"] == "yes" })
        guard !events.isEmpty else { throw PageError.invalid("Choose at least one event to send.") }
        let fields = Set(WebhookField.allCases.filter { form["field-\($0.rawValue)"] == "yes" })
        let created = try await app.webhooks.create(org: session.orgID, url: form["url"], events: events, fields: fields, caller: context.caller)
        // Shown on this answer only (never in a URL, never stored in clear): the receiver's copy of the secret.
        return try await list(request, context, created: created)
    }

    private func show(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let id = try context.parameters.require("webhook")
        let (view, deliveries) = try await app.webhooks.subscription(id, org: session.orgID, caller: context.caller)
        var data = Self.row(view)
        data["deliveries"] = deliveries.map { delivery -> [String: Any] in
            var row: [String: Any] = ["event": delivery.event.label, "state": Self.state(delivery), "attempts": delivery.attempts,
                                      "created": Formats.dateTime(unixMs: delivery.createdAt), "eventID": delivery.id]
            if delivery.lastStatus > 0 { row["status"] = delivery.lastStatus }
            if delivery.lastAttemptAt > 0 { row["lastAttempt"] = Formats.dateTime(unixMs: delivery.lastAttemptAt) }
            return row
        }
        data["hasDeliveries"] = !deliveries.isEmpty
        let notice: String? = switch request.query["done"] {
        case "paused": "Paused: nothing is sent until you resume it."
        case "resumed": "Resumed: what happened meanwhile is sent now."
        case "test": "Test event queued: it appears below once sent."
        default: nil
        }
        return try await settings.page("settings-webhook", Self.path, title: "Webhook to \(view.subscription.host)", data: data, context: context,
                                       notice: notice)
    }

    private func act(_ action: String, _ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let id = try context.parameters.require("webhook")
        _ = try await Form.read(request, context: context)
        let org = session.orgID, caller = context.caller
        switch action {
        case "pause": try await app.webhooks.pause(id, org: org, caller: caller)
        case "resume": try await app.webhooks.resume(id, org: org, caller: caller)
        case "test": try await app.webhooks.sendTest(id, org: org, caller: caller)
        default:
            try await app.webhooks.delete(id, org: org, caller: caller)
            return WebApp.seeOther("\(Self.path)?done=deleted")
        }
        return WebApp.seeOther("\(Self.path)/\(id)?done=\(action == "test" ? "test" : action + "d")")
    }

    static func row(_ view: WebhookRules.View) -> [String: Any] {
        let s = view.subscription
        var row: [String: Any] = [
            "id": s.id, "url": view.url, "host": s.host, "created": Formats.dateTime(unixMs: s.createdAt), "active": s.isActive,
            "events": WebhookEvent.subscribable.filter(s.events.contains).map(\.label).joined(separator: "; "),
            "fields": (["Call id"] + WebhookField.allCases.filter(s.fields.contains).map(\.label)).joined(separator: "; "),
        ]
        if let reason = s.pausedReason { row["pausedReason"] = reason }
        return row
    }

    static func state(_ delivery: WebhookDelivery) -> String {
        switch delivery.state {
        case .pending: delivery.attempts == 0 ? "Queued" : "Retrying"
        case .delivered: "Delivered"
        case .failed: "Failed"
        case .held: "Held while paused"
        case .skipped: "Not sent (call deleted)"
        }
    }
}
