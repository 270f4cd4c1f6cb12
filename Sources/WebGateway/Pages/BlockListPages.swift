import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import HTTPTypes
import Hummingbird

/// The firm's block list (issue 31): callers rejected before the office is rung, listed with
/// their numbers masked as transcript sends them, added with an optional reason and taken off
/// by their number typed again (the list shows none in full). Transcript lets only
/// settings.manage read or change it; the page is linked from Numbers for them.
struct BlockListPages: Sendable {
    let app: WebApp

    func register(on router: Router<WebContext>) {
        router.get("/numbers/blocked") { request, context in
            let notice: String? = switch request.query["done"] {
            case "blocked": "Blocked. Calls from that number are rejected from now on."
            case "unblocked": "That number is not on the block list now: its calls reach the office as any caller's do."
            default: nil
            }
            return try await list(context, notice: notice)
        }
        router.post("/numbers/blocked") { request, context in try await block(request, context) }
        router.post("/numbers/blocked/remove") { request, context in try await unblock(request, context) }
    }

    private func list(_ context: WebContext, notice: String? = nil, typed: [String: String] = [:], problem: FormProblem? = nil,
                      status: HTTPResponse.Status = .ok) async throws -> Response {
        let session = try app.session(context)
        let (chrome, _) = try await app.chrome(context, current: "Numbers")
        let blocked = try await app.backend.blockList.listBlockedCallers(.with { $0.orgID = session.orgID },
                                                                       options: context.caller.options).blockedCallers
        var data: [String: Any] = typed
        data["csrf"] = session.csrf
        data["empty"] = blocked.isEmpty
        data["callers"] = blocked.map { caller -> [String: Any] in
            ["number": NumberPages.national(caller.numberMasked), "since": Formats.dateTime(unixMs: caller.addedAtUnixMs), "reason": caller.reason]
        }
        if let notice { data["notice"] = notice }
        if let problem { data["problem"] = problem.values }
        return app.renderer.page("blocked", title: "Blocked callers", data: data, chrome: chrome, status: status)
    }

    private func block(_ request: Request, _ context: WebContext) async throws -> Response {
        try await change(request, context, field: "block-number", typedAs: "blockNumber", done: "blocked") { form, org, options in
            _ = try await app.backend.blockList.blockCaller(.with {
                $0.orgID = org
                $0.phoneNumber = form["number"]
                $0.reason = form["reason"]
            }, options: options)
        }
    }

    private func unblock(_ request: Request, _ context: WebContext) async throws -> Response {
        try await change(request, context, field: "unblock-number", typedAs: "unblockNumber", done: "unblocked") { form, org, options in
            _ = try await app.backend.blockList.unblockCaller(.with {
                $0.orgID = org
                $0.phoneNumber = form["number"]
            }, options: options)
        }
    }

    /// One change to the list: the form's own checks, then `send` under the person's token; a
    /// refusal (the form's or transcript's INVALID_ARGUMENT) shows the page again with what was
    /// typed (the number as `typedAs`) and the problem linked to its field.
    private func change(_ request: Request, _ context: WebContext, field: String, typedAs: String, done: String,
                        send: (Form, String, CallOptions) async throws -> Void) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        var problem = Self.problem(number: form["number"], field: field)
        if problem == nil {
            do {
                try await send(form, session.orgID, context.caller.options)
            } catch let error as RPCError where error.code == .invalidArgument {
                problem = FormProblem(Self.sentence(error.message), field: error.message.hasPrefix("reason") ? "reason" : field)
            }
        }
        guard let problem else { return WebApp.seeOther("/numbers/blocked?done=\(done)") }
        return try await list(context, typed: [typedAs: form["number"], "reason": form["reason"]], problem: problem, status: .badRequest)
    }

    /// What the form alone can tell: a number is needed, and a withheld caller has none to match
    /// (transcript makes each such call a caller of its own, so no list can name them).
    static func problem(number: String, field: String) -> FormProblem? {
        if number.isEmpty { return FormProblem("Enter the caller's number, e.g. 07700 900123.", field: field) }
        if number.count > 30 { return FormProblem("A phone number is at most 30 characters.", field: field) }
        if PhoneNumber.isWithheld(number) {
            return FormProblem("A caller who withholds their number cannot be blocked: there is no number to match.", field: field)
        }
        return nil
    }

    /// Transcript's refusal in the form's words.
    static func sentence(_ message: String) -> String {
        Failures.sentence(message.replacingOccurrences(of: "phone_number", with: "the caller's number"))
    }
}
