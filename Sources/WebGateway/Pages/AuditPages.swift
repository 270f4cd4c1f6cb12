import CallTraceProto
import Foundation
import Hummingbird

/// The audit trail, for audit.read (admins): compliance's events, newest first, filtered by
/// period, who, action and resource, and paged; operators' accesses marked in words (P8);
/// "Verify the chain" (`VerifyAuditChain`) with its finding in plain words; and the export
/// (`ExportAuditEvents`) streamed to the browser as JSON lines — each event with its chain index
/// and link, as compliance writes them — or as CSV for a spreadsheet, never held whole here.
struct AuditPages: Sendable {
    let app: WebApp
    static let pageSize: UInt32 = 50

    func register(on router: Router<WebContext>) {
        router.get("/audit") { request, context in try await page(request, context, verification: nil) }
        router.post("/audit/verify") { request, context in
            let session = try app.session(context)
            _ = try await Form.read(request, context: context)
            let verdict = try await app.backend.audit.verifyAuditChain(.with { $0.orgID = session.orgID }, options: context.caller.options)
            return try await page(request, context, verification: verdict)
        }
        router.get("/audit/export") { request, context in try await export(request, context) }
    }

    private func page(_ request: Request, _ context: WebContext, verification: Calltrace_Compliance_V1_VerifyAuditChainResponse?) async throws -> Response {
        let session = try app.session(context)
        let (chrome, permissions) = try await app.chrome(context, current: "Audit")
        let options = context.caller.options
        let query = request.query
        let period = try Period.read(query, now: app.clock.nowUnixMs, defaultDays: nil)
        let actor = String(query["actor"].prefix(200)), action = String(query["action"].prefix(100)), resource = String(query["resource"].prefix(200))
        let operators = query["operators"] == "1"
        let page = try await app.backend.audit.listAuditEvents(.with {
            $0.orgID = session.orgID
            $0.actor = actor
            $0.action = action
            $0.resource = resource
            $0.fromUnixMs = period.fromUnixMs
            $0.beforeUnixMs = period.beforeUnixMs
            $0.operatorAccessOnly = operators
            $0.pageSize = Self.pageSize
            $0.pageToken = String(query["page"].prefix(200))
        }, options: options)
        // People by name where the role may list them (admins); otherwise the trail's own ids.
        var names: [String: String] = [:]
        if permissions.contains(.usersManage) {
            for user in try await app.backend.identity.listUsers(.with { $0.orgID = session.orgID }, options: options).users {
                names["user:" + user.userID] = user.displayName.isEmpty ? user.email : user.displayName
            }
        }
        let filters = period.queryItems + [("actor", actor), ("action", action), ("resource", resource), ("operators", operators ? "1" : "")]
        var data: [String: Any] = [
            "csrf": session.csrf, "from": period.from, "to": period.to, "action": action, "resource": resource, "operators": operators,
            "events": page.events.map { Self.row($0, names: names) }, "empty": page.events.isEmpty,
            "exportLines": link("/audit/export", period.queryItems + [("format", "jsonl")]),
            "exportCSV": link("/audit/export", period.queryItems + [("format", "csv")]),
            "filtered": filters.contains { !$0.1.isEmpty },
        ]
        if names.isEmpty {
            data["actorText"] = actor
        } else {
            data["pickActor"] = true
            data["actors"] = [["value": "", "label": "Anyone", "selected": actor.isEmpty]]
                + names.sorted { $0.value < $1.value }.map { ["value": $0.key, "label": $0.value, "selected": $0.key == actor] }
                + (actor.isEmpty || names[actor] != nil ? [] : [["value": actor, "label": actor, "selected": true]])
        }
        if !page.nextPageToken.isEmpty { data["next"] = link("/audit", filters + [("page", page.nextPageToken)]) }
        if !query["page"].isEmpty { data["first"] = link("/audit", filters) }
        if let verification { data["verification"] = Self.verdict(verification) }
        return app.renderer.page("audit", title: "Audit trail", data: data, chrome: chrome)
    }

    static func row(_ chained: Calltrace_Compliance_V1_ChainedAuditEvent, names: [String: String]) -> [String: Any] {
        let event = chained.event
        var row: [String: Any] = [
            "index": chained.chainIndex, "when": Formats.dateTime(unixMs: event.occurredAtUnixMs), "actor": event.actor,
            "action": event.action, "resource": event.resource, "outcome": event.outcome.capitalizedFirst, "service": event.sourceService,
            "operator": chained.operatorAccess || event.actor.hasPrefix("operator:"), "failed": event.outcome != "success",
        ]
        if let name = names[event.actor] { row["name"] = name }
        if !event.detail.isEmpty { row["detail"] = event.detail }
        return row
    }

    /// Compliance's finding in plain words.
    static func verdict(_ answer: Calltrace_Compliance_V1_VerifyAuditChainResponse) -> [String: Any] {
        var data: [String: Any] = ["intact": answer.intact, "checked": answer.eventsChecked]
        if answer.intact {
            data["summary"] = "The audit chain is intact: all \(answer.eventsChecked) events are there, unchanged and in order."
            if !answer.head.isEmpty { data["head"] = answer.head }
        } else {
            data["summary"] = "The audit chain is broken at event \(answer.firstBrokenIndex) of \(answer.eventsChecked): "
                + Failures.sentence(answer.reason) + " Tell your CallTrace provider and keep this page."
        }
        data["checkpoints"] = answer.checkpointChecks.map { check -> String in
            let whose = check.source == .given ? "The checkpoint you gave" : "CallTrace's latest signed checkpoint"
            let signed = "(event \(check.checkpoint.chainIndex), signed \(Formats.dateTime(unixMs: check.checkpoint.signedAtUnixMs)))"
            switch check.finding {
            case .holds: return "\(whose) \(signed) holds."
            default: return "\(whose) \(signed) does not hold: \(Failures.sentence(check.reason))"
            }
        }
        return data
    }

    // MARK: The export

    private func export(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let query = request.query
        let period = try Period.read(query, now: app.clock.nowUnixMs, defaultDays: nil)
        let csv = query["format"] == "csv"
        let audit = app.backend.audit, options = context.caller.streamOptions
        let exportRequest = Calltrace_Compliance_V1_ExportAuditEventsRequest.with {
            $0.orgID = session.orgID
            $0.fromUnixMs = period.fromUnixMs
            $0.beforeUnixMs = period.beforeUnixMs
        }
        let day = Formats.isoDay(unixMs: app.clock.nowUnixMs)
        return try await StreamedDownload.attachment(filename: "audit-trail-\(day).\(csv ? "csv" : "jsonl")",
                                                     type: csv ? "text/csv; charset=utf-8" : "application/x-ndjson") { write in
            try await audit.exportAuditEvents(exportRequest, options: options) { stream in
                var header = csv
                for try await piece in stream where !piece.lines.isEmpty {
                    guard csv else {
                        try await write(piece.lines)
                        continue
                    }
                    var text = header ? CSV.line(AuditCSV.columns) : ""
                    header = false
                    for line in piece.lines.split(separator: UInt8(ascii: "\n")) { text += AuditCSV.line(Data(line)) }
                    try await write(Data(text.utf8))
                }
            }
        }
    }
}

/// An exported event (compliance's JSON line) as a CSV line.
enum AuditCSV {
    static let columns = ["Chain index", "Occurred (UTC)", "Actor", "Operator access", "Action", "Resource", "Outcome", "Service", "Detail"]

    static func line(_ json: Data) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else { return CSV.line(["unreadable line"]) }
        let event = object["event"] as? [String: Any] ?? [:]
        func text(_ value: Any?) -> String { value.map { "\($0)" } ?? "" }
        let occurred = Int64(text(event["occurred_at_unix_ms"])).map { Date(timeIntervalSince1970: Double($0) / 1000).formatted(.iso8601) } ?? ""
        let operatorAccess = object["operator_access"] as? Bool ?? false
        return CSV.line([text(object["chain_index"]), occurred, text(event["actor"]), operatorAccess ? "yes" : "no", text(event["action"]),
                         text(event["resource"]), text(event["outcome"]), text(event["source_service"]), text(event["detail"])])
    }
}
