import Foundation
import Hummingbird

/// `/api/v1/webhooks` (services/web/openapi.yaml): the firm's webhooks for a CRM integration —
/// list, create, delete — through the same rules as Settings → Webhooks, under the caller's API
/// token (settings.manage, proved by identity). A webhook made here sends under a token identity
/// makes from the caller's: it needs reports.read (and transcripts.read for personal fields) in
/// that token's scopes, ends no later, and is revoked with it (the webhook then pauses).
///
/// Registered by hand beside the generated operations (the generator is not run in this
/// change; see the README): the document describes these routes and the contract test checks
/// their answers against it all the same.
struct WebhookAPI: Sendable {
    let app: WebApp
    static let base = "\(APIv1.base)/webhooks"

    struct Webhook: Codable, Sendable {
        let id: String
        let url: String
        let events: [String]
        let fields: [String]
        let state: String
        let pausedReason: String?
        let createdAt: Date
    }

    struct Webhooks: Codable, Sendable { let webhooks: [Webhook] }

    struct NewWebhook: Codable, Sendable {
        let url: String
        let events: [String]
        let fields: [String]?
    }

    struct Created: Codable, Sendable {
        let webhook: Webhook
        /// Shown this once.
        let secret: String
    }

    func register(on router: Router<WebContext>) {
        router.get(.init(Self.base)) { _, _ in
            let who = try APICaller.required()
            let views = try await app.webhooks.list(org: who.org, caller: who.caller)
            return try Self.json(Webhooks(webhooks: views.map(Self.webhook)), status: .ok)
        }
        router.post(.init(Self.base)) { request, _ in
            let who = try APICaller.required()
            let body = try await request.body.collect(upTo: 64 << 10)
            guard let asked = try? JSONDecoder().decode(NewWebhook.self, from: Data(body.readableBytesView)) else {
                throw APIProblem.invalid("Send JSON: {\"url\": \"https://…\", \"events\": [\"call.completed\"], \"fields\": [\"source\"]}.")
            }
            let events = try asked.events.map { name in
                guard let event = WebhookEvent(rawValue: name), WebhookEvent.subscribable.contains(event) else {
                    throw APIProblem.invalid("‘events’ are call.completed and transcript.ready.")
                }
                return event
            }
            let fields = try (asked.fields ?? WebhookField.defaults.map(\.rawValue)).map { name in
                guard let field = WebhookField(rawValue: name) else {
                    throw APIProblem.invalid("‘fields’ are \(WebhookField.allCases.map(\.rawValue).joined(separator: ", ")).")
                }
                return field
            }
            let created = try await app.webhooks.create(org: who.org, url: asked.url, events: Set(events), fields: Set(fields), caller: who.caller)
            return try Self.json(Created(webhook: Self.webhook(created.view), secret: created.secret), status: .created)
        }
        router.delete(.init("\(Self.base)/:webhookId")) { _, context in
            let who = try APICaller.required()
            try await app.webhooks.delete(try context.parameters.require("webhookId"), org: who.org, caller: who.caller)
            return Response(status: .noContent)
        }
    }

    static func webhook(_ view: WebhookRules.View) -> Webhook {
        let s = view.subscription
        return Webhook(id: s.id, url: view.url, events: s.events.map(\.rawValue).sorted(), fields: s.fields.map(\.rawValue).sorted(),
                       state: s.isActive ? "active" : "paused", pausedReason: s.pausedReason,
                       createdAt: Date(timeIntervalSince1970: Double(s.createdAt) / 1000))
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: try encoder.encode(value))))
    }
}
