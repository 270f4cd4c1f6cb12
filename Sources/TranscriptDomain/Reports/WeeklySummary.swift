import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import Foundation

/// Monday's e-mail (issue 32): last week's calls, new enquiries and matters opened by source, for
/// each firm that had calls, to whoever chose it. Every morning at 07:00 London the schedule
/// looks for the last whole week (Monday to Monday, London time) and queues one job a firm, keyed
/// by firm and week: a day the service was down is made up the next morning, and identity sends
/// once per key, so no firm hears of a week twice.
struct WeeklySummary: DurableJob {
    static let kind = "transcript.weekly_summary"
    static let london = TimeZone(identifier: "Europe/London")!
    /// The most sources the e-mail lists (the busiest first).
    static let rowLimit = 20

    let org: String
    /// The week's Monday, 00:00 London time.
    let weekStart: Int64
    let weekEnd: Int64

    var key: String { "transcript:weekly_summary:\(weekStart)" }

    /// The schedule's daily job.
    struct Daily: PayloadFreeJob { static let kind = "transcript.weekly_summaries" }

    /// The last whole week before `now`, Monday 00:00 to Monday 00:00 London time (a week of 167
    /// or 169 hours when the clocks change).
    static func lastWeek(before now: Int64) -> (start: Int64, end: Int64) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = london
        calendar.firstWeekday = 2
        let date = Date(timeIntervalSince1970: TimeInterval(now) / 1000)
        let thisWeek = calendar.dateInterval(of: .weekOfYear, for: date)!.start
        let previous = calendar.date(byAdding: .weekOfYear, value: -1, to: thisWeek)!
        return (Int64(previous.timeIntervalSince1970 * 1000), Int64(thisWeek.timeIntervalSince1970 * 1000))
    }
}

extension CallRules {
    /// The template's fields for `org`'s week: totals and a line a source (tab-separated: source,
    /// calls, new enquiries, matters opened), busiest first. Nil for a week without calls.
    func weeklySummaryFields(org: String, from: Int64, before: Int64) async throws -> [String: String]? {
        let report = try await attribution(org: org, from: from, before: before, by: .source)
        guard report.total.calls > 0 else { return nil }
        let rows = report.lines.sorted { ($1.calls, $0.key) < ($0.calls, $1.key) }.prefix(WeeklySummary.rowLimit)
            .map { [$0.key, String($0.calls), String($0.newEnquiries), String($0.mattersOpened)].joined(separator: "\t") }
        return ["week_start_unix_ms": String(from), "calls": String(report.total.calls), "new_enquiries": String(report.total.newEnquiries),
                "matters_opened": String(report.total.mattersOpened), "rows": rows.joined(separator: "\n")]
    }
}

/// Runs the daily `transcript.weekly_summaries`: one `transcript.weekly_summary` a firm with
/// calls last week (keyed, so the next morning's run queues none again while they wait).
struct WeeklySummaryJobs: DurableJobHandler {
    let rules: CallRules
    let jobs: JobQueue

    func run(_ work: WeeklySummary.Daily, job: Job) async throws -> JobOutcome {
        let week = WeeklySummary.lastWeek(before: rules.clock.nowUnixMs)
        let orgs = try await rules.repository.read { tx in try tx.organisations(withCallsFrom: week.start, before: week.end) }
        try await rules.repository.write { [jobs] tx in
            for org in orgs {
                let summary = WeeklySummary(org: org, weekStart: week.start, weekEnd: week.end)
                try jobs.enqueue(summary, idempotencyKey: "weekly_summary:\(org):\(week.start)", in: tx.connection)
            }
        }
        return .done
    }
}

/// Runs `transcript.weekly_summary`: the firm's week to identity, as transcript.
struct WeeklySummaryJobHandler: DurableJobHandler {
    let rules: CallRules
    let identity: Calltrace_Identity_V1_AlertServiceClient

    func run(_ work: WeeklySummary, job: Job) async throws -> JobOutcome {
        guard let fields = try await rules.weeklySummaryFields(org: work.org, from: work.weekStart, before: work.weekEnd) else { return .done }
        _ = try await identity.notify(.with {
            $0.orgID = work.org
            $0.kind = .weeklySummary
            $0.fields = fields
            $0.idempotencyKey = work.key
        }, options: CallOptions(timeout: .seconds(30), failFast: true))
        return .done
    }
}
