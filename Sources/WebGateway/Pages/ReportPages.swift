import CallTraceProto
import Foundation
import Hummingbird

/// Reports, for reports.read (analysts too): the attribution report — which marketing brings
/// calls, genuine new enquiries and matters — by source, channel or campaign over a chosen
/// period, as a table, a chart drawn on the server, and a CSV download. One transcript
/// `AttributionReport` call under the person's token for each.
struct ReportPages: Sendable {
    let app: WebApp
    /// The chart's bars (the table has every row).
    static let chartRows = 12

    func register(on router: Router<WebContext>) {
        router.get("/reports") { request, context in try await page(request, context) }
        router.get("/reports.csv") { request, context in try await csv(request, context) }
        router.post("/reports/conversions.csv") { request, context in try await conversions(request, context) }
    }

    /// Google Ads' click-conversion import file for the period (a POST: those given are recorded
    /// as exported, so the next file leaves them out unless asked).
    private func conversions(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        let period = try Period.read(form, now: app.clock.nowUnixMs, defaultDays: 30)
        let export = try await app.backend.websites.exportConversions(.with {
            $0.orgID = session.orgID; $0.fromUnixMs = period.fromUnixMs; $0.beforeUnixMs = period.beforeUnixMs
            $0.includeExported = form["again"] == "yes"
        }, options: context.caller.options)
        let name = "google-ads-conversions-\(period.from.isEmpty ? "start" : period.from)-to-\(period.to.isEmpty ? "now" : period.to).csv"
        return Response(status: .ok, headers: StreamedDownload.headers(filename: name, type: "text/csv; charset=utf-8"),
                        body: .init(byteBuffer: ByteBuffer(string: export.googleAdsCsv)))
    }

    static let groupings: [(value: String, label: String, grouping: Calltrace_Transcript_V1_ReportGrouping)] = [
        ("source", "Source", .source), ("channel", "Channel", .channel), ("campaign", "Campaign", .campaign),
        ("utm-campaign", "Website campaign", .utmCampaign), ("keyword", "Keyword", .keyword), ("landing-page", "Landing page", .landingPage),
        ("referrer", "Referrer", .referrer),
    ]

    private func report(_ request: Request, _ context: WebContext)
        async throws -> (Calltrace_Transcript_V1_AttributionReportResponse, Period, (value: String, label: String, grouping: Calltrace_Transcript_V1_ReportGrouping)) {
        let session = try app.session(context)
        let query = request.query
        let period = try Period.read(query, now: app.clock.nowUnixMs, defaultDays: 30)
        guard let by = Self.groupings.first(where: { $0.value == (query["by"].isEmpty ? "source" : query["by"]) }) else {
            throw PageError.invalid("Group the report by source, channel, campaign, website campaign, keyword, landing page or referrer.")
        }
        let report = try await app.backend.calls.attributionReport(.with {
            $0.orgID = session.orgID
            $0.fromUnixMs = period.fromUnixMs
            $0.beforeUnixMs = period.beforeUnixMs
            $0.groupBy = by.grouping
        }, options: context.caller.options)
        return (report, period, by)
    }

    private func page(_ request: Request, _ context: WebContext) async throws -> Response {
        let (chrome, permissions) = try await app.chrome(context, current: "Reports")
        let (report, period, by) = try await report(request, context)
        let rows = report.rows  // biggest first, as transcript orders them
        var data: [String: Any] = [
            "from": period.from, "to": period.to, "period": period.described, "byLabel": by.label.lowercased(), "byHeading": by.label,
            "groupings": Self.groupings.map { ["value": $0.value, "label": $0.label, "selected": $0.value == by.value] },
            "rows": rows.map { Self.values($0, key: Self.key($0, by: by.grouping)) },
            "total": Self.values(report.total, key: "All calls"),
            "csv": link("/reports.csv", period.queryItems + [("by", by.value)]),
            "csrf": try app.session(context).csrf,
        ]
        data["exporting"] = permissions.contains(.settingsManage)
        if report.poolCalls > 0 {
            data["joined"] = "\(report.joinedCalls) of \(report.poolCalls) calls to website numbers were joined to the visit that showed the number"
                + String(format: " (%.0f%%).", Double(report.joinedCalls) * 100 / Double(report.poolCalls))
        }
        if rows.isEmpty {
            data["empty"] = true
        } else {
            let shown = Array(rows.prefix(Self.chartRows))
            data["chart"] = BarChart(
                title: "Calls, new enquiries and matters opened by \(by.label.lowercased()), \(period.described)",
                series: [.init(one: "call", name: "calls", fill: "#0b5394"), .init(one: "new enquiry", name: "new enquiries", fill: "#8a4b00"),
                         .init(one: "matter", name: "matters", fill: "#1d6b32")],
                groups: shown.map { .init(label: Self.key($0, by: by.grouping), values: [$0.calls, $0.newEnquiries, $0.mattersOpened]) }).svg
            if rows.count > shown.count { data["chartNote"] = "The chart shows the \(shown.count) with the most calls; the table has all \(rows.count)." }
        }
        return app.renderer.page("reports", title: "Reports", data: data, chrome: chrome)
    }

    /// The row's key as a person reads it: a channel's name, "(no campaign)" for calls without
    /// one, "(not set)" for visits without the value, "(no visit)" for calls joined to none.
    static func key(_ row: Calltrace_Transcript_V1_AttributionRow, by grouping: Calltrace_Transcript_V1_ReportGrouping) -> String {
        if row.noVisit { return "(no visit)" }
        let key = row.key
        // Transcript names channels as the CLI spells them ("google-ads").
        if grouping == .channel,
           let channel = Calltrace_Transcript_V1_Channel.allCases.first(where: { channel in
               "\(channel)".map { letter in letter.isUppercase ? "-" + letter.lowercased() : String(letter) }.joined() == key
           }) {
            return Formats.channel(channel)
        }
        return key.isEmpty ? (grouping == .campaign ? "(no campaign)" : "(not set)") : key
    }

    static func values(_ row: Calltrace_Transcript_V1_AttributionRow, key: String) -> [String: Any] {
        [
            "key": key, "calls": row.calls, "callers": row.uniqueCallers, "answered": row.answered, "missed": row.missed,
            "enquiries": row.newEnquiries, "suggested": row.suggestedNewEnquiries, "matters": row.mattersOpened, "conversion": String(format: "%.1f%%", row.conversionRate * 100),
            "firstTouch": row.firstTouchMatters, "lastTouch": row.lastTouchMatters,
        ]
    }

    /// The same report as CSV: one line a row, then the total.
    private func csv(_ request: Request, _ context: WebContext) async throws -> Response {
        let (report, period, by) = try await report(request, context)
        var text = CSV.line([by.label, "Calls", "Unique callers", "Answered", "Missed", "New enquiries", "Suggested by the AI", "Matters opened",
                             "Conversion", "First-touch matters", "Last-touch matters"])
        let rows = report.rows.map { (Self.key($0, by: by.grouping), $0) }
        for (key, row) in rows + [("All calls", report.total)] {
            text += CSV.line([key] + [row.calls, row.uniqueCallers, row.answered, row.missed, row.newEnquiries, row.suggestedNewEnquiries,
                                      row.mattersOpened].map { "\($0)" }
                             + [String(format: "%.1f%%", row.conversionRate * 100), "\(row.firstTouchMatters)", "\(row.lastTouchMatters)"])
        }
        let name = "attribution-by-\(by.value)-\(period.from.isEmpty ? "start" : period.from)-to-\(period.to.isEmpty ? "now" : period.to).csv"
        return Response(status: .ok, headers: StreamedDownload.headers(filename: name, type: "text/csv; charset=utf-8"),
                        body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
