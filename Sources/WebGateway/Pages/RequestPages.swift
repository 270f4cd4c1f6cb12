import CallTraceProto
import CallTraceRPC
import Foundation
import Hummingbird

/// Subject requests (P13), for people with requests.manage: the list with due dates and what is
/// overdue or due soon, opening a case, and a case's page with its steps (locate, pause and
/// resume, extend, the identity check, the access bundle, erasure after a page naming what goes,
/// objection, close). Each step is one compliance call under the person's token, which keeps the
/// deadline, refuses what the case's state does not allow, and audits it.
struct RequestPages: Sendable {
    let app: WebApp
    /// "Due soon": due within this many days.
    static let dueSoonDays = 7

    func register(on router: Router<WebContext>) {
        router.get("/requests") { request, context in try await list(request, context) }
        router.get("/requests/new") { _, context in try await newRequest(context) }
        router.post("/requests") { request, context in try await open(request, context) }
        router.get("/requests/:request") { request, context in
            try await show(context, notice: Self.notices[request.query["done"]])
        }
        router.get("/requests/:request/calls") { _, context in try await show(context, locate: true) }
        router.get("/requests/:request/erase") { _, context in try await confirmErasure(context) }
        // The router does not fall back from a constant segment to a parameter: erase's POST is named.
        router.post("/requests/:request/erase") { request, context in try await act(request, context, action: "erase") }
        router.post("/requests/:request/:action") { request, context in try await act(request, context) }
    }

    static let notices: [String: String] = [
        "opened": "The request is open. Its due date is below.", "paused": "The clock is stopped.",
        "resumed": "The clock runs again; the days it was stopped are added to the due date.",
        "extended": "The deadline is extended.", "identity": "The identity check is recorded.",
        "erased": "Erasure is under way: every call found is being deleted everywhere.",
        "objected": "Their numbers are on the suppression list: their calls are no longer recorded or analysed.",
        "closed": "The request is closed.",
    ]

    static let kinds: [(Calltrace_Compliance_V1_SubjectRequestKind, String, String)] = [
        (.access, "access", "Access (a copy of their data)"), (.erasure, "erasure", "Erasure (delete their data)"),
        (.objection, "objection", "Objection (stop processing)"),
    ]
    static let nations = [("england-and-wales", "England and Wales"), ("scotland", "Scotland"), ("northern-ireland", "Northern Ireland")]
    static let views: [(String, Calltrace_Compliance_V1_SubjectRequestView, String)] = [
        ("open", .unspecified, "Open"), ("overdue", .overdue, "Overdue"), ("due-soon", .dueSoon, "Due within 7 days"), ("all", .all, "All, closed too"),
    ]

    static func kindName(_ kind: Calltrace_Compliance_V1_SubjectRequestKind) -> String {
        switch kind {
        case .access: "Access"
        case .erasure: "Erasure"
        case .objection: "Objection"
        default: "Request"
        }
    }

    static func path(_ id: String) -> String { "/requests/\(id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? "")" }

    /// Days from today (London) to `dueOn` (YYYY-MM-DD); nil when it is not a date.
    func daysLeft(_ dueOn: String) -> Int? {
        guard let due = Formats.startOfDay(dueOn), let today = Formats.startOfDay(Formats.isoDay(unixMs: app.clock.nowUnixMs)) else { return nil }
        return Int((due - today + 43_200_000) / 86_400_000)
    }

    /// A request's values for the list and its page; the due date's marker in words, not colour alone.
    func row(_ request: Calltrace_Compliance_V1_SubjectRequest) -> [String: Any] {
        var row: [String: Any] = [
            "id": request.requestID, "kind": Self.kindName(request.kind), "numbers": request.phoneNumbersMasked.joined(separator: ", "),
            "received": Self.day(request.receivedOn), "due": Self.day(request.dueOn),
            "state": request.state == .closed ? "Closed" : request.state == .paused ? "Clock stopped" : "Open",
            "identity": Self.identityName(request.identityCheck),
        ]
        if request.state != .closed {
            if request.overdue {
                row["marker"] = ["text": "Overdue", "class": "danger"]
            } else if let left = daysLeft(request.dueOn), left <= Self.dueSoonDays {
                row["marker"] = ["text": left <= 0 ? "Due today" : left == 1 ? "Due tomorrow" : "Due soon: \(left) days", "class": "warn"]
            }
        }
        if request.extended { row["extended"] = true }
        return row
    }

    static func identityName(_ check: Calltrace_Compliance_V1_IdentityCheck) -> String {
        switch check {
        case .passed: "Passed"
        case .failed: "Failed"
        default: "Not yet checked"
        }
    }

    /// "2026-12-05" → "5 Dec 2026".
    static func day(_ iso: String) -> String {
        guard let start = Formats.startOfDay(iso) else { return iso }
        return Formats.date(unixMs: start + 43_200_000)
    }

    // MARK: The list and a new request

    private func list(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let (chrome, _) = try await app.chrome(context, current: "Requests")
        let chosen = Self.views.first { $0.0 == request.query["view"] } ?? Self.views[0]
        let requests = try await app.backend.subjectRequests.listSubjectRequests(.with {
            $0.orgID = session.orgID
            $0.view = chosen.1
            $0.dueWithinDays = UInt32(Self.dueSoonDays)
        }, options: context.caller.options).requests
        let data: [String: Any] = [
            "views": Self.views.map { ["value": $0.0, "label": $0.2, "current": $0.0 == chosen.0] },
            "viewName": chosen.2.lowercased(), "requests": requests.map(row), "empty": requests.isEmpty,
        ]
        return app.renderer.page("requests", title: "Subject requests", data: data, chrome: chrome)
    }

    private func newRequest(_ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let (chrome, permissions) = try await app.chrome(context, current: "Requests")
        guard permissions.contains(.requestsManage) else { throw RPCError(.permissionDenied, "requests.manage is needed") }
        let data: [String: Any] = [
            "csrf": session.csrf, "today": Formats.isoDay(unixMs: app.clock.nowUnixMs),
            "kinds": Self.kinds.map { ["value": $0.1, "label": $0.2, "checked": $0.0 == .access] },
            "nations": Self.nations.map { ["value": $0.0, "label": $0.1, "selected": $0.0 == "england-and-wales"] },
        ]
        return app.renderer.page("request-new", title: "Open a subject request", data: data, chrome: chrome)
    }

    private func open(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        guard let kind = Self.kinds.first(where: { $0.1 == form["kind"] })?.0 else { throw PageError.invalid("Choose what they asked for: access, erasure or objection.") }
        let numbers = form["numbers"].split(whereSeparator: { $0 == "," || $0.isNewline }).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard (1...10).contains(numbers.count), numbers.allSatisfy({ $0.count <= 32 }) else {
            throw PageError.invalid("Enter from one to ten phone numbers, one a line or separated by commas.")
        }
        guard Formats.startOfDay(form["received"]) != nil else { throw PageError.invalid("Enter the day the request was received.") }
        guard form["notes"].count <= 2000 else { throw PageError.invalid("Notes are at most 2,000 characters.") }
        let opened = try await app.backend.subjectRequests.openSubjectRequest(.with {
            $0.orgID = session.orgID
            $0.kind = kind
            $0.phoneNumbers = numbers
            $0.receivedOn = form["received"]
            $0.nation = form["nation"]
            $0.notes = form["notes"]
        }, options: context.caller.options).request
        return WebApp.seeOther(Self.path(opened.requestID) + "?done=opened")
    }

    // MARK: One request

    private func get(_ context: WebContext) async throws -> Calltrace_Compliance_V1_SubjectRequest {
        let session = try app.session(context)
        return try await app.backend.subjectRequests.getSubjectRequest(.with {
            $0.orgID = session.orgID
            $0.requestID = try context.parameters.require("request")
        }, options: context.caller.options).request
    }

    private func locate(_ context: WebContext) async throws -> [Calltrace_Compliance_V1_LocatedCall] {
        let session = try app.session(context)
        return try await app.backend.subjectRequests.locateSubjectData(.with {
            $0.orgID = session.orgID
            $0.requestID = try context.parameters.require("request")
        }, options: context.caller.options).calls
    }

    static func located(_ calls: [Calltrace_Compliance_V1_LocatedCall]) -> [[String: Any]] {
        calls.map { call in
            ["callID": call.callID, "started": Formats.dateTime(unixMs: call.startedAtUnixMs),
             "recording": call.recordingID.isEmpty ? "No" : "Yes", "transcribed": call.transcribed ? "Yes" : "No"]
        }
    }

    private func show(_ context: WebContext, notice: String? = nil, locate wanted: Bool = false) async throws -> Response {
        let session = try app.session(context)
        let (chrome, _) = try await app.chrome(context, current: "Requests")
        let request = try await get(context)
        var data = row(request)
        data["csrf"] = session.csrf
        data["nation"] = Self.nations.first { $0.0 == request.nation }?.1 ?? request.nation
        data["opened"] = Formats.dateTime(unixMs: request.openedAtUnixMs)
        if !request.notes.isEmpty { data["notes"] = request.notes }
        if !request.dueOnDecidedBy.isEmpty { data["decidedBy"] = request.dueOnDecidedBy }
        if request.extended, !request.extensionReason.isEmpty { data["extensionReason"] = request.extensionReason }
        if request.pausedDays > 0 { data["pausedDays"] = request.pausedDays }
        if request.state == .paused {
            data["pausedSince"] = Self.day(request.pausedSince)
            if !request.pauseReason.isEmpty { data["pauseReason"] = request.pauseReason }
        }
        if !request.deletionIds.isEmpty {
            data["erasure"] = request.erasureConfirmedAtUnixMs > 0
                ? "Confirmed on \(Formats.dateTime(unixMs: request.erasureConfirmedAtUnixMs)): \(request.deletionIds.count) call(s) deleted everywhere."
                : "Under way: \(request.deletionsDone) of \(request.deletionIds.count) call(s) deleted so far."
        }
        if request.objectionAppliedAtUnixMs > 0 {
            data["objection"] = "Applied on \(Formats.dateTime(unixMs: request.objectionAppliedAtUnixMs)): their numbers are not recorded or analysed again."
        }
        if request.state == .closed {
            data["closed"] = ["at": Formats.dateTime(unixMs: request.closedAtUnixMs), "outcome": request.outcome]
        } else {
            let passed = request.identityCheck == .passed
            var steps: [String: Any] = ["paused": request.state == .paused, "canExtend": !request.extended]
            if request.identityCheck != .passed { steps["needsIdentity"] = true }
            if passed {
                switch request.kind {
                case .access: steps["access"] = true
                case .erasure where request.deletionIds.isEmpty: steps["erase"] = true
                case .objection where request.objectionAppliedAtUnixMs == 0: steps["object"] = true
                default: break
                }
            } else if request.kind != .unspecified {
                steps["waitingForIdentity"] = Self.kindName(request.kind).lowercased() + " request"
            }
            data["steps"] = steps
        }
        if let notice { data["notice"] = notice }
        if wanted {
            let calls = try await locate(context)
            data["located"] = ["calls": Self.located(calls), "count": calls.count, "none": calls.isEmpty]
        }
        return app.renderer.page("request", title: "\(Self.kindName(request.kind)) request", data: data, chrome: chrome)
    }

    /// Names what erasure deletes before it is asked: every call found, with its recording,
    /// transcript, summary and share links.
    private func confirmErasure(_ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let (chrome, _) = try await app.chrome(context, current: "Requests")
        let request = try await get(context)
        let calls = try await locate(context)
        let data: [String: Any] = [
            "id": request.requestID, "csrf": session.csrf, "numbers": request.phoneNumbersMasked.joined(separator: ", "),
            "calls": Self.located(calls), "count": calls.count, "none": calls.isEmpty,
            "recordings": calls.filter { !$0.recordingID.isEmpty }.count, "transcripts": calls.filter(\.transcribed).count,
        ]
        return app.renderer.page("request-erase", title: "Erase this person's data?", data: data, chrome: chrome)
    }

    private func act(_ request: Request, _ context: WebContext, action: String? = nil) async throws -> Response {
        let session = try app.session(context)
        let id = try context.parameters.require("request")
        let form = try await Form.read(request, context: context)
        let requests = app.backend.subjectRequests, options = context.caller.options, org = session.orgID
        func line(_ name: String, _ what: String, required: Bool = true) throws -> String {
            let value = form[name]
            guard !required || !value.isEmpty, value.count <= 200, !value.contains(where: \.isNewline) else {
                throw PageError.invalid("Enter \(what): one line, at most 200 characters.")
            }
            return value
        }
        let done: String
        switch try action ?? context.parameters.require("action") {
        case "pause":
            let reason = try line("reason", "why the clock stops")
            _ = try await requests.pauseSubjectRequest(.with { $0.orgID = org; $0.requestID = id; $0.reason = reason }, options: options)
            done = "paused"
        case "resume":
            _ = try await requests.resumeSubjectRequest(.with { $0.orgID = org; $0.requestID = id }, options: options)
            done = "resumed"
        case "extend":
            let reason = try line("reason", "why the request needs longer")
            _ = try await requests.extendSubjectRequest(.with { $0.orgID = org; $0.requestID = id; $0.reason = reason }, options: options)
            done = "extended"
        case "identity":
            let result: Calltrace_Compliance_V1_IdentityCheck
            switch form["result"] {
            case "passed": result = .passed
            case "failed": result = .failed
            default: throw PageError.invalid("Choose whether the identity check passed or failed.")
            }
            _ = try await requests.recordIdentityCheck(.with { $0.orgID = org; $0.requestID = id; $0.result = result }, options: options)
            done = "identity"
        case "bundle":
            let bundle = try await requests.buildAccessBundle(.with { $0.orgID = org; $0.requestID = id }, options: options).bundle
            return WebApp.seeOther(BundlePages.path(bundle.bundleID))
        case "erase":
            guard form["confirm"] == "yes" else { throw PageError.invalid("Tick the box to confirm the erasure.") }
            _ = try await requests.eraseSubjectData(.with { $0.orgID = org; $0.requestID = id }, options: options)
            done = "erased"
        case "object":
            _ = try await requests.objectToProcessing(.with { $0.orgID = org; $0.requestID = id }, options: options)
            done = "objected"
        case "close":
            let outcome = form["outcome"]
            guard !outcome.isEmpty, outcome.count <= 2000 else { throw PageError.invalid("Enter the outcome (at most 2,000 characters), e.g. “bundle sent on 10 Dec”.") }
            _ = try await requests.closeSubjectRequest(.with { $0.orgID = org; $0.requestID = id; $0.outcome = outcome }, options: options)
            done = "closed"
        default:
            throw PageError.notFound
        }
        return WebApp.seeOther(Self.path(id) + "?done=\(done)")
    }
}
