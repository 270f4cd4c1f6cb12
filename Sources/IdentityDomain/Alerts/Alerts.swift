import CallTraceKeys
import CallTraceProto
import CallTraceServiceHost
import Foundation

/// A person's choice of one alert kind, as their settings page shows it.
struct AlertChoice: Sendable, Equatable {
    let kind: AlertKind
    let enabled: Bool
    /// The person's role may receive it.
    let available: Bool
}

/// E-mail alerts (issue 32): each person chooses theirs; the services and gateways that know a
/// fact ask identity to tell whoever chose it (`notify`), and identity alone turns the fact into
/// words and addresses, one message a person, in the transaction that records it as sent.
extension IdentityRules {
    /// A sender retries for less than this; the record of what was sent goes after it.
    static let alertsSentKeptMS: Int64 = 30 * 86_400_000

    /// The caller's choices, every kind listed.
    func alertChoices(of me: Bearer) async throws -> [AlertChoice] {
        let chosen = Set(try await repository.read { tx in try tx.alertKinds(user: me.user, org: me.org) })
        return Self.choices(chosen, role: me.role)
    }

    /// Replaces the caller's choices (a session's call: an API token changes nothing of its
    /// person's e-mail). A kind the role cannot receive is refused.
    func setAlertChoices(_ kinds: [AlertKind], for me: Bearer) async throws -> [AlertChoice] {
        guard case .session = me.credential else { throw Self.sessionNeeded }
        let role = RoleTable.permissions(of: me.role)
        let beyond = kinds.filter { !role.contains($0.permission) }
        guard beyond.isEmpty else {
            throw DomainError.notAllowed("role \(me.role) cannot receive \(beyond.map { "\($0.proto)" }.joined(separator: ", ")) alerts: "
                                         + "they need \(Set(beyond.map { RoleTable.name(of: $0.permission) }).sorted().joined(separator: ", "))")
        }
        let kinds = Set(kinds)
        try await repository.write { [self] tx in
            let before = Set(try tx.alertKinds(user: me.user, org: me.org).compactMap(AlertKind.init(rawValue:)))
            guard before != kinds else { return }
            try tx.setAlertKinds(kinds.map(\.rawValue), user: me.user, org: me.org)
            try audit(org: me.org, actor: me.actor, action: .alertsChanged, resource: .user(me.user),
                      detail: "alerts: \(kinds.map { "\($0.proto)" }.sorted().joined(separator: " "))", in: tx)
        }
        return Self.choices(kinds, role: me.role)
    }

    static func choices(_ chosen: Set<AlertKind>, role: Calltrace_Identity_V1_Role) -> [AlertChoice] {
        let permissions = RoleTable.permissions(of: role)
        return AlertKind.allCases.map { kind in
            let available = permissions.contains(kind.permission)
            return AlertChoice(kind: kind, enabled: available && chosen.contains(kind), available: available)
        }
    }

    static func choices(_ chosen: Set<Int>, role: Calltrace_Identity_V1_Role) -> [AlertChoice] {
        choices(Set(chosen.compactMap(AlertKind.init(rawValue:))), role: role)
    }

    /// Tells `alert` to the active people of `org` who chose its kind and whose role may see it
    /// now; how many. Sent once per `key`: a repeat answers the first count and sends nothing.
    /// An organisation that is not active tells no one.
    func notify(_ alert: Alert, org: String, key: String, by sender: String) async throws -> Int {
        try OrganizationID.validate(org)
        let key = try DomainText.line(key, "idempotency_key", max: 200, required: true)
        let now = self.now()
        return try await repository.write { [self] tx in
            if let sent = try tx.alertSent(org: org, key: key) { return sent }
            var recipients: [UserRecord] = []
            if try tx.organizationStatus(org) == "active" {
                recipients = try tx.alertRecipients(org: org, kind: alert.kind.rawValue)
                    .filter { RoleTable.permissions(of: Calltrace_Identity_V1_Role(rawValue: $0.role) ?? .unspecified).contains(alert.kind.permission) }
            }
            if !recipients.isEmpty {
                let firm = try tx.organizations(only: org).first.map {
                    String(decoding: try keys.open($0.sealedName, org: org, table: "organizations", column: "name", row: org), as: UTF8.self)
                } ?? "your firm"
                let words = alert.words(firm: firm, linkBase: mailLinkBase)
                for person in recipients {
                    let email = try keys.open(person.sealedEmail, org: org, table: "users", column: "email", row: person.id)
                    try delivery.deliver(AlertMessage(alert: alert.kind.name, orgID: org, userID: person.id, email: String(decoding: email, as: UTF8.self),
                                                      subject: words.subject, body: words.body, createdAtUnixMs: now), in: tx.connection)
                }
                try audit(org: org, actor: sender, action: .alertSent,
                          resource: alert.fields["call_id"].map(AuditResource.call) ?? .organisation(org),
                          detail: "\(alert.kind.name) to \(recipients.count) \(recipients.count == 1 ? "person" : "people"): "
                              + recipients.map { "user:\($0.id)" }.joined(separator: " "), in: tx)
            }
            try tx.recordAlertSent(org: org, key: key, kind: alert.kind.rawValue, recipients: recipients.count, at: now)
            return recipients.count
        }
    }
}

extension AlertKind {
    /// As the outbox and the audit trail spell it: `missed_call`.
    var name: String {
        switch self {
        case .missedCall: "missed_call"
        case .newEnquiry: "new_enquiry"
        case .subjectRequestsDue: "subject_requests_due"
        case .weeklySummary: "weekly_summary"
        }
    }
}
