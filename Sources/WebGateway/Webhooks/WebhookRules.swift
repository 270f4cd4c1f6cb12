import CallTraceKeys
import CallTraceOutbound
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import Foundation
import Logging

/// The firms' outgoing webhooks (issue 30): a firm admin subscribes an `https://` receiver to
/// call events; a scheduled poll reads transcript's `ListCallEvents` under the subscription's
/// own API token and queues one delivery job per new event; each delivery asks transcript for
/// the fields the firm chose (`GetCall` under the same token), signs the JSON with the
/// subscription's secret (`CallTrace-Signature`, HMAC-SHA256 through OpenSSL) and POSTs it
/// through libcurl, retried with the queue's backoff for about a day.
///
/// Every call about a firm's data is made under a person's token: the admin's for managing
/// (identity proves settings.manage with `GetSecurityPolicy`), and for deliveries an API token
/// identity made for that admin when the webhook was created (scoped to reports.read, and
/// transcripts.read when a personal field is ticked). Identity keeps that token to this gateway
/// (`held_by_gateway`): it works only when this gateway presents it saying it acts for nobody at
/// an address (`Caller.actingForNobody`),
/// so a firm's address allow-list (about where people sign in from) does not stop deliveries,
/// and a copy that leaked works nowhere. When the admin adds a webhook through the API, the
/// token is made from their API token: no wider, ending with it, revoked with it. When that
/// token stops working, the subscription pauses with the reason. The secret, the token and the URL (whose query may hold
/// a key) are sealed under the firm's key; no call content is stored, and logs name only the host.
struct WebhookRules: Sendable {
    struct Configuration: Sendable {
        /// Refuse receivers on private, loopback and link-local addresses unless set. Default false.
        var allowPrivateAddresses = false
    }

    /// A firm has at most this many webhooks.
    static let perFirm = 10
    /// Attempts before a delivery fails: with the queue's backoff (1 s doubling to 10 min), about a day.
    static let deliveryAttempts = 150
    /// Events read per page of `ListCallEvents`, and pages read per subscription per poll.
    static let pageSize: UInt32 = 100
    static let pagesPerPoll = 10
    /// The longest an API token lasts (identity's limit: 365 days).
    static let tokenSeconds: UInt32 = 365 * 86_400
    /// Finished deliveries are listed this long.
    static let deliveriesKeptMs: Int64 = 30 * 86_400_000
    /// How long a receiver has to answer.
    static let timeout: Duration = .seconds(15)

    let repository: any WebhookRepository
    let keys: KeyRing
    let jobs: JobQueue
    let backend: Backend
    let clock: any WallClock
    let blocking: BlockingPool
    let transport: any HTTPSTransport
    let configuration: Configuration
    let logger: Logger

    // MARK: What a firm admin does (each under their own token)

    /// A subscription as the page and the API show it.
    struct View: Sendable {
        let subscription: WebhookSubscription
        let url: String
    }

    /// Identity's proof that the caller may manage the firm's settings (the answer is not used).
    func checkAdmin(org: String, caller: Caller) async throws {
        try OrganizationID.validate(org)
        _ = try await backend.identity.getSecurityPolicy(.with { $0.orgID = org }, options: caller.options)
    }

    /// Makes a subscription: the address checked (form and, unless allowed, public addresses
    /// only), an API token made by identity for the admin, and a new signing secret, shown this once.
    func create(org: String, url text: String, events: Set<WebhookEvent>, fields: Set<WebhookField>, caller: Caller) async throws
        -> (view: View, secret: String) {
        try await checkAdmin(org: org, caller: caller)
        let address = try WebhookAddress(text)
        let events = events.intersection(WebhookEvent.subscribable)
        guard !events.isEmpty else { throw RPCError(.invalidArgument, "choose at least one event to send") }
        let count = try await repository.read { tx in try tx.subscriptions(org: org).count }
        guard count < Self.perFirm else {
            throw RPCError(.failedPrecondition, "a firm has at most \(Self.perFirm) webhooks: delete one before adding another")
        }
        try await blocking.run { [configuration] in try address.checkReachable(allowPrivate: configuration.allowPrivateAddresses) }
        let me = try await backend.identity.getCurrentUser(.with { $0.orgID = org }, options: caller.options).user
        var permissions: [Calltrace_Identity_V1_Permission] = [.reportsRead]
        if fields.contains(where: \.needsTranscriptsRead) { permissions.append(.transcriptsRead) }
        let made = try await backend.identity.createApiToken(.with {
            $0.orgID = org
            $0.name = String("webhook: \(address.host)".prefix(100))
            $0.permissions = permissions
            $0.durationSeconds = Self.tokenSeconds
            $0.heldByGateway = true
        }, options: caller.options)
        let id = "whk_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let secret = "whsec_" + (try OpaqueToken.generate())
        do {
            let cursor = try await latestSequence(org: org, token: made.token)
            try keys.createKeys(for: org)
            let seal = { (value: String, column: String) in
                try keys.seal(Data(value.utf8), org: org, table: "webhook_subscriptions", column: column, row: id)
            }
            let subscription = WebhookSubscription(
                id: id, org: org, host: address.host, sealedURL: try seal(address.url, "url"), events: events, fields: fields,
                sealedSecret: try seal(secret, "secret"), sealedToken: try seal(made.token, "api_token"), tokenID: made.apiToken.tokenID,
                cursor: cursor, createdBy: me.userID, createdAt: clock.nowUnixMs, pausedReason: nil)
            try await repository.write { tx in
                // Counted again inside the write: two admins adding at once cannot pass the limit.
                guard try tx.subscriptions(org: org).count < Self.perFirm else {
                    throw RPCError(.failedPrecondition, "a firm has at most \(Self.perFirm) webhooks: delete one before adding another")
                }
                try tx.insert(subscription)
            }
            logger.info("webhook created", metadata: ["org": "\(org)", "webhook": "\(id)", "host": "\(address.host)"])
            return (View(subscription: subscription, url: address.url), secret)
        } catch {
            // Nothing stored: the token made for it goes too.
            _ = try? await backend.identity.revokeApiToken(.with { $0.orgID = org; $0.tokenID = made.apiToken.tokenID }, options: caller.options)
            throw error
        }
    }

    /// Where the feed stands now: a new subscription sends what happens from now on, not the firm's past.
    private func latestSequence(org: String, token: String) async throws -> Int64 {
        let page = try await backend.calls.listCallEvents(.with { $0.orgID = org; $0.limit = 1 },
                                                          options: Caller.actingForNobody(token: token).options)
        return Int64(page.latestSequence)
    }

    /// The firm's subscriptions, oldest first.
    func list(org: String, caller: Caller) async throws -> [View] {
        try await checkAdmin(org: org, caller: caller)
        let subscriptions = try await repository.read { tx in try tx.subscriptions(org: org) }
        return try subscriptions.map(view)
    }

    /// One subscription and its latest deliveries; NOT_FOUND for another firm's.
    func subscription(_ id: String, org: String, caller: Caller) async throws -> (view: View, deliveries: [WebhookDelivery]) {
        try await checkAdmin(org: org, caller: caller)
        let found = try await repository.read { tx -> (WebhookSubscription, [WebhookDelivery])? in
            guard let subscription = try tx.subscription(id, org: org) else { return nil }
            return (subscription, try tx.deliveries(subscription: id, limit: 20))
        }
        guard let found else { throw Self.notFound(id) }
        return (try view(found.0), found.1)
    }

    /// Stops sending (events that happen meanwhile are sent on resume).
    func pause(_ id: String, org: String, caller: Caller) async throws {
        try await checkAdmin(org: org, caller: caller)
        try await repository.write { tx in
            guard try tx.subscription(id, org: org) != nil else { throw Self.notFound(id) }
            _ = try tx.setPaused("Paused by an admin.", subscription: id)
        }
    }

    /// Sends again: the deliveries held while it was paused first, then whatever happened meanwhile.
    func resume(_ id: String, org: String, caller: Caller) async throws {
        try await checkAdmin(org: org, caller: caller)
        let now = clock.nowUnixMs
        try await repository.write { [jobs] tx in
            guard try tx.subscription(id, org: org) != nil else { throw Self.notFound(id) }
            guard try tx.setPaused(nil, subscription: id) else { return }
            for held in try tx.deliveryIDs(subscription: id, state: .held) {
                guard var delivery = try tx.delivery(held) else { continue }
                delivery.state = .pending
                try tx.update(delivery)
                try jobs.enqueue(DeliverWebhook(id: held), idempotencyKey: "\(DeliverWebhook.kind):\(held):\(now)", in: tx.connection)
            }
        }
    }

    /// Revokes the subscription's API token in identity, then deletes the subscription and its
    /// deliveries. The token is another admin's when they made the webhook: identity revokes it
    /// only for users.manage (a session of an admin has it; an API token needs it in its scopes),
    /// and when it refuses, nothing is deleted — a webhook never leaves a live token behind.
    func delete(_ id: String, org: String, caller: Caller) async throws {
        try await checkAdmin(org: org, caller: caller)
        guard let subscription = try await repository.read({ tx in try tx.subscription(id, org: org) }) else { throw Self.notFound(id) }
        do {
            _ = try await backend.identity.revokeApiToken(.with { $0.orgID = org; $0.tokenID = subscription.tokenID }, options: caller.options)
        } catch let error as RPCError where error.code == .notFound {
            // Already gone (its user removed, say).
        }
        _ = try await repository.write { tx in try tx.deleteSubscription(id, org: org) }
        logger.info("webhook deleted", metadata: ["org": "\(org)", "webhook": "\(id)"])
    }

    /// Queues a test event (no call, no data) to the receiver, whatever the events chosen.
    func sendTest(_ id: String, org: String, caller: Caller) async throws {
        try await checkAdmin(org: org, caller: caller)
        let now = clock.nowUnixMs
        try await repository.write { [jobs] tx in
            guard let subscription = try tx.subscription(id, org: org) else { throw Self.notFound(id) }
            guard subscription.isActive else { throw RPCError(.failedPrecondition, "the webhook is paused: resume it first") }
            let delivery = WebhookDelivery(id: "\(id).test.\(now)", subscription: id, org: org, sequence: 0, event: .test, callID: "",
                                           occurredAt: now, state: .pending, attempts: 0, lastStatus: 0, lastAttemptAt: 0, deliveredAt: nil,
                                           createdAt: now)
            try tx.insert(delivery)
            try jobs.enqueue(DeliverWebhook(id: delivery.id), idempotencyKey: "\(DeliverWebhook.kind):\(delivery.id)", in: tx.connection)
        }
    }

    private func view(_ subscription: WebhookSubscription) throws -> View {
        View(subscription: subscription, url: try open(subscription, "url", subscription.sealedURL))
    }

    private func open(_ subscription: WebhookSubscription, _ column: String, _ sealed: Data) throws -> String {
        String(decoding: try keys.open(sealed, org: subscription.org, table: "webhook_subscriptions", column: column, row: subscription.id),
               as: UTF8.self)
    }

    static func notFound(_ id: String) -> RPCError { RPCError(.notFound, "webhook \(id) not found") }

    // MARK: The poll (a scheduled job)

    /// Reads each active subscription's new events and queues their deliveries; old finished
    /// deliveries leave the list.
    func poll() async throws {
        let subscriptions = try await repository.read { tx in try tx.activeSubscriptions() }
        for subscription in subscriptions {
            do {
                try await poll(subscription)
            } catch {
                // One firm's failure (a service not answering) never holds up another's; the next poll tries again.
                logger.notice("webhook poll failed", metadata: ["org": "\(subscription.org)", "webhook": "\(subscription.id)",
                                                                "reason": "\(Self.describe(error))"])
            }
        }
        let cutoff = clock.nowUnixMs - Self.deliveriesKeptMs
        _ = try await repository.write { tx in try tx.deleteFinishedDeliveries(before: cutoff) }
    }

    /// One subscription: its events after its cursor, a delivery job each, and the cursor moved,
    /// in one transaction per page.
    func poll(_ subscription: WebhookSubscription) async throws {
        let options = Caller.actingForNobody(token: try open(subscription, "api_token", subscription.sealedToken)).options
        var cursor = subscription.cursor
        for _ in 0..<Self.pagesPerPoll {
            let page: Calltrace_Transcript_V1_ListCallEventsResponse
            do {
                page = try await backend.calls.listCallEvents(.with {
                    $0.orgID = subscription.org; $0.afterSequence = UInt64(max(0, cursor)); $0.limit = Self.pageSize
                }, options: options)
            } catch let error as RPCError where Self.tokenRefused(error) {
                try await pauseForToken(subscription, error)
                return
            }
            let from = cursor, now = clock.nowUnixMs
            let chosen = page.events.compactMap { event -> (Calltrace_Transcript_V1_CallEvent, WebhookEvent)? in
                guard let kind = Self.event(event.kind), subscription.events.contains(kind) else { return nil }
                return (event, kind)
            }
            let moved = try await repository.write { [jobs] tx -> Bool in
                // Deleted, paused or polled meanwhile: leave it.
                guard let current = try tx.subscription(subscription.id, org: subscription.org), current.isActive, current.cursor == from else {
                    return false
                }
                for (event, kind) in chosen {
                    let delivery = WebhookDelivery(id: "\(subscription.id).\(event.sequence)", subscription: subscription.id, org: subscription.org,
                                                   sequence: Int64(event.sequence), event: kind, callID: event.callID,
                                                   occurredAt: event.occurredAtUnixMs, state: .pending, attempts: 0, lastStatus: 0,
                                                   lastAttemptAt: 0, deliveredAt: nil, createdAt: now)
                    try tx.insert(delivery)
                    try jobs.enqueue(DeliverWebhook(id: delivery.id), idempotencyKey: "\(DeliverWebhook.kind):\(delivery.id)", in: tx.connection)
                }
                try tx.setCursor(Int64(page.nextAfterSequence), subscription: subscription.id)
                return true
            }
            cursor = Int64(page.nextAfterSequence)
            guard moved, page.more else { return }
        }
    }

    static func event(_ kind: Calltrace_Transcript_V1_CallEventKind) -> WebhookEvent? {
        switch kind {
        case .callCompleted: .callCompleted
        case .transcriptReady: .transcriptReady
        default: nil
        }
    }

    /// The token no longer opens anything: its user suspended or removed, or it was revoked or expired.
    static func tokenRefused(_ error: RPCError) -> Bool { error.code == .unauthenticated || error.code == .permissionDenied }

    private func pauseForToken(_ subscription: WebhookSubscription, _ error: RPCError) async throws {
        let reason = "Paused: identity refused the API token it sends with (\(Failures.sentence(error.message).dropLast())): "
            + "the admin who made it may have been suspended or removed, the token revoked or expired, or their role changed. "
            + "Delete this webhook and add it again."
        let paused = try await repository.write { tx in try tx.setPaused(reason, subscription: subscription.id) }
        if paused {
            logger.warning("webhook paused: its API token was refused", metadata: ["org": "\(subscription.org)", "webhook": "\(subscription.id)",
                                                                                  "code": "\(error.code)"])
        }
    }

    // MARK: A delivery (a job per event)

    /// Sends one delivery: done when the receiver answered 2xx (or there is nothing left to
    /// send: the subscription or the call gone, the subscription paused); throws to try again
    /// later, and on the last attempt marks it failed first.
    func deliver(_ id: String, job: Job) async throws {
        let found = try await repository.read { tx -> (WebhookDelivery, WebhookSubscription)? in
            guard let delivery = try tx.delivery(id), let subscription = try tx.subscription(delivery.subscription, org: delivery.org) else { return nil }
            return (delivery, subscription)
        }
        guard let found, found.0.state == .pending else { return }
        let (delivery, subscription) = found
        guard subscription.isActive else { return try await record(delivery, state: .held) }
        let token = try open(subscription, "api_token", subscription.sealedToken)
        let data: [String: Any]
        do {
            data = try await self.data(of: delivery, fields: subscription.fields, options: Caller.actingForNobody(token: token).options)
        } catch let error as RPCError where error.code == .notFound {
            return try await record(delivery, state: .skipped)  // the call was deleted: nothing to tell
        } catch let error as RPCError where Self.tokenRefused(error) {
            try await pauseForToken(subscription, error)
            return try await record(delivery, state: .held)
        }
        let eventID = delivery.id
        let envelope: [String: Any] = ["id": eventID, "type": delivery.event.rawValue, "created_at": Self.rfc3339(delivery.occurredAt), "data": data]
        let body = try JSONSerialization.data(withJSONObject: envelope, options: [.sortedKeys, .withoutEscapingSlashes])
        let secret = try open(subscription, "secret", subscription.sealedSecret)
        let now = clock.nowUnixMs
        let signature = Self.signature(secret: secret, body: body, unixSeconds: now / 1000)
        let url = try open(subscription, "url", subscription.sealedURL)
        let final = job.attempts + 1 >= Self.deliveryAttempts
        var attempt = delivery
        attempt.attempts += 1
        attempt.lastAttemptAt = now
        let response: HTTPSResponse
        do {
            let address = try WebhookAddress(url)
            try await blocking.run { [configuration] in try address.checkReachable(allowPrivate: configuration.allowPrivateAddresses) }
            response = try await transport.send(HTTPSRequest(url: url, headers: [
                ("Content-Type", "application/json"), ("User-Agent", "CallTrace-Webhooks/1"),
                ("CallTrace-Signature", signature), ("CallTrace-Event-Id", eventID),
            ], body: body, timeout: Self.timeout))
        } catch {
            attempt.lastStatus = 0
            if final { attempt.state = .failed }
            let unanswered = attempt
            try await repository.write { tx in try tx.update(unanswered) }
            throw WebhookDeliveryError("\(subscription.host) did not answer: \(Self.describe(error))")
        }
        // The answer's body is never read into a log or stored: only its status.
        attempt.lastStatus = response.status
        if (200..<300).contains(response.status) {
            attempt.state = .delivered
            attempt.deliveredAt = clock.nowUnixMs
        } else if final {
            attempt.state = .failed
        }
        let answered = attempt
        try await repository.write { tx in try tx.update(answered) }
        guard answered.state != .delivered else { return }
        let reason = "\(subscription.host) answered \(response.status)"
        if response.status == 429 || response.status == 503, let seconds = response.headers["retry-after"].flatMap({ Int($0) }), seconds > 0 {
            throw RetryLater(reason, after: .seconds(min(seconds, 3600)))
        }
        throw WebhookDeliveryError(reason)
    }

    private func record(_ delivery: WebhookDelivery, state: WebhookDelivery.State) async throws {
        var changed = delivery
        changed.state = state
        let recorded = changed
        try await repository.write { tx in try tx.update(recorded) }
    }

    /// The chosen fields of the delivery's call, as transcript shows them to the subscription's token.
    private func data(of delivery: WebhookDelivery, fields: Set<WebhookField>, options: CallOptions) async throws -> [String: Any] {
        guard delivery.event != .test else { return [:] }
        let call = try await backend.calls.getCall(.with { $0.orgID = delivery.org; $0.callID = delivery.callID }, options: options).call
        var data: [String: Any] = ["call_id": delivery.callID]
        for field in fields {
            switch field {
            case .source: data["source"] = call.source
            case .direction: data["direction"] = call.direction == .outbound ? "outbound" : "inbound"
            case .startedAt: data["started_at"] = Self.rfc3339(call.startedAtUnixMs)
            case .durationSeconds: data["duration_seconds"] = Int(call.durationMs / 1000)
            case .outcome: data["outcome"] = APIValues.spelling(call.outcome)
            case .matterReference: if !call.matterReference.isEmpty { data["matter_reference"] = call.matterReference }
            case .callerNumber: if !call.callerNumber.isEmpty { data["caller_number"] = call.callerNumber }
            case .summary: break
            }
        }
        if fields.contains(.summary) {
            // Only the summary is taken from the answer; the transcript's words are never sent.
            let reading = try? await backend.transcripts.getTranscript(.with { $0.orgID = delivery.org; $0.callID = delivery.callID }, options: options)
            if let reading, reading.hasAnalysis, !reading.analysis.summary.isEmpty { data["summary"] = reading.analysis.summary }
        }
        return data
    }

    /// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: what the receiver checks.
    static func signature(secret: String, body: Data, unixSeconds: Int64) -> String {
        let signed = Data("\(unixSeconds).".utf8) + body
        return "t=\(unixSeconds),v1=\(MessageSignature.hex(MessageSignature.hmacSHA256(key: Data(secret.utf8), message: signed)))"
    }

    static func rfc3339(_ unixMs: Int64) -> String {
        Date(timeIntervalSince1970: Double(unixMs) / 1000).formatted(.iso8601)
    }

    /// An error for a log or a job's last error: a service's status and message (ours carry no
    /// secret, token or phone number), curl's reason (names the host only), or the type alone.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let rpc as RPCError: "\(rpc.code): \(rpc.message)"
        case let https as HTTPSError: https.description
        case let webhook as WebhookDeliveryError: webhook.description
        default: "\(type(of: error))"
        }
    }
}

/// A delivery that did not get a 2xx answer: the host and the status, never the URL's path or
/// query, the body or the answer.
struct WebhookDeliveryError: Error, CustomStringConvertible, Sendable {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Reads new call events for every active webhook (scheduled every `webhook_poll_seconds`).
struct PollWebhooks: PayloadFreeJob {
    static let kind = "web.webhooks_poll"
}

/// Sends one event to one webhook.
struct DeliverWebhook: IdentifiedJob {
    static let kind = "web.webhook_deliver"
    let id: String
}

struct PollWebhooksHandler: DurableJobHandler {
    let rules: WebhookRules
    func run(_ work: PollWebhooks, job: Job) async throws -> JobOutcome {
        try await rules.poll()
        return .done
    }
}

struct DeliverWebhookHandler: DurableJobHandler {
    let rules: WebhookRules
    func run(_ work: DeliverWebhook, job: Job) async throws -> JobOutcome {
        try await rules.deliver(work.id, job: job)
        return .done
    }
}
