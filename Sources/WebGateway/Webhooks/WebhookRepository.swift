import CallTraceStorage
import Foundation

/// The web gateway's own storage: the firms' webhook subscriptions and their deliveries, and
/// nothing of a call's content. Each `read`/`write` is one transaction, the host's job queue
/// through `connection`.
protocol WebhookRepository: Sendable {
    func read<T: Sendable>(_ body: @escaping @Sendable (any WebhookTransaction) throws -> T) async throws -> T
    func write<T: Sendable>(_ body: @escaping @Sendable (any WebhookTransaction) throws -> T) async throws -> T
}

protocol WebhookTransaction {
    var connection: Connection { get }

    func insert(_ subscription: WebhookSubscription) throws
    func subscription(_ id: String, org: String) throws -> WebhookSubscription?
    /// The firm's subscriptions, oldest first.
    func subscriptions(org: String) throws -> [WebhookSubscription]
    /// Every active subscription, for the poller.
    func activeSubscriptions() throws -> [WebhookSubscription]
    func setCursor(_ cursor: Int64, subscription id: String) throws
    /// Pauses (a reason) or resumes (nil); whether it changed.
    func setPaused(_ reason: String?, subscription id: String) throws -> Bool
    /// The subscription and its deliveries; whether it was there.
    func deleteSubscription(_ id: String, org: String) throws -> Bool

    func insert(_ delivery: WebhookDelivery) throws
    func delivery(_ id: String) throws -> WebhookDelivery?
    func update(_ delivery: WebhookDelivery) throws
    /// The subscription's latest deliveries, newest first.
    func deliveries(subscription id: String, limit: Int) throws -> [WebhookDelivery]
    /// The ids of the subscription's deliveries in `state`.
    func deliveryIDs(subscription id: String, state: WebhookDelivery.State) throws -> [String]
    /// Finished deliveries (delivered, failed, skipped) made before `cutoff` deleted; how many.
    func deleteFinishedDeliveries(before cutoff: Int64) throws -> Int
}

/// The SQL, all of it, in the subset SQLite and PostgreSQL share.
struct SQLiteWebhookRepository: WebhookRepository, SQLiteRepository {
    static let schema = """
        CREATE TABLE webhook_subscriptions (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            host TEXT NOT NULL,
            url BLOB NOT NULL,
            events TEXT NOT NULL,
            fields TEXT NOT NULL,
            secret BLOB NOT NULL,
            api_token BLOB NOT NULL,
            api_token_id TEXT NOT NULL,
            last_sequence_no INTEGER NOT NULL,
            created_by TEXT NOT NULL,
            created_at_unix_ms INTEGER NOT NULL,
            paused_reason TEXT
        );
        CREATE INDEX webhook_subscriptions_by_org ON webhook_subscriptions (org_id, created_at_unix_ms);
        CREATE TABLE webhook_deliveries (
            id TEXT PRIMARY KEY,
            subscription_id TEXT NOT NULL,
            org_id TEXT NOT NULL,
            sequence_no INTEGER NOT NULL,
            event TEXT NOT NULL,
            call_id TEXT NOT NULL,
            occurred_at_unix_ms INTEGER NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            last_status INTEGER NOT NULL,
            last_attempt_at_unix_ms INTEGER NOT NULL,
            delivered_at_unix_ms INTEGER,
            created_at_unix_ms INTEGER NOT NULL
        );
        CREATE INDEX webhook_deliveries_by_subscription ON webhook_deliveries (subscription_id, created_at_unix_ms);
        """

    let database: Database

    static func statements(on connection: Connection) -> any WebhookTransaction { Transaction(connection: connection) }

    struct Transaction: WebhookTransaction {
        let connection: Connection

        static let subscriptionColumns = """
            id, org_id, host, url, events, fields, secret, api_token, api_token_id, last_sequence_no, created_by, created_at_unix_ms, paused_reason
            """

        func insert(_ s: WebhookSubscription) throws {
            try connection.execute("INSERT INTO webhook_subscriptions (\(Self.subscriptionColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                   bindings: [s.id, s.org, s.host, s.sealedURL, Self.joined(s.events.map(\.rawValue)),
                                              Self.joined(s.fields.map(\.rawValue)), s.sealedSecret, s.sealedToken, s.tokenID, s.cursor,
                                              s.createdBy, s.createdAt, s.pausedReason])
        }

        func subscription(_ id: String, org: String) throws -> WebhookSubscription? {
            try connection.query("SELECT \(Self.subscriptionColumns) FROM webhook_subscriptions WHERE id = ? AND org_id = ?", id, org)
                .first.flatMap(Self.subscription)
        }

        func subscriptions(org: String) throws -> [WebhookSubscription] {
            try connection.query("SELECT \(Self.subscriptionColumns) FROM webhook_subscriptions WHERE org_id = ? ORDER BY created_at_unix_ms, id", org)
                .compactMap(Self.subscription)
        }

        func activeSubscriptions() throws -> [WebhookSubscription] {
            try connection.query("SELECT \(Self.subscriptionColumns) FROM webhook_subscriptions WHERE paused_reason IS NULL ORDER BY org_id, id")
                .compactMap(Self.subscription)
        }

        func setCursor(_ cursor: Int64, subscription id: String) throws {
            try connection.execute("UPDATE webhook_subscriptions SET last_sequence_no = ? WHERE id = ?", cursor, id)
        }

        func setPaused(_ reason: String?, subscription id: String) throws -> Bool {
            if let reason {
                return try connection.execute("UPDATE webhook_subscriptions SET paused_reason = ? WHERE id = ? AND paused_reason IS NULL", reason, id) == 1
            }
            return try connection.execute("UPDATE webhook_subscriptions SET paused_reason = NULL WHERE id = ? AND paused_reason IS NOT NULL", id) == 1
        }

        func deleteSubscription(_ id: String, org: String) throws -> Bool {
            try connection.execute("DELETE FROM webhook_deliveries WHERE subscription_id = ? AND org_id = ?", id, org)
            return try connection.execute("DELETE FROM webhook_subscriptions WHERE id = ? AND org_id = ?", id, org) == 1
        }

        static let deliveryColumns = """
            id, subscription_id, org_id, sequence_no, event, call_id, occurred_at_unix_ms, state, attempts, last_status,
            last_attempt_at_unix_ms, delivered_at_unix_ms, created_at_unix_ms
            """

        func insert(_ d: WebhookDelivery) throws {
            try connection.execute("INSERT INTO webhook_deliveries (\(Self.deliveryColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                   bindings: [d.id, d.subscription, d.org, d.sequence, d.event.rawValue, d.callID, d.occurredAt, d.state.rawValue,
                                              d.attempts, d.lastStatus, d.lastAttemptAt, d.deliveredAt, d.createdAt])
        }

        func delivery(_ id: String) throws -> WebhookDelivery? {
            try connection.query("SELECT \(Self.deliveryColumns) FROM webhook_deliveries WHERE id = ?", id).first.flatMap(Self.delivery)
        }

        func update(_ d: WebhookDelivery) throws {
            try connection.execute("""
                UPDATE webhook_deliveries SET state = ?, attempts = ?, last_status = ?, last_attempt_at_unix_ms = ?, delivered_at_unix_ms = ?
                WHERE id = ?
                """, bindings: [d.state.rawValue, d.attempts, d.lastStatus, d.lastAttemptAt, d.deliveredAt, d.id])
        }

        func deliveries(subscription id: String, limit: Int) throws -> [WebhookDelivery] {
            try connection.query("""
                SELECT \(Self.deliveryColumns) FROM webhook_deliveries WHERE subscription_id = ?
                ORDER BY created_at_unix_ms DESC, sequence_no DESC LIMIT \(limit)
                """, id).compactMap(Self.delivery)
        }

        func deliveryIDs(subscription id: String, state: WebhookDelivery.State) throws -> [String] {
            try connection.query("SELECT id FROM webhook_deliveries WHERE subscription_id = ? AND state = ? ORDER BY sequence_no", id, state.rawValue)
                .compactMap { $0.text("id") }
        }

        func deleteFinishedDeliveries(before cutoff: Int64) throws -> Int {
            try connection.execute("DELETE FROM webhook_deliveries WHERE state IN ('delivered', 'failed', 'skipped') AND created_at_unix_ms < ?", cutoff)
        }

        private static func joined(_ names: [String]) -> String { names.sorted().joined(separator: ",") }

        private static func names(_ text: String?) -> [String] { (text ?? "").split(separator: ",").map(String.init) }

        static func subscription(_ row: Row) -> WebhookSubscription? {
            guard let id = row.text("id"), let org = row.text("org_id"), let url = row.blob("url"), let secret = row.blob("secret"),
                  let token = row.blob("api_token") else { return nil }
            return WebhookSubscription(id: id, org: org, host: row.text("host") ?? "", sealedURL: url,
                                       events: Set(names(row.text("events")).compactMap(WebhookEvent.init(rawValue:))),
                                       fields: Set(names(row.text("fields")).compactMap(WebhookField.init(rawValue:))),
                                       sealedSecret: secret, sealedToken: token, tokenID: row.text("api_token_id") ?? "",
                                       cursor: row.int("last_sequence_no") ?? 0, createdBy: row.text("created_by") ?? "",
                                       createdAt: row.int("created_at_unix_ms") ?? 0, pausedReason: row.text("paused_reason"))
        }

        static func delivery(_ row: Row) -> WebhookDelivery? {
            guard let id = row.text("id"), let subscription = row.text("subscription_id"), let org = row.text("org_id"),
                  let event = row.text("event").flatMap(WebhookEvent.init(rawValue:)),
                  let state = row.text("state").flatMap(WebhookDelivery.State.init(rawValue:)) else { return nil }
            return WebhookDelivery(id: id, subscription: subscription, org: org, sequence: row.int("sequence_no") ?? 0, event: event,
                                   callID: row.text("call_id") ?? "", occurredAt: row.int("occurred_at_unix_ms") ?? 0, state: state,
                                   attempts: Int(row.int("attempts") ?? 0), lastStatus: Int(row.int("last_status") ?? 0),
                                   lastAttemptAt: row.int("last_attempt_at_unix_ms") ?? 0, deliveredAt: row.int("delivered_at_unix_ms"),
                                   createdAt: row.int("created_at_unix_ms") ?? 0)
        }
    }
}
