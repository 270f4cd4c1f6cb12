import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import ComplianceDeadlines
import Foundation

/// Each morning (07:30 London), a firm with subject requests overdue or due within 5 working days
/// hears of them, by e-mail, whoever there chose it (issue 32): counts and the earliest due date,
/// never who asked or what. One alert a firm a day (identity sends once per key).
struct SubjectRequestsDue: PayloadFreeJob {
    static let kind = "compliance.requests_due_alerts"
    /// "Due soon": within this many working days of today, in the request's nation.
    static let workingDays = 5
}

extension SubjectRequestRules {
    /// What the alert tells `org` today: how many open requests are overdue, how many due within
    /// 5 working days, and the earliest due date; nil when none is either.
    func dueAlertFields(org: String) async throws -> [String: String]? {
        let today = self.today
        let open = try await list(org: org, view: .open)
        let overdue = open.filter { $0.due < today }
        let soon = open.filter { request, due in
            today <= due && due <= DeadlineEngine.workingDays(SubjectRequestsDue.workingDays, after: today, nation: request.nation, holidays: holidays)
        }
        guard let earliest = (overdue + soon).map(\.due).min() else { return nil }
        // The due day at noon UTC: the same day in London whatever the season.
        let earliestMs = Int64(earliest.ordinal) * 86_400_000 + 43_200_000
        return ["overdue": String(overdue.count), "due_soon": String(soon.count), "earliest_due_unix_ms": String(earliestMs)]
    }
}

/// Runs the daily `compliance.requests_due_alerts`: each firm with open requests, through identity.
struct SubjectRequestsDueJob: DurableJobHandler {
    let rules: SubjectRequestRules
    let identity: Calltrace_Identity_V1_AlertServiceClient

    func run(_ work: SubjectRequestsDue, job: Job) async throws -> JobOutcome {
        let orgs = try await rules.repository.read { tx in try tx.organisationsWithOpenRequests() }
        let today = rules.today
        for org in orgs {
            guard let fields = try await rules.dueAlertFields(org: org) else { continue }
            _ = try await identity.notify(.with {
                $0.orgID = org
                $0.kind = .subjectRequestsDue
                $0.fields = fields
                $0.idempotencyKey = "compliance:requests_due:\(today)"
            }, options: CallOptions(timeout: .seconds(30), failFast: true))
        }
        return .done
    }
}
