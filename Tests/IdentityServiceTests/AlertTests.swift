import CallTraceProto
import CallTraceRPC
import CallTraceStorage
import CallTraceTestSupport
import Foundation
@testable import IdentityDomain
import Testing

/// E-mail alerts (issue 32) from identity's side: each person chooses theirs; a service tells a
/// fact and identity alone picks who hears of it and writes the e-mail, once per key, never a
/// caller's number.
@Suite("Identity: e-mail alerts each person chooses, told by the services, once, without a caller's number")
struct AlertTests {
    typealias Alerts = Calltrace_Identity_V1_AlertService
    typealias Identity = Calltrace_Identity_V1_IdentityService

    func choose(_ kinds: [Calltrace_Identity_V1_AlertKind], _ token: String, org: String, in deployment: IdentityDeployment) async throws
        -> [Calltrace_Identity_V1_AlertPreference] {
        try await deployment.gateway.unary(Alerts.setAlertPreferences, .with { $0.orgID = org; $0.enabled = kinds },
                                           options: IdentityDeployment.bearer(token)).preferences
    }

    func notify(_ kind: Calltrace_Identity_V1_AlertKind, _ fields: [String: String], key: String, org: String, via client: RPCClient) async throws -> UInt32 {
        try await client.unary(Alerts.notify, .with { $0.orgID = org; $0.kind = kind; $0.fields = fields; $0.idempotencyKey = key }).recipients
    }

    static let missed = ["call_id": "call_7f3a", "source": "Google Ads 0800 123 4567", "started_at_unix_ms": "1764943200000", "outcome": "voicemail"]

    @Test("Every kind is listed, off until chosen; a role that cannot see what a kind tells cannot choose it; an API token changes nothing")
    func choices() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        let analyst = try await deployment.invite(.analyst, in: org, adminToken: admin, email: "analyst@firm.example")

        let initial = try await deployment.gateway.unary(Alerts.getAlertPreferences, .with { $0.orgID = org }, options: IdentityDeployment.bearer(admin))
        #expect(initial.preferences.map(\.kind) == [.missedCall, .newEnquiry, .subjectRequestsDue, .weeklySummary])
        #expect(initial.preferences.allSatisfy { !$0.enabled && $0.available && !$0.description_p.isEmpty })
        let analystView = try await deployment.gateway.unary(Alerts.getAlertPreferences, .with { $0.orgID = org }, options: IdentityDeployment.bearer(analyst))
        #expect(analystView.preferences.filter(\.available).map(\.kind) == [.missedCall, .weeklySummary], "analysts see call metadata and reports only")

        let chosen = try await choose([.missedCall, .newEnquiry, .missedCall], admin, org: org, in: deployment)
        #expect(chosen.filter(\.enabled).map(\.kind) == [.missedCall, .newEnquiry])
        let again = try await deployment.gateway.unary(Alerts.getAlertPreferences, .with { $0.orgID = org }, options: IdentityDeployment.bearer(admin))
        #expect(again.preferences.filter(\.enabled).map(\.kind) == [.missedCall, .newEnquiry])

        #expect(await code { _ = try await choose([.newEnquiry], analyst, org: org, in: deployment) } == .permissionDenied)
        #expect(await code { _ = try await choose([.subjectRequestsDue], analyst, org: org, in: deployment) } == .permissionDenied)
        #expect(try await choose([.weeklySummary], analyst, org: org, in: deployment).filter(\.enabled).map(\.kind) == [.weeklySummary])

        let apiToken = try await deployment.createApiToken(admin, org: org, [.reportsRead]).token
        #expect(await code { _ = try await choose([], apiToken, org: org, in: deployment) } == .permissionDenied, "a session's call")
        #expect(await code {
            _ = try await deployment.gateway.unary(Alerts.getAlertPreferences, .with { $0.orgID = org })
        } == .unauthenticated)
        let (otherOrg, _) = try await deployment.organisationWithAdmin(email: "admin@other.example")
        #expect(await code { _ = try await choose([.missedCall], admin, org: otherOrg, in: deployment) } == .permissionDenied,
                "another firm's choices are nobody's to set")

        let events = try await deployment.auditEvents(org: org).filter { $0.action == "alerts.changed" }
        #expect(events.count == 2, "the admin's choice and the analyst's; the refused ones changed nothing")
    }

    @Test("A service's fact reaches exactly those who chose it and may see it, once per key, in words identity writes, with no caller's number")
    func notifying() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        let member = try await deployment.invite(.member, in: org, adminToken: admin, email: "member@firm.example")
        let analyst = try await deployment.invite(.analyst, in: org, adminToken: admin, email: "analyst@firm.example")
        _ = try await deployment.invite(.member, in: org, adminToken: admin, email: "quiet@firm.example")
        _ = try await choose([.missedCall, .newEnquiry], admin, org: org, in: deployment)
        _ = try await choose([.missedCall, .newEnquiry], member, org: org, in: deployment)
        _ = try await choose([.missedCall], analyst, org: org, in: deployment)
        let service = deployment.media

        #expect(try await notify(.missedCall, Self.missed, key: "transcript:missed:call_7f3a", org: org, via: service) == 3)
        let missed = try deployment.setup.deliveredAlerts()
        #expect(Set(missed.map(\.email)) == ["admin@firm.example", "member@firm.example", "analyst@firm.example"])
        for mail in missed {
            #expect(mail.alert == "missed_call")
            #expect(mail.subject == "Voicemail left: Google Ads [number], Fri 5 Dec 14:00", "\(mail.subject)")
            #expect(mail.body.contains("/calls/call_7f3a"))
            #expect(mail.body.contains("Smith & Co Solicitors"))
            #expect(!mail.body.contains("0800") && !mail.body.contains("4567"), "no number in an alert")
        }
        #expect(try await notify(.missedCall, Self.missed, key: "transcript:missed:call_7f3a", org: org, via: service) == 3, "answered as the first")
        #expect(try deployment.setup.deliveredAlerts().count == 3, "and sent once")

        // A new enquiry tells its summary: only to those who may read summaries and chose it.
        let enquiry = ["call_id": "call_8b", "source": "Website", "started_at_unix_ms": "1764943200000", "practice_area": "Family",
                       "summary": "The caller wants advice on a child arrangements order."]
        #expect(try await notify(.newEnquiry, enquiry, key: "transcript:new_enquiry:call_8b", org: org, via: service) == 2)
        let enquiries = try deployment.setup.deliveredAlerts().filter { $0.alert == "new_enquiry" }
        #expect(Set(enquiries.map(\.email)) == ["admin@firm.example", "member@firm.example"])
        #expect(enquiries.allSatisfy { $0.subject == "New enquiry (Family): Website, Fri 5 Dec 14:00" && $0.body.contains("child arrangements order") })

        // The role at send time decides: a member made analyst hears of no more summaries.
        let memberID = try await deployment.authorize(member, org: org, .reportsRead).userID
        _ = try await deployment.gateway.unary(Identity.changeUserRole, .with { $0.orgID = org; $0.userID = memberID; $0.role = .analyst },
                                               options: IdentityDeployment.bearer(admin))
        #expect(try await notify(.newEnquiry, enquiry, key: "transcript:new_enquiry:call_9", org: org, via: service) == 1)

        // The audit trail names the kind and who was told, never the text.
        let sent = try await deployment.auditEvents(org: org).filter { $0.action == "alert.sent" }
        #expect(sent.count == 3)
        #expect(sent.allSatisfy { !$0.detail.contains("child arrangements") && !$0.detail.contains("0800") })
        #expect(sent.first?.resource == "call:call_7f3a")

        // A gateway may tell too; an operator may not; a web user's token is no way in.
        #expect(try await notify(.weeklySummary, ["week_start_unix_ms": "1764547200000", "calls": "3", "new_enquiries": "1", "matters_opened": "0",
                                                  "rows": "Google Ads\t2\t1\t0\nWebsite\t1\t0\t0"],
                                 key: "transcript:weekly_summary:1764547200000", org: org, via: deployment.gateway) == 0, "nobody chose it")
        #expect(await code {
            _ = try await notify(.missedCall, Self.missed, key: "operator-try", org: org, via: deployment.operatorClient)
        } == .permissionDenied)
    }

    @Test("A malformed fact is refused whole and sends nothing; a firm that is not active tells no one")
    func refusals() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        _ = try await choose([.missedCall, .subjectRequestsDue], admin, org: org, in: deployment)
        let service = deployment.media
        var unknown = Self.missed; unknown["caller_number"] = "+447700900123"
        var badOutcome = Self.missed; badOutcome["outcome"] = "answered"
        var noCall = Self.missed; noCall["call_id"] = nil
        var badID = Self.missed; badID["call_id"] = "../../admin"
        var badSource = Self.missed; badSource["source"] = "Ads\u{1b}[31m"
        var badTime = Self.missed; badTime["started_at_unix_ms"] = "yesterday"
        for fields in [unknown, badOutcome, noCall, badID, badSource, badTime] {
            #expect(await code { _ = try await notify(.missedCall, fields, key: "k", org: org, via: service) } == .invalidArgument, "\(fields)")
        }
        #expect(await code { _ = try await notify(.unspecified, Self.missed, key: "k", org: org, via: service) } == .invalidArgument)
        #expect(await code { _ = try await notify(.missedCall, Self.missed, key: "", org: org, via: service) } == .invalidArgument)
        #expect(await code { _ = try await notify(.missedCall, Self.missed, key: "k", org: "not an org", via: service) } == .invalidArgument)
        #expect(await code {
            _ = try await notify(.subjectRequestsDue, ["due_soon": "-1", "overdue": "0"], key: "k", org: org, via: service)
        } == .invalidArgument)
        #expect(await code {
            _ = try await notify(.weeklySummary, ["week_start_unix_ms": "0", "calls": "1", "new_enquiries": "0", "matters_opened": "0",
                                                  "rows": "Ads\t1\t0"], key: "k", org: org, via: service)
        } == .invalidArgument, "a row of three cells")
        #expect(try deployment.setup.deliveredAlerts().isEmpty)

        #expect(try await notify(.subjectRequestsDue, ["due_soon": "2", "overdue": "1", "earliest_due_unix_ms": "1764936000000"],
                                 key: "compliance:requests_due:2025-12-05", org: org, via: service) == 1)
        let due = try #require(try deployment.setup.deliveredAlerts().last)
        #expect(due.subject == "Subject requests: 1 overdue, 2 due within 5 working days")
        #expect(due.body.contains("/requests") && due.body.contains("Fri 5 Dec 2025"))

        _ = try await deployment.operatorClient.unary(Identity.suspendOrganization, .with { $0.orgID = org; $0.reason = "unpaid" })
        #expect(try await notify(.missedCall, Self.missed, key: "after-suspension", org: org, via: service) == 0)
        #expect(try deployment.setup.deliveredAlerts().count == 1)
    }

    @Test("A number in a source's name never reaches an alert, however it is spaced")
    func numbersMasked() {
        #expect(Alert.withoutNumbers("Google Ads 0800 123 4567") == "Google Ads [number]")
        #expect(Alert.withoutNumbers("Yell (020) 7946-0958 listing") == "Yell [number] listing")
        #expect(Alert.withoutNumbers("+44 7700 900123") == "[number]")
        #expect(Alert.withoutNumbers("Spring 2025 campaign, 3 offices") == "Spring 2025 campaign, 3 offices")
    }
}
