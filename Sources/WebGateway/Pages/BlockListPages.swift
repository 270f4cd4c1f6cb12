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
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        let typed = ["blockNumber": form["number"], "reason": form["reason"]]
        if let problem = Self.problem(number: form["number"], field: "block-number") {
            return try await list(context, typed: typed, problem: problem, status: .badRequest)
        }
        do {
            _ = try await app.backend.blockList.blockCaller(.with {
                $0.orgID = session.orgID
                $0.phoneNumber = form["number"]
                $0.reason = form["reason"]
            }, options: context.caller.options)
        } catch let error as RPCError where error.code == .invalidArgument {
            let field = error.message.hasPrefix("reason") ? "reason" : "block-number"
            return try await list(context, typed: typed, problem: FormProblem(Self.sentence(error.message), field: field), status: .badRequest)
        }
        return WebApp.seeOther("/numbers/blocked?done=blocked")
    }

    private func unblock(_ request: Request, _ context: WebContext) async throws -> Response {
        let session = try app.session(context)
        let form = try await Form.read(request, context: context)
        let typed = ["unblockNumber": form["number"]]
        if let problem = Self.problem(number: form["number"], field: "unblock-number") {
            return try await list(context, typed: typed, problem: problem, status: .badRequest)
        }
        do {
            _ = try await app.backend.blockList.unblockCaller(.with {
                $0.orgID = session.orgID
                $0.phoneNumber = form["number"]
            }, options: context.caller.options)
        } catch let error as RPCError where error.code == .invalidArgument {
            return try await list(context, typed: typed, problem: FormProblem(Self.sentence(error.message), field: "unblock-number"), status: .badRequest)
        }
        return WebApp.seeOther("/numbers/blocked?done=unblocked")
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
